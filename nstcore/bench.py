"""The benchmark harness behind ``benchmarks/`` and ``nstcore bench``.

Raw seconds drift 2x on a shared 2-core machine, so every run also measures, in the same process,
the machine's matrix-multiply GFLOP/s and the TensorFlow tutorial's own train step; each nstcore
step is reported as a fraction of that matmul rate and as a ratio to the tutorial's step, and
only such ratios are compared against the committed baseline.
"""
from __future__ import annotations

import json
import os
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
    """Best-of-``repeats`` float32 matmul rate on ``device``, read back before the timer stops."""
    import tensorflow as tf

    with tf.device(device):
        a = tf.random.stateless_uniform([n, n], seed=[1, 2])
        b = tf.random.stateless_uniform([n, n], seed=[3, 4])
        product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
        float(product())
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            float(product())
            best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


# -- memory -------------------------------------------------------------------------------------
def reset_peak_memory(device: BenchDevice) -> None:
    import tensorflow as tf

    if device.label == "gpu" and "GPU" in (device.name or ""):
        tf.config.experimental.reset_memory_stats(device.name.split("device:")[-1])
        return
    try:  # Linux: writing 5 resets the process's peak RSS (VmHWM)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_memory_mb(device: BenchDevice) -> float | None:
    import tensorflow as tf

    if device.label == "gpu" and "GPU" in (device.name or ""):
        return tf.config.experimental.get_memory_info(device.name.split("device:")[-1])["peak"] / 2**20
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


class _SlowedObjective:
    """A deliberately slower objective: one redundant extra forward pass (for testing the gate)."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        self.term_names = objective.term_names

    def __call__(self, image: Any):
        import tensorflow as tf

        total, terms = self.objective(image)
        extra = self.objective.extractor(image)
        waste = tf.add_n([tf.reduce_sum(v) for v in extra.values()])
        return total + 0.0 * waste, terms


@dataclass
class StepTarget:
    """One timed unit: ``step()`` runs one train step and returns only after reading results back."""

    step: Callable[[], None]
    evaluations: Callable[[], int]  # objective evaluations so far
    gflop_per_evaluation: float


def nstcore_target(solver: str, size: int, device: BenchDevice, compilation: str,
                   weights: str | None = None, precision: str = "float32") -> StepTarget:
    import tensorflow as tf

    from nstcore.engine import Engine
    from nstcore.plugins import get_plugin_manager

    content, style = bench_images(size)
    registry = get_plugin_manager().registry
    losses = [registry.get("loss", n).create(name=n) for n in ("content", "gram", "tv")]
    extractor = registry.get("extractor", "vgg19").create(weights=weights, precision=precision)
    options = {"jit_compile": True} if compilation == "xla" else {}
    engine = Engine(extractor, losses, registry.get("solver", solver).create(**options),
                    device=device.name)
    if os.environ.get(SLOWDOWN_ENV):
        engine.objective = _SlowedObjective(engine.objective)
    stepper = engine.start(content, style)
    state = {"evaluations": 0}

    def step() -> None:
        with engine.device_scope():
            output = stepper.step()
            if output is None:
                raise RuntimeError("solver stopped (converged or line search failed) during the benchmark")
            total, _, state["evaluations"] = output
            float(total)
            float(tf.reduce_sum(stepper.image()))  # the update itself has finished

    layers = engine.layers()
    pixels = content.shape[0] * content.shape[1]
    gflop = 2.0 * extractor.flops_per_pixel(layers) * pixels / 1e9  # forward + input gradient
    return StepTarget(step, lambda: state["evaluations"], gflop)


def tutorial_target(size: int, device: BenchDevice, compilation: str,
                    weights: str | None = None) -> StepTarget:
    """The tutorial's own Adam train step, written plainly (benchmarks/tutorial_reference.py)."""
    import tensorflow as tf

    from nstcore.weights import resolve
    from nstcore_benchmarks.tutorial_reference import TutorialRun
    from nstcore_builtins.vgg19 import VGG19Extractor

    content, style = bench_images(size)
    with tf.device(device.name):
        run = TutorialRun(tf.constant(content[None]), tf.constant(style[None]),
                          weights or resolve().path, jit_compile=compilation == "xla")
    state = {"evaluations": 0}

    def step() -> None:
        with tf.device(device.name):
            float(run.train_step()[0])
            float(tf.reduce_sum(run.image))
        state["evaluations"] += 1

    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1",
              "block5_conv2"]
    pixels = content.shape[0] * content.shape[1]
    gflop = 2.0 * VGG19Extractor.flops_per_pixel(layers) * pixels / 1e9
    return StepTarget(step, lambda: state["evaluations"], gflop)


def warm_up(target: StepTarget) -> float:
    """The first step (tracing, compilation), timed on its own and kept out of the rounds."""
    start = time.perf_counter()
    target.step()
    return time.perf_counter() - start


# -- reading results ----------------------------------------------------------------------------
def rows_from_json(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten pytest-benchmark JSON into one dict per benchmark (params, extra_info, median)."""
    rows = []
    for bench in data.get("benchmarks", []):
        row = dict(bench.get("params") or {})
        row.update(bench.get("extra_info") or {})
        row["median_seconds"] = bench["stats"]["median"]
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
              "evals/step", "GFLOP/s", "of matmul", "vs tutorial", "peak MB")
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
            f"{main['ratio_to_tutorial']:.2f}" if main["ratio_to_tutorial"] else "-",
            f"{main['peak_memory_mb']:.0f}" if main.get("peak_memory_mb") else "-",
        ))
    tutorial_rows = [r for r in rows if r["impl"] == "tutorial"]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    if tutorial_rows:
        lines.append("")
        lines.append("tutorial reference step: " + ", ".join(
            f"{r['size']}px {r['device']} {r['compilation']} {r['median_seconds']:.3f} s"
            f" ({r['fraction_of_matmul']:.2f} of matmul)" for r in tutorial_rows))
    calibration = {r["device"]: r["matmul_gflops"] for r in rows}
    lines.append("calibrated matmul: " + ", ".join(f"{d} {g:.1f} GFLOP/s" for d, g in calibration.items()))
    return "\n".join(lines)


# -- the gate -----------------------------------------------------------------------------------
GATED_FIGURE = "ratio_to_tutorial"


def gate_key(row: dict[str, Any]) -> str:
    key = f"{row['impl']}/{row['solver']}/{row['size']}/{row['device']}/{row['compilation']}"
    precision = row.get("precision", "float32")
    return key if precision == "float32" else f"{key}/{precision}"


def baseline_from_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    add_ratios(rows)
    return {"figure": GATED_FIGURE,
            "rows": {gate_key(r): round(r[GATED_FIGURE], 4) for r in rows
                     if r["impl"] == "nstcore" and r[GATED_FIGURE] is not None}}


def baseline_from_runs(runs: list[dict[str, Any]], note: str = "") -> dict[str, Any]:
    """The slowest of several saved runs per row (noise stays under the gate), with the spread."""
    per_run = [baseline_from_rows(rows_from_json(run))["rows"] for run in runs]
    keys = sorted(set().union(*per_run))
    values = {k: [r[k] for r in per_run if k in r] for k in keys}
    return {"figure": GATED_FIGURE, "note": note or f"slowest of {len(runs)} runs per row",
            "rows": {k: max(v) for k, v in values.items()},
            "spread": {k: round(max(v) / min(v) - 1, 4) for k, v in values.items()}}


def compare(rows: list[dict[str, Any]], baseline: dict[str, Any], threshold: float
            ) -> tuple[list[str], list[str]]:
    """(report lines, regressions): each gated figure against the baseline; higher is slower.

    A row whose recorded run-to-run spread exceeds half the threshold is reported but not gated:
    its noise alone could cross the threshold.
    """
    add_ratios(rows)
    report, regressions = [], []
    spreads = baseline.get("spread", {})
    for row in rows:
        key = gate_key(row)
        if key not in baseline.get("rows", {}) or row[GATED_FIGURE] is None:
            continue
        before, now = baseline["rows"][key], row[GATED_FIGURE]
        change = now / before - 1.0
        line = f"{key}: {GATED_FIGURE} {before:.3f} -> {now:.3f} ({change:+.1%})"
        if spreads.get(key, 0.0) > threshold / 2:
            report.append(f"{line} (not gated: run-to-run spread {spreads[key]:.0%})")
            continue
        report.append(line)
        if change > threshold:
            regressions.append(line)
    return report, regressions


def load_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
