"""One backend's train-step timings, in a process of its own (Keras picks its backend once per
process): ``python -m nstcore_benchmarks.backends --backend jax --sizes 256,512``.

``nstcore bench --backends tensorflow,jax,torch`` runs this once per backend and prints one
table; the GPU check (benchmarks/gpu_check.sh) runs it on a machine with a GPU. Per size it
measures nstcore's Adam step (the default objective: VGG19 to block5_conv2, Gram on
block1..5_conv1, content on block5_conv2, TV; bundled astronaut and Starry Night), its first step
(tracing or compiling) apart, the median of the next ``--steps``, each read back before its
timer stops; the process's calibrated float32 matmul rate on the same device; host peak RSS;
device peak memory where the backend reports one. On tensorflow it also times the tutorial's
own step (benchmarks/tutorial_reference.py), the reference row of the table.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from nstcore import backends


def time_steps(target: Any, steps: int) -> tuple[float, float]:
    """(first step, median of the next ``steps``) in seconds, of a :class:`nstcore.bench.StepTarget`."""
    from nstcore.bench import warm_up

    first = warm_up(target)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        target.step()
        seconds.append(time.perf_counter() - start)
    return first, statistics.median(seconds)


def measure(backend_name: str, devices: list[str], sizes: list[int], precisions: list[str],
            steps: int) -> list[dict[str, Any]]:
    """The rows of one backend: the harness's own targets (:mod:`nstcore.bench`), timed here."""
    backends.choose(backend_name)
    backend = backends.get()
    from nstcore import bench
    from nstcore.device import resolve_device

    rows = []
    for label in devices:
        try:
            device = bench.BenchDevice(label, resolve_device(label))
        except Exception as exc:  # no GPU here: one row saying so
            rows.append({"backend": backend_name, "device": label, "skipped": str(exc)})
            continue
        gflops = bench.matmul_gflops(device.name)
        for size in sizes:
            work = [("tutorial", "float32")] if backend_name == "tensorflow" else []
            work += [("nstcore", precision) for precision in precisions]
            for what, precision in work:
                bench.reset_peak_memory(device)
                target = (bench.tutorial_target(size, device, "graph") if what == "tutorial" else
                          bench.nstcore_target("adam", size, device, "graph", precision))
                first, median = time_steps(target, steps)
                peak = backend.peak_memory(device.name)
                gflop = target.gflop_per_evaluation
                rows.append({"backend": backend_name, "version": backend.version(),
                             "device": label, "device_name": backend.device_label(device.name),
                             "what": what, "precision": precision, "size": size,
                             "first_step_seconds": first, "median_step_seconds": median,
                             "steps": steps, "gflop_per_step": gflop, "matmul_gflops": gflops,
                             "share_of_matmul": gflop / median / gflops,
                             "host_peak_rss_gib": bench.peak_rss_mb() / 1024,
                             "device_peak_gib": peak / 2**30 if peak is not None else None})
                del target
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=backends.NAMES)
    parser.add_argument("--devices", default="cpu")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    rows = measure(args.backend, args.devices.split(","), [int(s) for s in args.sizes.split(",")],
                   args.precision.split(","), args.steps)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
