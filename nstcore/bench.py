"""The benchmark harness behind ``benchmarks/`` and ``nstcore bench``.

Raw seconds drift 2x on a shared 2-core machine, so every run also measures, in the same process,
the machine's matrix-multiply GFLOP/s and the TensorFlow tutorial's own train step; each nstcore
step is reported as a fraction of that matmul rate and as a ratio to the tutorial's step, and
only such ratios are compared against the committed baseline.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

QUICK_SIZES = (64, 128)
FULL_SIZES = (256, 512)
SOLVERS = ("adam", "lbfgs")
COMPILATIONS = ("graph", "xla")
PRECISIONS = ("float32", "bfloat16")
#: Set to make the nstcore objective run one redundant extra forward pass (tests the CI gate).
SLOWDOWN_ENV = "NSTCORE_BENCH_SLOWDOWN"
#: Treat this TensorFlow device as the "gpu" column (tests the GPU paths on logical CPUs).
GPU_OVERRIDE_ENV = "NSTCORE_BENCH_GPU_DEVICE"


# -- devices ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchDevice:
    label: str  # "cpu" or "gpu"
    name: str | None  # a TensorFlow device name, or None when unavailable
    reason: str = ""  # why it is unavailable

    @property
    def available(self) -> bool:
        return self.name is not None


def bench_devices(labels: tuple[str, ...] = ("cpu", "gpu")) -> list[BenchDevice]:
    """Explicit placement for each label; a missing GPU is reported with its reason, not skipped silently."""
    import tensorflow as tf

    devices = []
    for label in labels:
        if label == "cpu":
            devices.append(BenchDevice("cpu", tf.config.list_logical_devices("CPU")[0].name))
        elif label == "gpu":
            override = os.environ.get(GPU_OVERRIDE_ENV)
            gpus = tf.config.list_logical_devices("GPU")
            if override:
                devices.append(BenchDevice("gpu", override))
            elif gpus:
                devices.append(BenchDevice("gpu", gpus[0].name))
            else:
                devices.append(BenchDevice("gpu", None, "no GPU visible to TensorFlow"))
        else:
            raise ValueError(f"unknown device label {label!r}")
    return devices


# -- calibration --------------------------------------------------------------------------------
def matmul_gflops(device: str, n: int = 2048, repeats: int = 7) -> float:
    """Best-of-``repeats`` float32 matmul rate on ``device`` (the process's backend, compiled as
    its steps are), read back before the timer stops."""
    import numpy as np

    from nstcore import backends

    backend, ops = backends.get(), backends.ops()
    rng = np.random.default_rng(0)
    with backend.scope(device):
        a = backends.constant(rng.random((n, n), dtype=np.float32))
        b = backends.constant(rng.random((n, n), dtype=np.float32))
        product = backend.compile(lambda x, y: ops.sum(ops.matmul(x, y)))
        float(product(a, b))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            float(product(a, b))
            best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


# -- memory -------------------------------------------------------------------------------------
def reset_peak_memory(device: BenchDevice) -> None:
    """The device's peak (a GPU's, through the backend) and the process's peak RSS start again."""
    from nstcore import backends

    if device.label == "gpu" and device.name:
        backends.get().reset_peak_memory(device.name)  # nothing to reset off a GPU
    reset_peak_rss()


def reset_peak_rss() -> None:
    try:  # Linux: writing 5 resets the process's peak RSS (VmHWM)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_memory_mb(device: BenchDevice) -> float | None:
    """A GPU's peak since the last reset where the backend reports one, else the peak RSS."""
    from nstcore import backends

    if device.label == "gpu" and device.name:
        peak = backends.get().peak_memory(device.name)
        if peak is not None:
            return peak / 2**20
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """The process's peak resident memory since the last :func:`reset_peak_rss`, in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the work -----------------------------------------------------------------------------------
def bench_images(size: int):
    """The bundled astronaut and Starry Night at long side ``size``."""
    from nstcore.run import asset, load_inputs

    return load_inputs(str(asset("astronaut.png")), str(asset("starry_night.jpg")), size)


def slowdown_fraction() -> float:
    """``NSTCORE_BENCH_SLOWDOWN`` as a fraction (0.3: every nstcore step takes 30 % longer)."""
    text = os.environ.get(SLOWDOWN_ENV, "")
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise ValueError(f"{SLOWDOWN_ENV} must be a fraction such as 0.3, got {text!r}") from None
    return value


def slowed(step: Callable[[], None], fraction: float) -> Callable[[], None]:
    """``step`` made ``fraction`` slower by sleeping that share of its own duration afterwards.

    For testing the gate only: an exact, known regression of the timed figure.
    """
    if fraction <= 0:
        return step

    def slow_step() -> Any:
        start = time.perf_counter()
        outcome = step()
        time.sleep(fraction * (time.perf_counter() - start))
        return outcome

    return slow_step


@dataclass
class StepTarget:
    """One timed unit: ``step()`` runs one train step and returns only after reading results back."""

    step: Callable[[], None]
    evaluations: Callable[[], int]  # objective evaluations so far
    gflop_per_evaluation: float
    ran_on: Callable[[], str] = lambda: ""  # the device the last step's result lives on


TUTORIAL_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1",
                   "block5_conv2"]


def _extractor_component():
    from nstcore.plugins import get_plugin_manager

    return get_plugin_manager().registry.get("extractor", "vgg19")


def _gflop(layers: list[str], pixels: int) -> float:
    flops = _extractor_component().load().flops_per_pixel(layers)
    return 2.0 * flops * pixels / 1e9 if flops else float("nan")  # forward + input gradient


def nstcore_target(solver: str, size: int, device: BenchDevice, compilation: str,
                   precision: str = "float32") -> StepTarget:
    """nstcore's step on the process's backend, its plugins built through the registry like
    any run's."""
    from nstcore import backends
    from nstcore.engine import Engine
    from nstcore.plugins import get_plugin_manager

    content, style = bench_images(size)
    registry = get_plugin_manager().registry
    losses = [registry.get("loss", n).create(name=n) for n in ("content", "gram", "tv")]
    component = _extractor_component()
    extractor = component.create(**component.resolve_options({"precision": precision}))
    solver_component = registry.get("solver", solver)
    options = solver_component.resolve_options({"jit_compile": compilation == "xla"})
    engine = Engine(extractor, losses, solver_component.create(**options), device=device.name)
    stepper = engine.start(content, style)
    state = {"evaluations": 0, "device": ""}

    def step() -> None:
        with engine.device_scope():
            total, _, state["evaluations"] = stepper.step()
            float(total)
            image = stepper.image()
            float(backends.ops().sum(image))  # the update itself has finished
            state["device"] = str(image.device)  # a NumPy image (L-BFGS-B's) says "cpu"

    gflop = _gflop(engine.layers(), content.shape[0] * content.shape[1])
    return StepTarget(slowed(step, slowdown_fraction()), lambda: state["evaluations"], gflop,
                      lambda: state["device"])


def paired_ratios(target: StepTarget, reference: StepTarget, pairs: int) -> list[float]:
    """``pairs`` interleaved steps of ``target`` and ``reference``: their per-pair time ratios.

    On a shared 2-core machine the speed drifts by tens of per cent within a minute; a ratio of
    two steps taken back to back (in alternating order) sees the same machine, so its median is
    the figure the CI gate compares.
    """
    ratios = []
    for index in range(pairs):
        first, second = (target, reference) if index % 2 == 0 else (reference, target)
        times = {}
        for unit in (first, second):
            start = time.perf_counter()
            unit.step()
            times[id(unit)] = time.perf_counter() - start
        ratios.append(times[id(target)] / times[id(reference)])
    return ratios


def run_loop_pairs(size: int, device: BenchDevice, reference: StepTarget, pairs: int
                   ) -> tuple[list[float], list[float], float]:
    """Adam through ``prepare_run(...).execute()``, the whole loop ``nstcore run`` uses (per-step
    result read-back, image copy, finiteness checks, the on_step hooks), with one ``reference``
    step inside each step's hook: (run-loop step seconds, ratios to the reference, GFLOP/step).

    A run-loop step is the time from the end of one hook to the start of the next.
    """
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    content, style = bench_images(size)
    settings = Settings(preset="tutorial", steps=pairs + 2, size=size)  # the tutorial's step
    prepared = prepare_run(settings, content, style)
    prepared.engine.device = device.name
    fraction = slowdown_fraction()
    if fraction > 0:
        prepared.engine.solver.start = _slowed_start(prepared.engine.solver.start, fraction)
    marks: list[tuple[float, float, float]] = []  # (hook entered, reference seconds, hook left)

    def on_step(info: Any) -> None:
        entered = time.perf_counter()
        reference.step()
        done = time.perf_counter()
        marks.append((entered, done - entered, time.perf_counter()))

    prepared.execute(on_step=on_step)
    steps, ratios = [], []
    for (_, ref_seconds, left), (entered, _, _) in zip(marks[1:], marks[2:]):
        steps.append(entered - left)
        ratios.append((entered - left) / ref_seconds)
    gflop = _gflop(prepared.engine.layers(), content.shape[0] * content.shape[1])
    return steps, ratios, gflop


def _slowed_start(start: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    """``solver.start`` whose steppers' steps are ``fraction`` slower (for testing the gate)."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        stepper = start(*args, **kwargs)
        stepper.step = slowed(stepper.step, fraction)
        return stepper

    return wrapped


def weights_path() -> str:
    """The VGG19 weights file a default run uses, for the tutorial's own code to load too."""
    component = _extractor_component()
    return component.create(**component.resolve_options({})).describe()["weights"]["path"]


def tutorial_target(size: int, device: BenchDevice, compilation: str) -> StepTarget:
    """The tutorial's own Adam train step, written plainly (benchmarks/tutorial_reference.py)."""
    import tensorflow as tf

    from nstcore_benchmarks.tutorial_reference import TutorialRun

    content, style = bench_images(size)
    with tf.device(device.name):
        run = TutorialRun(tf.constant(content[None]), tf.constant(style[None]), weights_path(),
                          jit_compile=compilation == "xla")
    state = {"evaluations": 0, "device": ""}

    def step() -> None:
        with tf.device(device.name):
            float(run.train_step()[0])
            float(tf.reduce_sum(run.image))
            state["device"] = run.image.device
        state["evaluations"] += 1

    gflop = _gflop(TUTORIAL_LAYERS, content.shape[0] * content.shape[1])
    return StepTarget(step, lambda: state["evaluations"], gflop, lambda: state["device"])


def warm_up(target: StepTarget) -> float:
    """The first step (tracing, compilation), timed on its own and kept out of the rounds."""
    start = time.perf_counter()
    target.step()
    return time.perf_counter() - start


# -- reading results ----------------------------------------------------------------------------
STEP_IMPLS = ("tutorial", "nstcore", "run")  # train-step rows; "quality" and "memory" rows differ


def rows_from_json(data: dict[str, Any], impls: tuple[str, ...] = STEP_IMPLS) -> list[dict[str, Any]]:
    """Flatten pytest-benchmark JSON into one dict per benchmark (params, extra_info, median),
    keeping the rows whose ``impl`` is one of ``impls`` (by default the train-step rows)."""
    rows = []
    for bench in data.get("benchmarks", []):
        row = dict(bench.get("params") or {})
        row.update(bench.get("extra_info") or {})
        if row.get("impl") not in impls:
            continue
        # a run-loop row times a whole run; its step time is the median of its per-step times
        row["median_seconds"] = row.get("step_median_seconds") or bench["stats"]["median"]
        rows.append(row)
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Per row: GFLOP/s, fraction of the same device's calibrated matmul, ratio to the tutorial step."""
    tutorial = {(r["size"], r["device"], r["compilation"]): r["median_seconds"]
                for r in rows if r["impl"] == "tutorial"}
    graph_tutorial = {(s, d): t for (s, d, c), t in tutorial.items() if c == "graph"}
    for row in rows:
        per_step = row["median_seconds"]
        row["gflops"] = row["gflop_per_step"] / per_step
        row["fraction_of_matmul"] = row["gflops"] / row["matmul_gflops"]
        reference = tutorial.get((row["size"], row["device"], row["compilation"])) or \
            graph_tutorial.get((row["size"], row["device"]))
        row["ratio_to_tutorial"] = per_step / reference if reference else None


def pair_devices(rows: list[dict[str, Any]], unavailable: dict[str, str] | None = None
                 ) -> list[dict[str, Any]]:
    """One line per (size, solver, compilation) of nstcore, with CPU and GPU side by side."""
    unavailable = unavailable or {}
    lines: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        if row["impl"] != "nstcore":
            continue
        key = (row["size"], row["solver"], row["compilation"], row.get("precision", "float32"))
        line = lines.setdefault(key, {"size": key[0], "solver": key[1], "compilation": key[2],
                                      "precision": key[3]})
        line[row["device"]] = row
    out = []
    for key in sorted(lines):
        line = lines[key]
        cpu, gpu = line.get("cpu"), line.get("gpu")
        line["speedup"] = (cpu["median_seconds"] / gpu["median_seconds"]) if cpu and gpu else None
        line["gpu_note"] = "" if gpu else f"not available: {unavailable.get('gpu', 'not run')}"
        out.append(line)
    return out


def format_table(rows: list[dict[str, Any]], unavailable: dict[str, str] | None = None) -> str:
    add_ratios(rows)
    header = ("size", "solver", "compile", "precision", "CPU s/step", "GPU s/step", "GPU/CPU speed-up",
              "evals/step", "GFLOP/s", "of matmul", "vs tutorial", "peak GiB")
    table = [header]
    for line in pair_devices(rows, unavailable):
        cpu, gpu = line.get("cpu"), line.get("gpu")
        main = cpu or gpu
        table.append((
            str(line["size"]), line["solver"], line["compilation"], line["precision"],
            f"{cpu['median_seconds']:.3f}" if cpu else "-",
            f"{gpu['median_seconds']:.3f}" if gpu else line["gpu_note"],
            f"{line['speedup']:.2f}x" if line["speedup"] else "-",
            f"{main['evaluations_per_step']:.2f}", f"{main['gflops']:.1f}",
            f"{main['fraction_of_matmul']:.2f}",
            _ratio_cell(main),
            f"{main['peak_memory_mb'] / 1024:.2f}" if main.get("peak_memory_mb") else "-",
        ))
    tutorial_rows = [r for r in rows if r["impl"] == "tutorial"]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    if tutorial_rows:
        lines.append("")
        lines.append("tutorial reference step: " + ", ".join(
            f"{r['size']}px {r['device']} {r['compilation']} {r['median_seconds']:.3f} s"
            f" ({r['fraction_of_matmul']:.2f} of matmul)" for r in tutorial_rows))
    loop_rows = [r for r in rows if r["impl"] == "run"]
    if loop_rows:
        lines.append("run loop (Adam through the engine's run loop, as `nstcore run`): " + ", ".join(
            f"{r['size']}px {r['device']} {r['median_seconds']:.3f} s/step"
            f" ({r['paired_ratio']:.2f} of the tutorial step, paired)" for r in loop_rows))
    calibration = {r["device"]: r["matmul_gflops"] for r in rows}
    lines.append("calibrated matmul: " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in calibration.items()))
    return "\n".join(lines)


def _ratio_cell(row: dict[str, Any]) -> str:
    """The paired ratio (what the gate compares) when measured, else the ratio of medians."""
    if row.get("paired_ratio") is not None:
        return f"{row['paired_ratio']:.2f}"
    return f"{row['ratio_to_tutorial']:.2f}" if row.get("ratio_to_tutorial") else "-"


# -- the gate -----------------------------------------------------------------------------------
#: The median over interleaved pairs of (nstcore step / tutorial step): see ``paired_ratios``.
GATED_FIGURE = "paired_ratio"
GATED_IMPLS = ("nstcore", "run")  # the solver step alone, and Adam through the run loop


def gate_key(row: dict[str, Any]) -> str:
    key = f"{row['impl']}/{row['solver']}/{row['size']}/{row['device']}/{row['compilation']}"
    precision = row.get("precision", "float32")
    return key if precision == "float32" else f"{key}/{precision}"


def baseline_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    add_ratios(rows)
    return {"figure": GATED_FIGURE,
            "rows": {gate_key(r): round(r[GATED_FIGURE], 4) for r in rows
                     if r["impl"] in GATED_IMPLS and r.get(GATED_FIGURE) is not None}}


class BaselineError(ValueError):
    """Saved runs that cannot make an honest baseline (slowed, partial, or too few)."""


def baseline_from_runs(runs: list[dict[str, Any]], note: str = "") -> dict[str, Any]:
    """The median of several saved runs per row, with the spread (max/min - 1) across them.

    Refuses a run made with the test-only slowdown, and runs that do not all have the same rows
    (a partial run would silently drop rows from the gate).
    """
    per_run = []
    for index, run in enumerate(runs, 1):
        rows = rows_from_json(run)
        if any(r.get("slowdown") for r in rows):
            raise BaselineError(f"run {index} was made with {SLOWDOWN_ENV} set; a baseline must"
                                " come from the real engine")
        per_run.append(baseline_from_rows(rows)["rows"])
    if not per_run or not per_run[0]:
        raise BaselineError("no gated rows in these runs")
    keys = sorted(set().union(*per_run))
    for index, rows in enumerate(per_run, 1):
        missing = sorted(set(keys) - set(rows))
        if missing:
            raise BaselineError(f"run {index} lacks row(s) {', '.join(missing)}; use complete runs")
    values = {k: sorted(r[k] for r in per_run) for k in keys}
    return {"figure": GATED_FIGURE, "note": note or f"median of {len(runs)} runs per row",
            "runs": len(runs),
            "rows": {k: round(statistics.median(v), 4) for k, v in values.items()},
            "spread": {k: round(v[-1] / v[0] - 1, 4) for k, v in values.items()}}


def compare(rows: list[dict[str, Any]], baseline: dict[str, Any], threshold: float
            ) -> tuple[list[str], list[str]]:
    """(report lines, failures): each gated figure against the baseline; higher is slower.

    Every baseline row must be in the run (a missing row fails), a baseline row whose recorded
    run-to-run spread exceeds half the threshold fails (its noise alone could cross it: rebuild
    it with more rounds), and no rows in common is a failure, never a pass.
    """
    add_ratios(rows)
    report, failures = [], []
    spreads = baseline.get("spread", {})
    measured = {gate_key(r): r[GATED_FIGURE] for r in rows
                if r["impl"] in GATED_IMPLS and r.get(GATED_FIGURE) is not None}
    expected = baseline.get("rows", {})
    if not expected:
        failures.append("the baseline has no rows")
    for key in sorted(expected):
        before = expected[key]
        if key not in measured:
            line = f"{key}: in the baseline but not measured in this run"
            report.append(line)
            failures.append(line)
            continue
        now = measured[key]
        change = now / before - 1.0
        line = f"{key}: {GATED_FIGURE} {before:.3f} -> {now:.3f} ({change:+.1%})"
        if spreads.get(key, 0.0) > threshold / 2:
            line += (f" (baseline spread {spreads[key]:.0%} exceeds half the threshold: too noisy"
                     " to gate; rebuild the baseline with a longer --min-time)")
            failures.append(line)
        elif change > threshold:
            failures.append(line)
        report.append(line)
    for key in sorted(set(measured) - set(expected)):
        report.append(f"{key}: not in the baseline (not gated)")
    return report, failures


def load_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
