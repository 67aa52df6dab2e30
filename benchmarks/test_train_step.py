"""Time one train step of nstcore (and of the tutorial's own code) per solver, size, device, compilation.

The unit timed is one step: value, gradient and update (for L-BFGS one iteration, its loss
evaluations counted). Each timed call reads its result back before the timer stops; tracing and
compilation happen in a warm-up step reported separately as ``warmup_seconds``. Short steps get
more rounds (``--bench-min-time``). Each nstcore row then also alternates its step with the
tutorial's step of the same size and device, and records the median ratio of those back-to-back
pairs (``paired_ratio``): the figure the CI gate compares, immune to the machine's speed drifting
between rows. Rows with impl ``run`` time Adam through the engine's whole run loop, as
``nstcore run`` does, paired the same way.
"""
from __future__ import annotations

import math
import platform
import statistics
import time

import pytest

from nstcore import bench

from .conftest import RESULTS


def _timed(target) -> float:
    start = time.perf_counter()
    target.step()
    return time.perf_counter() - start


def test_train_step(benchmark, case, devices, calibration, rounds, min_time, paired):
    import tensorflow as tf

    impl, solver, size, label, compilation, precision = case
    device = devices[label]
    if not device.available:
        pytest.skip(f"{label}: {device.reason}")
    info = {"impl": impl, "solver": solver, "size": size, "device": label,
            "compilation": compilation, "precision": precision, "device_name": device.name,
            "tf_version": tf.__version__, "machine": platform.machine(),
            "slowdown": bench.slowdown_fraction() if impl != "tutorial" else 0.0}
    if impl == "run":
        _run_loop(benchmark, info, size, device, compilation, rounds, min_time, calibration[label])
        return
    if impl == "tutorial":
        target = bench.tutorial_target(size, device, compilation)
    else:
        target = bench.nstcore_target(solver, size, device, compilation, precision=precision)
    warmup = bench.warm_up(target)
    n_rounds = max(rounds, math.ceil(min_time / max(_timed(target), 1e-3)))
    evaluations_before = target.evaluations()
    bench.reset_peak_memory(device)
    benchmark.pedantic(target.step, rounds=n_rounds, iterations=1, warmup_rounds=0)
    evaluations = (target.evaluations() - evaluations_before) / n_rounds
    median = benchmark.stats.stats.median
    gflop = target.gflop_per_evaluation * evaluations
    info.update({
        "rounds": n_rounds, "ran_on": target.ran_on(),
        "warmup_seconds": warmup, "evaluations_per_step": evaluations, "gflop_per_step": gflop,
        "gflops": gflop / median, "matmul_gflops": calibration[label],
        "fraction_of_matmul": gflop / median / calibration[label],
        "peak_memory_mb": bench.peak_memory_mb(device),
    })
    if impl == "nstcore" and paired:
        reference = bench.tutorial_target(size, device, compilation)
        bench.warm_up(reference)
        pairs = max(rounds, math.ceil(min_time / max(median + _timed(reference), 1e-3)))
        ratios = bench.paired_ratios(target, reference, pairs)
        info.update({"paired_ratio": statistics.median(ratios), "pairs": pairs})
    benchmark.extra_info.update(info)
    RESULTS.append({**info, "median_seconds": median})


def _run_loop(benchmark, info, size, device, compilation, rounds, min_time, matmul):
    """One whole run through the run loop, a tutorial step inside each step's hook."""
    reference = bench.tutorial_target(size, device, compilation)
    bench.warm_up(reference)
    pairs = max(rounds, 8, math.ceil(min_time / max(2 * _timed(reference), 1e-3)))
    bench.reset_peak_memory(device)
    seconds, ratios, gflop = benchmark.pedantic(bench.run_loop_pairs,
                                                args=(size, device, reference, pairs),
                                                rounds=1, iterations=1, warmup_rounds=0)
    median = statistics.median(seconds)
    info.update({"rounds": len(seconds), "steps_seconds": seconds, "evaluations_per_step": 1.0,
                 "gflop_per_step": gflop, "gflops": gflop / median, "matmul_gflops": matmul,
                 "fraction_of_matmul": gflop / median / matmul, "step_median_seconds": median,
                 "paired_ratio": statistics.median(ratios), "pairs": len(ratios),
                 "peak_memory_mb": bench.peak_memory_mb(device)})
    benchmark.extra_info.update(info)
    RESULTS.append({**info, "median_seconds": median})
