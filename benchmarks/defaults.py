"""What a user gets from ``nstcore run C S -o out.png``: wall time in tutorial steps, the edges.

For each content/style pair, ``nstcore run`` with every default (or with ``--preset`` and other
flags given after ``--``) runs as a whole process, start-up included, as a user would time it;
its report gives each scale's set-up, first step and median step. In the same run the
TensorFlow tutorial's own train step is timed at the same size (its code, float32, median of
``--tutorial-steps`` after a traced first one), so the run's cost is "wall seconds / tutorial
step" on this machine. The picture's edges are measured as issue 22 defines them
(:mod:`nstcore_benchmarks.edges`), with the noise floor texture alone gives inside the picture.

    python -m nstcore_benchmarks.defaults --size 512 --pair astronaut.png:starry_night.jpg \\
        --json benchmarks/results/DATE-CPU-defaults-512.json [-- --preset tutorial]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nstcore_benchmarks.batch import nstcore
from nstcore_benchmarks.peer import measured, write_result


def tutorial_step_seconds(size: int, steps: int) -> float:
    """Median seconds of the tutorial's own Adam step at ``size`` (astronaut x Starry Night)."""
    from nstcore.bench import BenchDevice, tutorial_target

    target = tutorial_target(size, BenchDevice("cpu", "/CPU:0"), "graph")
    target.step()  # traces
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        target.step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


FLIPS = ("none", "v", "h", "vh")


def flip_image(source: str | Path, flip: str, target: Path) -> Path:
    """``source`` turned upside down (``v``), mirrored (``h``) or both, written to ``target`` as a
    lossless PNG; flipping the result the same way gives the original back."""
    from PIL import Image, ImageOps

    with Image.open(source) as image:
        upright = ImageOps.exif_transpose(image)  # as nstcore reads it
        turned = ImageOps.flip(upright) if "v" in flip else upright
        turned = ImageOps.mirror(turned) if "h" in flip else turned
        turned.save(target, format="PNG")
    return target


def run_default(content: str, style: str, size: int, extra: list[str], out: Path,
                flip: str = "none") -> dict[str, Any]:
    """``nstcore run content style -o out --size N *extra`` as a process: wall time, peak RSS,
    the report's per-scale timings and the picture's edges (with ``flip``, of the inputs turned
    that way, the picture turned back)."""
    from nstcore_benchmarks.edges import measure

    report = out.with_suffix(".json")
    given, written = (content, style), out
    if flip != "none":
        given = tuple(str(flip_image(path, flip, out.with_name(f"{Path(path).stem}-flip{flip}.png")))
                      for path in (content, style))
        written = out.with_name(f"{out.stem}-flip{flip}.png")
    command = [nstcore(), "run", *given, "-o", str(written), "--size", str(size), "-q",
               "--report", str(report), *extra]
    run = measured(command)
    row = {"content": Path(content).name, "style": Path(style).name, "size": size,
           "command": "nstcore run " + " ".join([Path(given[0]).name, Path(given[1]).name, "-o",
                                                 written.name, "--size", str(size), *extra]),
           "exit": run.exit, "wall_seconds": round(run.wall_seconds, 2),
           "peak_rss_gib": round(run.peak_rss_kib / 2**20, 3)}
    if flip != "none":
        row["flip"] = flip
    if run.exit != 0:
        row["error"] = (run.stderr.strip().splitlines() or [""])[-1]
        return row
    data = json.loads(report.read_text())
    row["closing_line"] = run.stdout.strip()
    row["scales"] = data["timings"]["per_scale"]
    row["optimizer"] = data["settings"]["optimizer"]
    row["precision"] = data["extractor"].get("precision")
    row["margin"] = data["settings"]["margin"]
    # the objective's terms after the last step: what schedules of the same size are compared by
    row["final_losses"] = {k: v for k, v in data["losses"][-1].items() if k != "step"}
    if flip != "none":
        flip_image(written, flip, out)
    edges = measure(str(out), content)
    row["extra_edge_steps"] = edges["extra"]
    row["interior_noise"] = edges["interior"]
    row["edge_rank"] = edges["rank"]
    return row


def add_pair_option(parser: argparse.ArgumentParser) -> None:
    """``--pair CONTENT:STYLE`` (repeatable), as this benchmark and the surround one take it."""
    parser.add_argument("--pair", action="append", required=True, metavar="CONTENT:STYLE",
                        help="image files (repeatable); relative names are looked up in"
                        " nstcore/assets")


def pair_files(pair: str) -> tuple[str, str]:
    """``CONTENT:STYLE`` as two file paths: a name that is not a file is one of nstcore's assets."""
    from nstcore.run import asset

    content, _, style = pair.partition(":")
    return tuple(name if Path(name).exists() else str(asset(name)) for name in (content, style))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.defaults",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    add_pair_option(parser)
    parser.add_argument("--flip", choices=FLIPS, default="none",
                        help="run on the images turned upside down (v), mirrored (h) or both, and"
                        " turn the picture back before measuring its edges")
    parser.add_argument("--tutorial-steps", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="keep the pictures (and reports) here")
    parser.add_argument("--json", required=True, help="write the result here")
    args = parser.parse_args(argv)
    from nstcore.tfload import load_tensorflow

    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nstcore-defaults-"))
    keep.mkdir(parents=True, exist_ok=True)
    rows = []
    for pair in args.pair:
        content, style = pair_files(pair)
        out = keep / f"{Path(content).stem}__{Path(style).stem}-{args.size}.png"
        rows.append(run_default(content, style, args.size, extra, out, args.flip))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    load_tensorflow()
    tutorial = tutorial_step_seconds(args.size, args.tutorial_steps)
    for row in rows:
        row["tutorial_step_seconds"] = round(tutorial, 3)
        row["cost_in_tutorial_steps"] = round(row["wall_seconds"] / tutorial, 1)
    result = write_result(args.json, "defaults", rows, size=args.size, flags=extra)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
