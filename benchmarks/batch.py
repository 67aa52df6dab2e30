"""``nstcore batch`` (local executor) against the same jobs as separate ``nstcore run`` processes.

Eight content pictures (crops and flips of the bundled astronaut) with one style, at one size and
a fixed number of Adam steps: first eight ``nstcore run`` processes one after another, then one
``nstcore batch`` over the folder, each timed as wall time of whole processes on the same
machine in the same run. The batch pays Python's and TensorFlow's start-up, the weights and the
network once instead of eight times. Goal (issue 10): the batch takes at most 0.6 of the separate
runs' time.

    python -m nstcore_benchmarks.batch --size 256 --steps 10
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from nstcore_benchmarks.peer import cpu_name, timed


def nstcore() -> str:
    return shutil.which("nstcore") or str(Path(sys.executable).with_name("nstcore"))


def make_inputs(folder: Path, count: int) -> tuple[list[Path], Path]:
    from PIL import Image, ImageOps

    from nstcore.run import asset

    folder.mkdir(parents=True, exist_ok=True)
    photo = Image.open(asset("astronaut.png")).convert("RGB")
    contents = []
    for index in range(count):
        box = (index * 16, index * 8, photo.width - (count - index) * 8, photo.height - index * 12)
        picture = photo.crop(box)
        if index % 2:
            picture = ImageOps.mirror(picture)
        path = folder / f"content{index}.png"
        picture.save(path)
        contents.append(path)
    style = folder.parent / "style.jpg"
    shutil.copy(asset("starry_night.jpg"), style)
    return contents, style


def step_seconds(report: Path) -> float:
    return sum(json.loads(report.read_text())["timings"]["step_seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    options = ["--size", str(args.size), "--scales", "1", "--steps", str(args.steps), "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        contents, style = make_inputs(root / "in", args.jobs)
        separate = sum(timed([nstcore(), "run", str(c), str(style), "-o", str(root / f"run{i}.png"),
                              "--report", str(root / f"run{i}.json"), *options])
                       for i, c in enumerate(contents))
        batch = timed([nstcore(), "batch", str(root / "in"), str(style), "--out-dir", str(root / "out"),
                       *options])
        # the steps themselves (first step, with its tracing, included) from each run's report
        separate_steps = sum(step_seconds(root / f"run{i}.json") for i in range(args.jobs))
        batch_steps = sum(step_seconds(path) for path in (root / "out").glob("*.json"))
    figures = {"cpu": cpu_name(), "jobs": args.jobs, "size": args.size, "steps": args.steps,
               "separate_seconds": round(separate, 1), "batch_seconds": round(batch, 1),
               "separate_per_job": round(separate / args.jobs, 2), "batch_per_job": round(batch / args.jobs, 2),
               "ratio": round(batch / separate, 3),
               "separate_outside_steps_per_job": round((separate - separate_steps) / args.jobs, 2),
               "batch_outside_steps_per_job": round((batch - batch_steps) / args.jobs, 2)}
    print(f"{args.jobs} jobs at {args.size} px, {args.steps} Adam steps each, on {figures['cpu']}:")
    print(f"  separate nstcore run processes: {separate:.1f} s ({separate / args.jobs:.2f} s/job)")
    print(f"  one nstcore batch (local):      {batch:.1f} s ({batch / args.jobs:.2f} s/job)")
    print(f"  batch / separate = {batch / separate:.3f} (goal: at most 0.6)")
    print(f"  time outside the steps per job: separate {figures['separate_outside_steps_per_job']} s,"
          f" batch {figures['batch_outside_steps_per_job']} s (start-up, imports, weights, files;"
          " each first step, with its tracing and targets, counts as a step)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
