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

import numpy as np

from nstcore import backends


def peak_rss_gib() -> float:
    """The process's peak resident memory since the last :func:`reset_rss` (Linux), in GiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 2**20
    return float("nan")


def reset_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def matmul_gflops(device: str, n: int = 2048, repeats: int = 7) -> float:
    """Best-of-``repeats`` float32 ``keras.ops.matmul`` rate on ``device``, read back each time."""
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


def time_steps(step: Any, steps: int) -> tuple[float, float]:
    """(first step, median of the next ``steps``) in seconds."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return first, statistics.median(seconds)


def nstcore_step(size: int, device: str, precision: str) -> tuple[Any, float]:
    """nstcore's Adam step at ``size`` (its plugins built through the registry, as a run's) and
    its GFLOP (forward and input gradient)."""
    from nstcore.bench import bench_images
    from nstcore.engine import Engine
    from nstcore.plugins import get_plugin_manager

    content, style = bench_images(size)
    registry = get_plugin_manager().registry
    losses = [registry.get("loss", n).create(name=n) for n in ("content", "gram", "tv")]
    component = registry.get("extractor", "vgg19")
    extractor = component.create(**component.resolve_options({"precision": precision}))
    engine = Engine(extractor, losses, registry.get("solver", "adam").create(), device=device)
    stepper = engine.start(content, style)

    def step() -> None:
        with engine.device_scope():
            total, _, _ = stepper.step()
            float(total)
            float(backends.ops().sum(stepper.image()))  # the update itself has finished

    flops = extractor.flops_per_pixel(engine.layers())
    return step, 2.0 * flops * content.shape[0] * content.shape[1] / 1e9


def tutorial_step(size: int, device: str) -> Any:
    """The TensorFlow tutorial's own Adam step (tensorflow only)."""
    import tensorflow as tf

    from nstcore.bench import bench_images, weights_path
    from nstcore_benchmarks.tutorial_reference import TutorialRun

    content, style = bench_images(size)
    with tf.device(device):
        run = TutorialRun(tf.constant(content[None]), tf.constant(style[None]), weights_path())

    def step() -> None:
        with tf.device(device):
            float(run.train_step()[0])
            float(tf.reduce_sum(run.image))

    return step


def measure(backend_name: str, devices: list[str], sizes: list[int], precisions: list[str],
            steps: int) -> list[dict[str, Any]]:
    backends.choose(backend_name)
    backend = backends.get()
    from nstcore.device import resolve_device

    rows = []
    for label in devices:
        try:
            device = resolve_device(label)
        except Exception as exc:  # no GPU here: one row saying so
            rows.append({"backend": backend_name, "device": label, "skipped": str(exc)})
            continue
        gflops = matmul_gflops(device)
        for size in sizes:
            work = [("tutorial", "float32")] if backend_name == "tensorflow" else []
            work += [("nstcore", precision) for precision in precisions]
            for what, precision in work:
                reset_rss()
                backend.reset_peak_memory(device)
                if what == "tutorial":
                    step, gflop = tutorial_step(size, device), nstcore_step(size, device, "float32")[1]
                else:
                    step, gflop = nstcore_step(size, device, precision)
                first, median = time_steps(step, steps)
                peak = backend.peak_memory(device)
                rows.append({"backend": backend_name, "version": backend.version(),
                             "device": label, "device_name": backend.device_label(device),
                             "what": what, "precision": precision, "size": size,
                             "first_step_seconds": first, "median_step_seconds": median,
                             "steps": steps, "gflop_per_step": gflop, "matmul_gflops": gflops,
                             "share_of_matmul": gflop / median / gflops,
                             "host_peak_rss_gib": peak_rss_gib(),
                             "device_peak_gib": peak / 2**30 if peak is not None else None})
                del step
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
