"""What the margin's start does to the edges: the real photo around the picture against the mirror.

A run's margin starts as the mirrored photo, because a user's photo has nothing around it. To
tell what that start costs at the edges, each photo is cut to its centre, and the crop is
stylised with nstcore's defaults twice: once as any run does (``mirror``) and once with the
margin taken from the real photo around the crop (``photo``: the content target and the first
scale's start hold the real surroundings, and each later scale starts from the previous canvas,
margin included, upsampled). With ``photo`` nothing in the run marks where the picture ends, so
its edges show what texture and the canvas's own border leave; the difference to ``mirror`` is
what the mirrored start adds. The crop's edges are measured as :mod:`nstcore_benchmarks.edges`
does. A user's run never has the ``photo`` start: this is a measurement, not an option. Both starts
get the run's ``--start-noise`` (nstcore's default unless ``--start-noise`` says otherwise).

    python -m nstcore_benchmarks.surround --size 256 --pair ihc.png:hubble_deep_field.jpg \\
        --json benchmarks/results/DATE-CPU-surround-256.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from nstcore_benchmarks.defaults import add_pair_option, pair_files

STARTS = ("mirror", "photo")
#: the coarsest scale of a default run (``--scales auto`` starts there)
COARSEST = 128


def centre_crop(photo: np.ndarray, margin: int, coarsest: int = COARSEST) -> tuple[np.ndarray, int]:
    """The centre of ``photo`` (h, w, c) and the border ``b`` (px) cut from each side, so that the
    photo around the crop covers a ``margin``-px margin at the coarsest scale (``coarsest`` px
    long side): ``b`` original px are ``margin`` px there."""
    long_side = max(photo.shape[:2])
    border = int(np.ceil(margin * long_side / (coarsest + 2 * margin)))
    return photo[border:photo.shape[0] - border, border:photo.shape[1] - border], border


def surroundings(photo: np.ndarray, border: int, crop_shape: tuple[int, int],
                 shape: tuple[int, int], margin: int) -> np.ndarray:
    """The canvas a picture of ``shape`` (h, w) cut from ``photo`` at ``border`` would have if its
    ``margin`` came from the photo around it: that region of the photo, resized so the crop maps
    onto the picture (to the nearest photo pixel), clipped to [0, 1]."""
    from nstcore.pyramid import resize_to

    scale = max(crop_shape) / max(shape)  # photo px per picture px
    extra = int(round(margin * scale))
    top, left = border - extra, border - extra
    if top < 0:
        raise ValueError(f"a {margin}-px margin at {max(shape)} px needs {extra} px of photo around"
                         f" the crop, and there are {border}")
    region = photo[top:top + crop_shape[0] + 2 * extra, left:left + crop_shape[1] + 2 * extra]
    canvas = resize_to(region, (shape[0] + 2 * margin, shape[1] + 2 * margin))
    return np.clip(canvas, 0.0, 1.0).astype(np.float32)


@contextlib.contextmanager
def photo_margin(photo: np.ndarray, border: int, crop_shape: tuple[int, int]) -> Iterator[None]:
    """Inside this block, a run's margin is the photo around the crop (module functions of
    :mod:`nstcore.margin`, which the engine looks up at each run, replaced and then restored)."""
    import nstcore.margin as margin_module
    from nstcore import backends
    from nstcore.resize import resize_tensor

    ops = backends.ops()
    original_extend, original_resizer = margin_module.extend, margin_module.resizer

    def extend(image: np.ndarray, margin: int) -> np.ndarray:
        if not margin:
            return image
        # the real surroundings, around the very picture the run would start from
        canvas = surroundings(photo, border, crop_shape, image.shape[:2], margin)
        canvas[margin:canvas.shape[0] - margin, margin:canvas.shape[1] - margin] = image
        return canvas

    def resizer(margin: int, shape: tuple[int, int], new_margin: int) -> Callable[[Any, str], Any]:
        def resize(canvas: Any, method: str) -> Any:
            # the whole canvas, margin included, upsampled so its picture fills ``shape``; then
            # as much of it as the new margin needs around the picture
            canvas = ops.convert_to_tensor(canvas)
            height, width = canvas.shape[1], canvas.shape[2]
            factor = max(shape) / max(height - 2 * margin, width - 2 * margin)
            big = (int(round(height * factor)), int(round(width * factor)))
            top = (big[0] - shape[0]) // 2 - new_margin
            left = (big[1] - shape[1]) // 2 - new_margin
            return resize_tensor(canvas, big, method)[
                :, top:top + shape[0] + 2 * new_margin, left:left + shape[1] + 2 * new_margin]
        return resize

    margin_module.extend, margin_module.resizer = extend, resizer
    try:
        yield
    finally:
        margin_module.extend, margin_module.resizer = original_extend, original_resizer


def run_pair(content: str, style: str, size: int, start: str, out: Path,
             **options: Any) -> dict[str, Any]:
    """Stylise the centre crop of ``content`` with ``style`` (nstcore's defaults and ``options``)
    from the ``start`` margin; its edges measured against the crop."""
    from nstcore.imageio import load_image, save_image
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    from nstcore_benchmarks.edges import measure

    settings = Settings(size=size, **options)
    photo = load_image(content)
    crop, border = centre_crop(photo, settings.margin, min(COARSEST, size))
    photo_file = out.with_name(out.stem + "-photo.png")
    save_image(photo_file, crop)
    context = (photo_margin(photo, border, crop.shape[:2]) if start == "photo"
               else contextlib.nullcontext())
    began = time.perf_counter()
    with context:
        result = prepare_run(settings, crop, style).execute()
    seconds = time.perf_counter() - began
    save_image(out, result.image)
    edges = measure(str(out), str(photo_file))
    return {"content": f"{Path(content).name} centre", "style": Path(style).name, "size": size,
            "margin_start": start, "start_noise": settings.start_noise, "seed": settings.seed,
            "border": border, "crop": list(crop.shape[:2]),
            "seconds": round(seconds, 1), "margin": settings.margin,
            "extra_edge_steps": edges["extra"], "interior_noise": edges["interior"],
            "edge_rank": edges["rank"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.surround",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    add_pair_option(parser)
    parser.add_argument("--start", action="append", choices=STARTS,
                        help="margin start(s) to run (default: both)")
    parser.add_argument("--start-noise", type=float, default=None, metavar="X",
                        help="the runs' --start-noise (default: nstcore's)")
    parser.add_argument("--seed", type=int, default=None, help="the runs' --seed (default: none)")
    parser.add_argument("--keep", metavar="DIR", help="keep the pictures here")
    parser.add_argument("--json", required=True, help="write the result here")
    args = parser.parse_args(argv)
    from nstcore.tfload import load_tensorflow

    from nstcore_benchmarks.peer import write_result

    load_tensorflow()
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nstcore-surround-"))
    keep.mkdir(parents=True, exist_ok=True)
    rows = []
    for start in args.start or STARTS:
        for pair in args.pair:
            content, style = pair_files(pair)
            out = keep / f"{Path(content).stem}__{Path(style).stem}-{args.size}-{start}.png"
            given = {"start_noise": args.start_noise, "seed": args.seed}
            rows.append(run_pair(content, style, args.size, start, out,
                                 **{k: v for k, v in given.items() if v is not None}))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    result = write_result(args.json, "surround", rows, size=args.size)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
