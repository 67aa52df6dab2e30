"""Options and shared state for the train-step benchmarks (see nstcore/bench.py)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from nstcore import bench

RESULTS: list[dict] = []
QUALITY: list[dict] = []  # test_quality.py's time-to-quality rows
MEMORY: list[dict] = []  # test_quality.py's peak-memory rows
UNAVAILABLE: dict[str, str] = {}


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def pytest_addoption(parser):
    group = parser.getgroup("nstcore-bench")
    group.addoption("--bench-sizes", default=",".join(map(str, bench.QUICK_SIZES)),
                    help="image long sides (default: the quick set 64,128; add 256,512 on demand)")
    group.addoption("--bench-solvers", default=",".join(bench.SOLVERS))
    group.addoption("--bench-devices", default="cpu,gpu")
    group.addoption("--bench-compile", default=",".join(bench.COMPILATIONS),
                    help="graph and/or xla (jit_compile)")
    group.addoption("--bench-precision", default="float32",
                    help="float32 and/or bfloat16 (nstcore rows; the tutorial is float32)")
    group.addoption("--bench-rounds", type=int, default=5, help="timed steps per benchmark (at least)")
    group.addoption("--bench-min-time", type=float, default=2.0,
                    help="seconds each row is timed for at least (short steps get more rounds)")
    group.addoption("--bench-run-loop", action="store_true",
                    help="also time Adam through the engine's run loop (impl 'run')")
    group.addoption("--bench-no-tutorial", action="store_true", help="skip the tutorial reference step")
    group.addoption("--bench-logical-cpus", type=int, default=0,
                    help="split the CPU into N logical devices (to test multi-device code paths)")
    heavy = parser.getgroup("nstcore-quality", "time to quality and memory (heavy; off by default)")
    heavy.addoption("--quality-sizes", default="", help="sizes for the time-to-quality rows, e.g. 256,512")
    heavy.addoption("--quality-variants", default="defaults,lbfgs",
                    help="nstcore runs to time: defaults (nstcore run C S --size N), lbfgs (--optimizer lbfgs)")
    heavy.addoption("--quality-reference-steps", type=int, default=1000,
                    help="tutorial Adam steps whose objective value is the target (default 1000)")
    heavy.addoption("--quality-timing-steps", type=int, default=20,
                    help="tutorial steps timed in this run when a saved curve gives the target")
    heavy.addoption("--quality-cap", type=float, default=0.25,
                    help="give up on a variant after this fraction of the tutorial's time")
    heavy.addoption("--quality-fresh", action="store_true", help="run the reference again, not the saved curve")
    heavy.addoption("--memory-sizes", default="", help="sizes for the peak-memory rows, e.g. 1024,2048,4096")
    heavy.addoption("--memory-tiles", default="off,256,512,auto", help="--tile values per size")
    heavy.addoption("--memory-steps", type=int, default=2, help="steps per memory run (the first traces)")


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    opt = metafunc.config.getoption
    cases = []
    for size in map(int, _csv(opt("--bench-sizes"))):
        for device in _csv(opt("--bench-devices")):
            for compilation in _csv(opt("--bench-compile")):
                if not opt("--bench-no-tutorial"):
                    cases.append(("tutorial", "adam", size, device, compilation, "float32"))
                for precision in _csv(opt("--bench-precision")):
                    for solver in _csv(opt("--bench-solvers")):
                        cases.append(("nstcore", solver, size, device, compilation, precision))
                if opt("--bench-run-loop") and compilation == "graph":
                    cases.append(("run", "adam", size, device, "graph", "float32"))
    metafunc.parametrize("case", cases, ids=["-".join(map(str, c)) for c in cases])


@pytest.fixture(scope="session")
def devices(request):
    from nstcore.tfload import native_stderr_captured

    with native_stderr_captured():
        import tensorflow as tf

        logical = request.config.getoption("--bench-logical-cpus")
        if logical:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical)])
        tf.config.list_logical_devices()
    found = {d.label: d for d in bench.bench_devices(tuple(_csv(request.config.getoption("--bench-devices"))))}
    UNAVAILABLE.update({label: d.reason for label, d in found.items() if not d.available})
    return found


@pytest.fixture(scope="session")
def calibration(devices):
    """The machine's matmul GFLOP/s per device, measured once in this process."""
    return {label: bench.matmul_gflops(d.name) for label, d in devices.items() if d.available}


@pytest.fixture
def rounds(request):
    return request.config.getoption("--bench-rounds")


@pytest.fixture
def min_time(request):
    return request.config.getoption("--bench-min-time")


@pytest.fixture
def paired(request):
    """Whether nstcore rows are also timed in pairs with the tutorial's step (the gate figure)."""
    return not request.config.getoption("--bench-no-tutorial")


def pytest_terminal_summary(terminalreporter):
    if RESULTS or UNAVAILABLE:
        terminalreporter.write_sep("=", "nstcore train-step benchmarks")
        if RESULTS:
            terminalreporter.write_line(bench.format_table([dict(r) for r in RESULTS], UNAVAILABLE))
    if QUALITY:
        from nstcore_benchmarks.quality import format_rows

        terminalreporter.write_sep("=", f"time to quality ({QUALITY[0]['cpu']})")
        terminalreporter.write_line(format_rows(QUALITY))
    if MEMORY:
        from nstcore_benchmarks import memory

        terminalreporter.write_sep("=", f"peak memory and tiling overhead ({MEMORY[0]['cpu']})")
        terminalreporter.write_line(memory.format_rows(MEMORY))
