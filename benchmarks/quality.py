"""Time to quality: how long nstcore's defaults take to reach what 1000 tutorial Adam steps reach.

The target is the tutorial's objective (its layers and weights, at the final size) after K steps
of the tutorial's own Adam (``tutorial_reference.TutorialRun``), the same images, the same
weights file. nstcore then runs as ``nstcore run C S --size N`` would (its defaults: the image
pyramid, Adam, ``--steps`` at each scale) from the content image, and its clock starts when the
run starts: the coarse scales, each scale's targets and each trace count, the process start-up
and the network's loading do not (the tutorial's time does not include them either). At the final
size the run goes on past the defaults' last step until the objective is at or below the target,
or until ``cap`` times the tutorial's time has passed, so one run gives both "where the defaults
end" and "when the target is reached".

The tutorial's time is K times its median step (tracing excluded). K steps at 512 px take about
100 minutes on 2 cores, so a reference *curve* (the objective after every step) is saved once per
size and reused: the target then comes from the curve, and the tutorial's per-step time is
measured again in the same run (``timing_steps`` steps) and multiplied by K.

    python -m nstcore_benchmarks.quality --size 256 --json out/quality-256.json
    python -m nstcore_benchmarks.quality --size 256 --variant defaults --variant 'coarse50:scale_steps=50,50,1'
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from nstcore.files import atomic_write_bytes
from nstcore_benchmarks.peer import cpu_name

CURVES = Path(__file__).with_name("results")
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},  # nstcore run C S --size N
    "lbfgs": {"optimizer": "lbfgs"},  # ... --optimizer lbfgs
}


class Tutorial:
    """The tutorial's run at one size, and its objective for judging any image."""

    def __init__(self, size: int):
        import tensorflow as tf

        from nstcore.bench import bench_images, weights_path
        from nstcore_benchmarks.tutorial_reference import TutorialRun

        self.size = size
        content, style = bench_images(size)
        self.weights = weights_path()
        self.run = TutorialRun(tf.constant(content[None]), tf.constant(style[None]), self.weights)
        self._objective = tf.function(self.run.total_loss)

    def objective(self, image: Any) -> float:
        """The tutorial's total loss of ``image`` ((h, w, 3) or (1, h, w, 3) in [0, 1])."""
        import numpy as np
        import tensorflow as tf

        array = np.asarray(image, dtype=np.float32)
        return float(self._objective(tf.constant(array if array.ndim == 4 else array[None]))[0])

    def steps(self, count: int, progress: bool = False) -> tuple[list[float], list[float]]:
        """``count`` train steps: (objective after each step, seconds of each step)."""
        values, seconds = [], []
        for index in range(count):
            start = time.perf_counter()
            before = float(self.run.train_step()[0])  # the value at the image before the update
            seconds.append(time.perf_counter() - start)
            if index:
                values.append(before)
            if progress and (index + 1) % 50 == 0:
                print(f"  tutorial {self.size} px: step {index + 1}/{count}  {before:.4e}"
                      f"  {statistics.median(seconds[1:]):.2f} s/step", file=sys.stderr, flush=True)
        values.append(self.objective(self.run.image))
        return values, seconds


def curve_path(size: int, steps: int) -> Path:
    return CURVES / f"quality-curve-{size}px-{steps}.json"


def reference(size: int, steps: int, timing_steps: int, tutorial: Tutorial, *,
              use_saved: bool = True, progress: bool = False) -> dict[str, Any]:
    """The target (objective after ``steps`` tutorial steps) and the tutorial's time for them."""
    import tensorflow as tf

    saved = curve_path(size, steps)
    if use_saved and saved.is_file():
        curve = json.loads(saved.read_text())
        _, seconds = tutorial.steps(timing_steps + 1, progress=progress)  # the first one traces
        source = f"saved curve {saved.name} ({curve['cpu']}, {curve['date']}); per-step time timed now"
    else:
        values, seconds = tutorial.steps(steps, progress=progress)
        curve = {"size": size, "steps": steps, "values": values, "cpu": cpu_name(),
                 "tensorflow": tf.__version__, "date": time.strftime("%Y-%m-%d"),
                 "weights": Path(tutorial.weights).name, "step_seconds": seconds}
        atomic_write_bytes(saved, (json.dumps(curve, indent=1) + "\n").encode())
        source = f"run now ({steps} steps), curve saved to {saved.name}"
    per_step = statistics.median(seconds[1:])
    return {"size": size, "reference_steps": steps, "target": curve["values"][-1],
            "curve": curve["values"], "tutorial_step_seconds": per_step,
            "tutorial_seconds": per_step * steps, "tutorial_first_step_seconds": seconds[0],
            "reference_source": source}


def time_to_target(size: int, target: float, overrides: dict[str, Any], cap_seconds: float,
                   tutorial: Tutorial) -> dict[str, Any]:
    """nstcore's run with ``overrides`` on the defaults; the final size goes on until ``target``."""
    from nstcore.bench import bench_images
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    content, style = bench_images(size)
    settings = Settings(size=size, **overrides)
    prepared = prepare_run(settings, content, style)
    default_steps = list(prepared.steps)
    prepared.steps = default_steps[:-1] + [10**6]  # go on at the final size; stopped below
    defaults_end = sum(default_steps)
    final = max(content.shape[:2])
    seen: dict[str, Any] = {"reached": None, "defaults_end": None, "best": float("inf"), "steps": 0}
    start = time.perf_counter()

    def on_step(info: Any) -> bool:
        now = time.perf_counter() - start
        seen["steps"] = info.step
        if info.size == final:
            seen.setdefault("first", info.total)
            seen["best"] = min(seen["best"], info.total)
            if info.total <= target and seen["reached"] is None:
                seen["reached"] = {"seconds": now, "step": info.step, "value": info.total}
        if info.step == defaults_end:
            seen["defaults_end"] = {"seconds": now, "value": info.total}
        return seen["reached"] is None and now < cap_seconds

    result = prepared.execute(on_step=on_step)
    seconds = time.perf_counter() - start
    return {"sizes": prepared.sizes, "default_steps": default_steps, "steps": seen["steps"],
            "evaluations": result.evaluations, "reached": seen["reached"],
            "defaults_end": seen["defaults_end"], "best_final_size_value": seen["best"],
            "first_final_size_value": seen.get("first"),
            "seconds": seconds, "stopped": result.stopped,
            "final_size_reached": result.image.shape[:2] == content.shape[:2],
            # the same image judged by the tutorial's own code: the objectives must agree
            "tutorial_value_of_last_image": tutorial.objective(result.image)
            if result.image.shape[:2] == content.shape[:2] else None}


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``defaults``, ``lbfgs``, or ``NAME:option=value;option=value`` (run options as
    ``nstcore.stylize`` takes them, e.g. ``coarse50:scale_steps=50,50,1``)."""
    name, sep, rest = spec.partition(":")
    if not sep:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}"
                             " or give NAME:option=value;...")
        return name, dict(VARIANTS[name])
    overrides = {}
    for item in filter(None, rest.split(";")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"variant {spec!r}: {item!r} is not option=value")
        overrides[key.strip()] = value.strip()
    return name, overrides


def measure(size: int, variants: list[str], steps: int = 1000, timing_steps: int = 20,
            cap: float = 0.25, use_saved: bool = True, progress: bool = False) -> list[dict[str, Any]]:
    """One row per variant: seconds to the target and the ratio to the tutorial's time."""
    parsed = [parse_variant(v) for v in variants]
    tutorial = Tutorial(size)
    ref = reference(size, steps, timing_steps, tutorial, use_saved=use_saved, progress=progress)
    rows = []
    for name, overrides in parsed:
        rows.append(row(name, ref, cap, time_to_target(size, ref["target"], overrides,
                                                       cap * ref["tutorial_seconds"], tutorial)))
        if progress:
            print(format_rows(rows[-1:]), file=sys.stderr, flush=True)
    return rows


def row(variant: str, ref: dict[str, Any], cap: float, got: dict[str, Any]) -> dict[str, Any]:
    """One result: the reference, nstcore's run, and the ratio of their times (the goal's figure;
    a lower bound when the target was not reached within the cap)."""
    reached = got["reached"]
    return {"impl": "quality", "variant": variant, "cpu": cpu_name(),
            **{k: v for k, v in ref.items() if k != "curve"}, **got,
            "seconds_to_target": reached["seconds"] if reached else None,
            "ratio": (reached["seconds"] if reached else got["seconds"]) / ref["tutorial_seconds"],
            "cap": cap}


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("size", "variant", "target (K tutorial steps)", "tutorial s", "nstcore s to target",
              "ratio", "defaults end: s / value", "scales")
    table = [header]
    for row in rows:
        end = row.get("defaults_end")
        ratio = f"{row['ratio']:.3f}" if row["reached"] else f"> {row['ratio']:.3f} (not reached)"
        table.append((str(row["size"]), row["variant"],
                      f"{row['target']:.4e} ({row['reference_steps']})",
                      f"{row['tutorial_seconds']:.0f} ({row['tutorial_step_seconds']:.3f}/step)",
                      f"{row['seconds_to_target']:.1f}" if row["reached"] else
                      f"- (best {row['best_final_size_value']:.4e} in {row['seconds']:.0f} s)"
                      if row["final_size_reached"] else
                      f"- (still at a coarser scale after {row['seconds']:.0f} s)",
                      ratio,
                      f"{end['seconds']:.0f} / {end['value']:.4e}" if end else "-",
                      ",".join(map(str, row["sizes"]))))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--variant", action="append", dest="variants",
                        help="repeatable: defaults, lbfgs, or NAME:option=value;... (default: defaults"
                        " and lbfgs)")
    parser.add_argument("--reference-steps", type=int, default=1000)
    parser.add_argument("--timing-steps", type=int, default=20,
                        help="tutorial steps timed in this run when the saved curve gives the target")
    parser.add_argument("--cap", type=float, default=0.25,
                        help="stop a variant after this fraction of the tutorial's time (default 0.25)")
    parser.add_argument("--fresh", action="store_true", help="run the reference again, ignoring a saved curve")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    from nstcore.tfload import load_tensorflow

    load_tensorflow()
    rows = measure(args.size, args.variants or ["defaults", "lbfgs"],
                   args.reference_steps, args.timing_steps, args.cap, not args.fresh, progress=True)
    print(f"CPU: {cpu_name()}")
    print(format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
