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
    report, regressions = bench.compare(noisy, baseline, 0.25)
    assert len(report) == 1 and "+20.0%" in report[0] and regressions == []
    slow = [_row("tutorial", "adam", 64, "cpu", 0.1), _row("nstcore", "adam", 64, "cpu", 0.14)]
    assert len(bench.compare(slow, baseline, 0.25)[1]) == 1
    # a row too noisy to gate is reported, not failed
    noisy_baseline = dict(baseline, spread={"nstcore/adam/64/cpu/graph": 0.3})
    report, regressions = bench.compare(slow, noisy_baseline, 0.25)
    assert regressions == [] and "not gated: run-to-run spread 30%" in report[0]


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
    assert by_device["cpu"]["device_name"].endswith("CPU:0")
    assert by_device["gpu"]["device_name"] == "/device:CPU:1"
    for row in rows:
        assert row["evaluations_per_step"] == 1.0 and row["warmup_seconds"] > row["median_seconds"]
        assert row["gflop_per_step"] > 0 and row["peak_memory_mb"] > 0
    (line,) = bench.pair_devices(rows)
    assert line["speedup"] is not None and "not available" not in line["gpu_note"]
    assert "x" in stdout.split("nstcore train-step benchmarks")[1]  # the speed-up column is filled


def test_gate_catches_a_deliberately_slowed_engine(tmp_path):
    """An extra redundant forward pass per evaluation must fail the CI gate's threshold."""
    rows, _ = _harness(tmp_path, ["--bench-sizes", "128", "--bench-solvers", "adam",
                                  "--bench-devices", "cpu", "--bench-compile", "graph",
                                  "--bench-rounds", "5"], {bench.SLOWDOWN_ENV: "1"})
    baseline = bench.load_json(ROOT / "benchmarks" / "baseline.json")
    report, regressions = bench.compare(rows, baseline, 0.25)
    assert len(report) == 1 and len(regressions) == 1, report
