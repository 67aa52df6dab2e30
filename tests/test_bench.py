"""The benchmark harness: ratios, CPU/GPU pairing, device placement, and the CI gate."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nstcore import bench

ROOT = Path(__file__).resolve().parents[1]


def _row(impl, solver, size, device, seconds, **extra):
    """A result row; nstcore and run-loop rows get a paired ratio against a 0.1-s tutorial step."""
    if impl != "tutorial":
        extra.setdefault("paired_ratio", seconds / 0.1)
    return {"impl": impl, "solver": solver, "size": size, "device": device, "compilation": "graph",
            "median_seconds": seconds, "gflop_per_step": 10.0, "matmul_gflops": 200.0,
            "evaluations_per_step": 1.0, **extra}


def test_ratios_pairing_and_speedup():
    rows = [_row("tutorial", "adam", 64, "cpu", 0.10), _row("nstcore", "adam", 64, "cpu", 0.08),
            _row("tutorial", "adam", 64, "gpu", 0.02), _row("nstcore", "adam", 64, "gpu", 0.01)]
    bench.add_ratios(rows)
    cpu = rows[1]
    assert cpu["gflops"] == pytest.approx(125.0) and cpu["fraction_of_matmul"] == pytest.approx(0.625)
    assert cpu["ratio_to_tutorial"] == pytest.approx(0.8)
    (line,) = bench.pair_devices(rows)
    assert line["speedup"] == pytest.approx(8.0) and line["gpu_note"] == ""
    only_cpu = bench.pair_devices(rows[:2], {"gpu": "no GPU visible to TensorFlow"})
    assert only_cpu[0]["gpu_note"] == "not available: no GPU visible to TensorFlow"
    table = bench.format_table(rows[:2], {"gpu": "no GPU visible to TensorFlow"})
    assert "not available: no GPU visible to TensorFlow" in table and "0.80" in table


def test_gate_flags_only_regressions_beyond_the_threshold():
    baseline = bench.baseline_from_rows([_row("tutorial", "adam", 64, "cpu", 0.1),
                                         _row("nstcore", "adam", 64, "cpu", 0.1)])
    assert baseline["rows"] == {"nstcore/adam/64/cpu/graph": 1.0}
    noisy = [_row("tutorial", "adam", 64, "cpu", 0.1), _row("nstcore", "adam", 64, "cpu", 0.12)]
    report, failures = bench.compare(noisy, baseline, 0.25)
    assert len(report) == 1 and "+20.0%" in report[0] and failures == []
    slow = [_row("tutorial", "adam", 64, "cpu", 0.1), _row("nstcore", "adam", 64, "cpu", 0.14)]
    assert len(bench.compare(slow, baseline, 0.25)[1]) == 1


def test_gate_cannot_pass_by_accident():
    tutorial = _row("tutorial", "adam", 64, "cpu", 0.1)
    baseline = {"rows": {"nstcore/adam/64/cpu/graph": 1.0, "nstcore/lbfgs/64/cpu/graph": 3.0}}
    # a baseline row missing from the run fails
    report, failures = bench.compare([tutorial, _row("nstcore", "adam", 64, "cpu", 0.1)], baseline, 0.25)
    assert failures == ["nstcore/lbfgs/64/cpu/graph: in the baseline but not measured in this run"]
    # no rows in common fails
    _, failures = bench.compare([_row("tutorial", "adam", 128, "cpu", 0.1),
                                 _row("nstcore", "adam", 128, "cpu", 0.1)], baseline, 0.25)
    assert len(failures) == 2
    # an empty baseline fails
    assert bench.compare([tutorial], {"rows": {}}, 0.25)[1] == ["the baseline has no rows"]
    # a row too noisy for the threshold fails instead of being skipped
    noisy = {"rows": {"nstcore/adam/64/cpu/graph": 1.0},
             "spread": {"nstcore/adam/64/cpu/graph": 0.3}}
    _, failures = bench.compare([tutorial, _row("nstcore", "adam", 64, "cpu", 0.1)], noisy, 0.25)
    assert len(failures) == 1 and "too noisy to gate" in failures[0]
    # the run-loop row is gated like the step rows
    loop = {"rows": {"run/adam/64/cpu/graph": 1.1}}
    _, failures = bench.compare([tutorial, _row("run", "adam", 64, "cpu", 0.15)], loop, 0.25)
    assert len(failures) == 1 and failures[0].startswith("run/adam/64/cpu/graph")


def _saved_run(seconds, **extra):
    rows = [_row("tutorial", "adam", 64, "cpu", 0.1), _row("nstcore", "adam", 64, "cpu", seconds, **extra)]
    return {"benchmarks": [{"params": {}, "extra_info": {k: v for k, v in r.items() if k != "median_seconds"},
                            "stats": {"median": r["median_seconds"]}} for r in rows]}


def test_baselines_come_only_from_complete_unslowed_runs():
    baseline = bench.baseline_from_runs([_saved_run(0.10), _saved_run(0.12), _saved_run(0.11)])
    assert baseline["rows"] == {"nstcore/adam/64/cpu/graph": pytest.approx(1.1)}  # the median
    assert baseline["spread"] == {"nstcore/adam/64/cpu/graph": pytest.approx(0.2)}
    with pytest.raises(bench.BaselineError, match="NSTCORE_BENCH_SLOWDOWN"):
        bench.baseline_from_runs([_saved_run(0.10), _saved_run(0.13, slowdown=0.3)])
    partial = _saved_run(0.10)
    partial["benchmarks"] = partial["benchmarks"][:1]  # the nstcore row is missing
    with pytest.raises(bench.BaselineError, match="run 2 lacks row"):
        bench.baseline_from_runs([_saved_run(0.10), partial])


def test_committed_baseline_is_rebuilt_exactly_from_its_committed_raw_runs():
    runs = sorted((ROOT / "benchmarks" / "baseline-runs").glob("*.json"))
    assert len(runs) >= 5
    committed = bench.load_json(ROOT / "benchmarks" / "baseline.json")
    rebuilt = bench.baseline_from_runs([bench.load_json(p) for p in runs], committed["note"])
    assert rebuilt == committed
    threshold = _ci_threshold()
    assert all(spread <= threshold / 2 for spread in committed["spread"].values()), committed["spread"]


def _ci_threshold() -> float:
    """The --fail-above of `make bench-ci`, as a fraction."""
    text = (ROOT / "Makefile").read_text()
    return float(text.split("--fail-above", 1)[1].split()[0]) / 100.0


def test_missing_gpu_is_reported_with_a_reason(monkeypatch):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv(bench.GPU_OVERRIDE_ENV, raising=False)
    cpu, gpu = bench.bench_devices(("cpu", "gpu"))
    assert cpu.available and "CPU:0" in cpu.name
    assert not gpu.available and gpu.reason == "no GPU visible to TensorFlow"


def _harness(tmp_path, extra_args, env_extra):
    env = dict(os.environ, **env_extra)
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "benchmarks"), "-q",
                           "-p", "no:cacheprovider", "--benchmark-json", str(out), *extra_args],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return bench.rows_from_json(json.loads(out.read_text())), proc.stdout


def test_gpu_column_and_pairing_on_logical_cpu_devices(tmp_path):
    """Two logical CPUs stand in for CPU and GPU: placement is explicit and rows pair up."""
    rows, stdout = _harness(tmp_path, ["--bench-sizes", "64", "--bench-solvers", "adam",
                                       "--bench-compile", "graph", "--bench-rounds", "2",
                                       "--bench-no-tutorial", "--bench-logical-cpus", "2"],
                            {bench.GPU_OVERRIDE_ENV: "/device:CPU:1"})
    by_device = {r["device"]: r for r in rows}
    # where the step's result actually lives, read from the tensor, not from the request
    assert by_device["cpu"]["ran_on"].endswith("/device:CPU:0")
    assert by_device["gpu"]["ran_on"].endswith("/device:CPU:1")
    for row in rows:
        assert row["evaluations_per_step"] == 1.0 and row["warmup_seconds"] > 0
        assert row["gflop_per_step"] > 0 and row["peak_memory_mb"] > 0
    (line,) = bench.pair_devices(rows)
    assert line["speedup"] == pytest.approx(by_device["cpu"]["median_seconds"]
                                             / by_device["gpu"]["median_seconds"])
    table = stdout.split("nstcore train-step benchmarks")[1]
    assert f"{line['speedup']:.2f}x" in table and "not available" not in table


def test_slowdown_sleeps_its_share_of_the_step_and_is_recorded(monkeypatch):
    """The gate's test hook: a known regression, made with an injected clock, not a real one."""
    clock = iter([10.0, 10.5])
    slept = []
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    assert bench.slowed(lambda: "result", 0.3)() == "result"
    assert slept == [pytest.approx(0.15)]
    step = lambda: None  # noqa: E731
    assert bench.slowed(step, 0.0) is step
    monkeypatch.setenv(bench.SLOWDOWN_ENV, "0.3")
    assert bench.slowdown_fraction() == 0.3
    monkeypatch.setenv(bench.SLOWDOWN_ENV, "fast")
    with pytest.raises(ValueError, match="must be a fraction such as 0.3"):
        bench.slowdown_fraction()


@pytest.mark.parametrize("slowdown,fails", [(0.3, True), (0.0, False)])
def test_gate_fails_a_30_percent_slowdown_of_the_committed_baseline_row(slowdown, fails):
    """Both directions, at the CI gate's own threshold, against the committed baseline's row,
    with injected timings (real timings run only in ``make bench-ci``)."""
    committed = bench.load_json(ROOT / "benchmarks" / "baseline.json")
    key = "nstcore/adam/128/cpu/graph"
    baseline = {"rows": {key: committed["rows"][key]}, "spread": {key: committed["spread"][key]}}
    ratio = committed["rows"][key] * (1 + slowdown)
    rows = [_row("tutorial", "adam", 128, "cpu", 0.5),
            _row("nstcore", "adam", 128, "cpu", 0.5 * ratio, paired_ratio=ratio)]
    report, failures = bench.compare(rows, baseline, _ci_threshold())
    assert bool(failures) == fails, report
    assert (f"+{slowdown * 100:.1f}%" in report[0]) if slowdown else "+0.0%" in report[0]


def test_time_to_quality_judges_the_objective_a_run_optimises_against_its_saved_curve(
        tmp_path, monkeypatch):
    from nstcore.bench import bench_images
    from nstcore_benchmarks import quality

    monkeypatch.setattr(quality, "CURVES", tmp_path)
    rows = quality.measure(32, ["nomargin:margin=0;precision=float32", "defaults"], steps=8,
                           timing_steps=3, cap=20.0)
    plain, default = rows
    assert plain["reference_source"].startswith("run now (8 steps)")
    curve = json.loads((tmp_path / "quality-curve-32px-8.json").read_text())
    assert len(curve["values"]) == 8 and curve["values"][-1] == plain["target"]
    assert curve["values"][-1] < curve["values"][0]
    # with no margin the judge is the tutorial's own objective: the same value at the photo
    tutorial = quality.Tutorial(32)
    content, _ = bench_images(32)
    assert quality.Judge(32, 0)(content) == pytest.approx(tutorial.objective(content), rel=1e-5)
    assert plain["first_final_size_value"] < tutorial.objective(content)  # one step taken
    assert plain["reached"] is not None and plain["reached"]["value"] <= plain["target"]
    assert plain["ratio"] == pytest.approx(plain["seconds_to_target"] / plain["tutorial_seconds"])
    from nstcore.settings import Settings

    assert plain["default_steps"] == [Settings().steps] and plain["sizes"] == [32]
    # the defaults (16-px margin) are judged on their own objective, against the tutorial's
    # procedure run on it (nstcore --preset tutorial --margin 16), saved as a curve of its own
    margin_curve = json.loads((tmp_path / "quality-curve-32px-8-margin16.json").read_text())
    assert default["margin"] == 16 and default["target"] == margin_curve["values"][-1]
    assert margin_curve["values"][-1] < margin_curve["values"][0]
    assert default["tutorial_step_seconds"] > 0
    # a second reference at this size reads the target from the saved curve, timing 3 steps now
    again = quality.reference(32, 8, 3, tutorial)
    assert again["target"] == plain["target"] and again["reference_source"].startswith("saved curve")
    assert "not reached" not in quality.format_rows(rows[:1])
    # capped while still at a coarse scale: said so, and not judged at the wrong size
    early = quality.time_to_target(96, 1.0, {"scales": "64,96", "steps": 2}, 0.0, quality.Judge(96, 16))
    assert early["sizes"] == [64, 96] and early["steps"] == 1 and not early["final_size_reached"]
    table = quality.format_rows([quality.row("defaults", again, 0.0, early)])
    assert "still at a coarser scale" in table and "not reached" in table


def test_memory_rows_peak_rss_step_times_and_refusals():
    from nstcore_benchmarks import memory

    # in a process of its own, whose only child is the run: the row's figure is that child's
    # peak resident set, in MiB (the kernel's kilobytes / 1024), not this process's
    probe = ("import json, resource; from nstcore_benchmarks import memory;"
             " row = memory.run_once(48, 'off');"
             " print(json.dumps([row, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    row, child_kib = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["exit"] == 0 and row["peak_rss_mb"] == child_kib / 1024
    assert len(row["step_seconds"]) == 2 and row["tiles"] == [None]
    bad = memory.run_once(48, "7")
    assert bad["exit"] == 2 and "--tile" in bad["refused"] and "Traceback" not in bad["refused"]
    rows = [dict(row, size=1024, median_step_seconds=2.0),
            dict(row, size=1024, tile="512", tiles=[512], median_step_seconds=3.0),
            dict(row, size=1024, tile="auto", tiles=[None], median_step_seconds=2.1)]
    assert memory.overheads(rows) == {(1024, "512"): 1.5}
    table = memory.format_rows(rows + [bad])
    assert "1.50" in table and "refused: " in table


def _backend_row(backend, what, size, seconds, **extra):
    return {"backend": backend, "version": "1", "device": "cpu", "device_name": "cpu", "what": what,
            "precision": "float32", "size": size, "first_step_seconds": 2.0,
            "median_step_seconds": seconds, "steps": 5, "gflop_per_step": 10.0,
            "matmul_gflops": 100.0, "share_of_matmul": 10.0 / seconds / 100.0,
            "host_peak_rss_gib": 1.5, "device_peak_gib": None, **extra}


def test_backend_table_puts_each_step_against_the_tutorials_at_its_size():
    """`nstcore bench --backends`: each row's ratio is to the tutorial's step on the same device
    and size (measured on tensorflow in the same run); a missing GPU is a row saying why."""
    from nstcore.benchcli import format_backend_rows

    rows = [_backend_row("tensorflow", "tutorial", 256, 1.0), _backend_row("tensorflow", "nstcore", 256, 1.1),
            _backend_row("tensorflow", "tutorial", 512, 4.0), _backend_row("jax", "nstcore", 512, 3.0),
            _backend_row("torch", "nstcore", 256, 0.5),
            {"backend": "jax", "device": "gpu", "skipped": "--device gpu: jax sees no GPU"}]
    lines = format_backend_rows(rows).splitlines()
    assert lines[0].split()[:6] == ["BACKEND", "DEVICE", "PX", "PRECISION", "S/STEP", "X"]
    cells = [line.split() for line in lines[1:]]
    assert cells[1][:6] == ["tensorflow", "cpu", "256", "float32", "1.100", "1.10"]
    assert cells[3][:6] == ["jax", "cpu", "512", "float32", "3.000", "0.75"]
    assert cells[4][:6] == ["torch", "cpu", "256", "float32", "0.500", "0.50"]
    assert "skipped: --device gpu: jax sees no GPU" in lines[6]
