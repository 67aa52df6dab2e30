"""Peak memory and step time of one final-size run, tiled and untiled, as whole processes.

Each measurement is ``nstcore run C S --size N --scales 1 --steps 2 --tile T`` in a process of
its own; its peak resident set size comes from the kernel's accounting for that child
(``os.wait4``), so TensorFlow's allocator, the weights and every buffer count, as a user's
``/usr/bin/time -v`` would show. The step time is the second step's (the first traces), from the
run's report. Tiling overhead at a size = tiled step time / untiled step time.

    python -m nstcore_benchmarks.memory --sizes 1024 --tiles off,256,512
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from nstcore_benchmarks.batch import nstcore
from nstcore_benchmarks.peer import cpu_name, measured


def run_once(size: int, tile: str, steps: int = 2) -> dict[str, Any]:
    """One process: peak RSS (MB), wall seconds, the report's step times; or why it was refused."""
    from nstcore.run import asset

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "run.json"
        command = [nstcore(), "run", str(asset("astronaut.png")), str(asset("starry_night.jpg")),
                   "-o", str(Path(tmp) / "out.png"), "--size", str(size), "--scales", "1",
                   "--steps", str(steps), "--tile", tile, "--report", str(report), "-q"]
        run = measured(command)
        error = run.stderr.strip().splitlines()
        row = {"impl": "memory", "size": size, "tile": tile, "steps": steps, "cpu": cpu_name(),
               "exit": run.exit, "wall_seconds": run.wall_seconds,
               "peak_rss_mb": run.peak_rss_kib / 1024}
        if run.exit != 0:
            row["refused"] = error[-1] if error else f"exit {run.exit}"
            return row
        data = json.loads(report.read_text())
        row.update({"step_seconds": data["timings"]["step_seconds"],
                    "first_step_seconds": data["timings"]["first_step_seconds"],
                    "median_step_seconds": data["timings"]["median_step_seconds"],
                    "tiles": [scale.get("tile") for scale in data["scales"]]})
        return row


def overheads(rows: list[dict[str, Any]]) -> dict[tuple[int, str], float]:
    """(size, tile) -> tiled step time / untiled step time at the same size."""
    untiled = {r["size"]: r["median_step_seconds"] for r in rows
               if r["tile"] == "off" and "median_step_seconds" in r}
    return {(r["size"], r["tile"]): r["median_step_seconds"] / untiled[r["size"]] for r in rows
            if r.get("tiles") and r["tiles"][-1] and r["size"] in untiled}


def format_rows(rows: list[dict[str, Any]]) -> str:
    ratio = overheads(rows)
    table = [("size", "--tile", "tile used", "peak RSS GiB", "step s", "first step s", "wall s",
              "tiled/untiled step")]
    for r in rows:
        if "refused" in r:
            table.append((str(r["size"]), r["tile"], "-", f"{r['peak_rss_mb'] / 1024:.2f}", "-", "-",
                          f"{r['wall_seconds']:.0f}", f"refused: {r['refused']}"))
            continue
        overhead = ratio.get((r["size"], r["tile"]))
        table.append((str(r["size"]), r["tile"], str(r["tiles"][-1] or "untiled"),
                      f"{r['peak_rss_mb'] / 1024:.2f}", f"{r['median_step_seconds']:.2f}",
                      f"{r['first_step_seconds']:.2f}", f"{r['wall_seconds']:.0f}",
                      f"{overhead:.2f}" if overhead else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.memory",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1024", help="long sides, comma-separated")
    parser.add_argument("--tiles", default="off,256,512", help="--tile values, comma-separated")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        for tile in [t.strip() for t in args.tiles.split(",") if t.strip()]:
            rows.append(run_once(size, tile, args.steps))
            print(format_rows(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"CPU: {cpu_name()}")
    print(format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
