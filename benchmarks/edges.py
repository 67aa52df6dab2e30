"""Bands along a picture's edges, measured the way issue 22 defines them.

The *edge step* of a side is how much the mean of its outer 2 px differs from the mean of the
next 4-10 px (rows or columns 4 to 9 from that side), in 1/255; the *extra* edge step subtracts
the photo's own edge step at the same size, so a photo that is darker at its border is not
counted. A dark or light frame shows as a large extra step on that side.

A stylised picture has texture, and texture alone makes such steps: :func:`interior_steps`
measures the same figure at lines inside the picture (where no border is), which is the noise
floor a band on the edge has to be told apart from.

    python -m nstcore_benchmarks.edges OUTPUT.png CONTENT.jpg   # per side, and the interior floor
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

SIDES = ("top", "left", "bottom", "right")
#: issue 22's limit for a side's extra edge step, in 1/255 (the "above_3" share counts lines over it)
LIMIT = 3


def _side_views(grey: np.ndarray) -> dict[str, np.ndarray]:
    """Each side's rows, outermost first, as a (distance, length) array."""
    return {"top": grey, "left": grey.T, "bottom": grey[::-1], "right": grey.T[::-1]}


def _step(lines: np.ndarray, at: int = 0) -> float:
    """|mean of lines at, at+1 - mean of lines at+4 .. at+9|, in 1/255."""
    return float(abs(lines[at:at + 2].mean() - lines[at + 4:at + 10].mean()) * 255)


def edge_steps(image: np.ndarray) -> dict[str, float]:
    """The edge step of each side of ``image`` ((h, w, 3) in [0, 1]), in 1/255."""
    grey = np.asarray(image, np.float64).mean(axis=2)
    return {side: _step(lines) for side, lines in _side_views(grey).items()}


def extra_edge_steps(image: np.ndarray, photo: np.ndarray) -> dict[str, float]:
    """``image``'s edge steps minus ``photo``'s (same shape), per side, in 1/255."""
    if image.shape != photo.shape:
        raise ValueError(f"image {image.shape} and photo {photo.shape} differ in shape")
    ours, theirs = edge_steps(image), edge_steps(photo)
    return {side: ours[side] - theirs[side] for side in SIDES}


def interior_steps(image: np.ndarray, photo: np.ndarray, inset: int = 16,
                   every: int = 3) -> np.ndarray:
    """The extra step measured at lines inside the picture (from ``inset`` px in, every ``every``
    px, facing both ways, rows and columns): what texture alone gives, with no border there."""
    grey, grey_photo = (np.asarray(a, np.float64).mean(axis=2) for a in (image, photo))
    values = []
    for side in SIDES:
        lines, photo_lines = _side_views(grey)[side], _side_views(grey_photo)[side]
        for at in range(inset, lines.shape[0] - inset - 10, every):
            values.append(_step(lines, at) - _step(photo_lines, at))
    return np.asarray(values)


def measure(output: str, content: str) -> dict[str, Any]:
    """Per side extra edge steps of ``output`` against ``content`` resized to its size, the
    interior noise floor (median, 90th and 99th percentile, share above 3/255), and where each
    side's figure falls among the interior's (``rank``: the share of interior lines below it;
    a band shows as a rank near 1 on that side, texture as any rank)."""
    from nstcore.imageio import load_image, resize_long_side

    image = load_image(output)
    photo = np.clip(resize_long_side(load_image(content), max(image.shape[:2])), 0.0, 1.0)
    if photo.shape != image.shape:
        raise SystemExit(f"{output} is {image.shape[1]}x{image.shape[0]} but {content} at its long"
                         f" side is {photo.shape[1]}x{photo.shape[0]}: not the same picture")
    inside = interior_steps(image, photo)
    extra = extra_edge_steps(image, photo)
    return {"output": output, "content": content,
            "extra": {k: round(v, 2) for k, v in extra.items()},
            "rank": {k: round(float((inside < v).mean()), 3) for k, v in extra.items()},
            "interior": {"median": round(float(np.median(inside)), 2),
                         "p90": round(float(np.percentile(inside, 90)), 2),
                         "p99": round(float(np.percentile(inside, 99)), 2),
                         "above_3": round(float((inside > LIMIT).mean()), 3)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nstcore_benchmarks.edges",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the stylised picture")
    parser.add_argument("content", help="the photo it was made from")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.output, args.content)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
