"""Time one train step of nstcore (and of the tutorial's own code) per solver, size, device, compilation.

The unit timed is one step: value, gradient and update (for L-BFGS one iteration, its loss
evaluations counted). Each timed call reads its result back before the timer stops; tracing and
compilation happen in a warm-up step reported separately as ``warmup_seconds``.
"""
from __future__ import annotations

import platform

import pytest

from nstcore import bench

from .conftest import RESULTS


def test_train_step(benchmark, case, devices, calibration, rounds):
    import tensorflow as tf

    impl, solver, size, label, compilation, precision = case
    device = devices[label]
    if not device.available:
        pytest.skip(f"{label}: {device.reason}")
    if impl == "tutorial":
        target = bench.tutorial_target(size, device, compilation)
    else:
        target = bench.nstcore_target(solver, size, device, compilation, precision=precision)
    warmup = bench.warm_up(target)
    evaluations_before = target.evaluations()
    bench.reset_peak_memory(device)
    benchmark.pedantic(target.step, rounds=rounds, iterations=1, warmup_rounds=0)
    evaluations = (target.evaluations() - evaluations_before) / rounds
    median = benchmark.stats.stats.median
    gflop = target.gflop_per_evaluation * evaluations
    info = {
        "impl": impl, "solver": solver, "size": size, "device": label, "compilation": compilation,
        "precision": precision,
        "device_name": device.name, "tf_version": tf.__version__, "machine": platform.machine(),
        "warmup_seconds": warmup, "evaluations_per_step": evaluations, "gflop_per_step": gflop,
        "gflops": gflop / median, "matmul_gflops": calibration[label],
        "fraction_of_matmul": gflop / median / calibration[label],
        "peak_memory_mb": bench.peak_memory_mb(device),
    }
    benchmark.extra_info.update(info)
    RESULTS.append({**info, "median_seconds": median})
