"""The docs' gallery: each picture made by its ``nstcore run`` command as a whole process, timed.

    python -m nstcore_benchmarks.gallery --images DIR --json benchmarks/results/DATE-CPU-gallery.json

Runs every entry of :data:`PICTURES` (or those named with ``--only``) from the repository root,
records its command, wall time and peak resident set (the kernel's figure for the process), and
writes a reduced JPEG of the picture to ``docs/gallery/NAME.jpg``. ``--images`` is where the
photos not bundled with nstcore are (scikit-image's ``coffee.png``, CC0, and
``hubble_deep_field.jpg``, NASA, public domain: both in the scikit-image wheel's ``skimage/data``).
"""
from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
import tempfile
from pathlib import Path

from nstcore.files import atomic_write_bytes
from nstcore_benchmarks.batch import nstcore
from nstcore_benchmarks.peer import measured, write_result

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"
A, S = "nstcore/assets/astronaut.png", "nstcore/assets/starry_night.jpg"

#: name -> the arguments after ``nstcore run`` ({images}: the --images folder; OUT: the picture)
PICTURES: dict[str, str] = {
    "defaults-256": f"{A} {S} -o OUT --size 256",
    "tutorial-256": f"{A} {S} -o OUT --preset tutorial --size 256",
    "feature-blend": f"{A} {S} {{images}}/hubble_deep_field.jpg --style-blend 0.5,0.5 -o OUT --size 256",
    "feature-luminance": f"{A} {S} --preserve-color luminance -o OUT --size 256",
    "feature-histogram": f"{A} {S} --preserve-color histogram -o OUT --size 256",
    "feature-avgpool": f"{A} {S} --pooling avg -o OUT --size 256",
    "feature-mask": f"{A} {S} --style-mask docs/gallery/mask-ramp.png -o OUT --size 256",
}


def make(name: str, images: str, work: Path, long_side: int) -> dict:
    """Run one picture's command; its row (command, wall seconds, peak RSS GiB)."""
    out = work / f"{name}.png"
    args = shlex.split(PICTURES[name].format(images=images).replace("OUT", str(out)))
    run = measured([nstcore(), "run", *args, "-q"], cwd=ROOT)
    error = run.stderr.strip()
    if run.exit != 0:
        raise SystemExit(f"{name}: nstcore run failed: {error.splitlines()[-1] if error else run.exit}")
    from PIL import Image

    picture = Image.open(out).convert("RGB")
    picture.thumbnail((long_side, long_side), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=88)
    atomic_write_bytes(GALLERY / f"{name}.jpg", buffer.getvalue())
    shown = PICTURES[name].replace("{images}/", "").replace("OUT", f"{name}.png")
    return {"picture": f"docs/gallery/{name}.jpg", "command": f"nstcore run {shown}",
            "wall_seconds": round(run.wall_seconds, 1), "peak_rss_gib": round(run.peak_rss_kib / 2**20, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.gallery",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="folder with coffee.png and hubble_deep_field.jpg")
    parser.add_argument("--only", help="comma-separated names (default: all)")
    parser.add_argument("--long-side", type=int, default=512, help="of the JPEGs (default 512)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(PICTURES)
    unknown = [n for n in names if n not in PICTURES]
    if unknown:
        parser.error(f"unknown pictures {unknown} (known: {', '.join(PICTURES)})")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            rows.append(make(name, args.images, Path(work), args.long_side))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    write_result(args.json, "gallery", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
