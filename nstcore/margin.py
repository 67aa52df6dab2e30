"""A free margin around the picture, so that the network's border is not the picture's.

Every convolution of the feature extractor pads its input at the image's border (VGG19 with
zeros), and the positions near the border also see fewer pixels than interior ones. Both make
the style term treat the border pixels unlike the rest: measured on nstcore's Gram objective,
zero padding paints a dark frame 2-3 px wide, and reflect or replicate padding at every layer
leaves a less stylised band about 5 px wide; a coarse-to-fine run upsamples whatever band a
coarse scale left into the next scale's start, where the finer scale's objective barely sees it.

The cure used here changes no layer: the solver optimises a canvas ``margin`` px larger than the
picture on every side, whose margin starts as the mirrored photo and is free like any pixel, and
the picture is the canvas without its margin. The border effects then fall in the margin, which
is cropped away at every scale, so the dark frame does not reach the picture or the next scale
(what is left, measured per side: docs/defaults.md). The price is the margin's pixels (16 px at
512 px: 13 % more pixels per step). A start mirror-symmetric about the picture's edge stays
nearly so while the style forms, and lines the style's texture up along the edge; the engine
adds a little noise to the first scale's start (``--start-noise``) to break that symmetry.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def margin_at(shape: tuple[int, int], margin: int) -> int:
    """The margin used for a picture of ``shape`` (h, w): ``margin``, but never wider than the
    picture's short side (a mirror cannot reach further)."""
    return max(0, min(int(margin), min(shape)))


def canvas_shape(shape: tuple[int, int], margin: int) -> tuple[int, int]:
    """The canvas around a picture of ``shape`` (h, w)."""
    return shape[0] + 2 * margin, shape[1] + 2 * margin


def extend(image: np.ndarray, margin: int) -> np.ndarray:
    """``image`` (h, w, c) with ``margin`` px mirrored on every side (the edge pixel repeated,
    as in a mirror held against the border)."""
    if not margin:
        return image
    return np.pad(image, [(margin, margin), (margin, margin), (0, 0)], mode="symmetric")


def crop(image: np.ndarray, margin: int) -> np.ndarray:
    """The picture inside a canvas (h, w, c): ``image`` without ``margin`` px on every side."""
    if not margin:
        return image
    return image[margin:image.shape[0] - margin, margin:image.shape[1] - margin]


def resizer(margin: int, shape: tuple[int, int], new_margin: int) -> Callable[[Any, str], Any]:
    """``resize(canvas, method)``: a [1, H, W, C] canvas tensor of one scale (``margin`` px around
    its picture) as the next scale's canvas: the picture resized to ``shape`` (h, w) with
    ``method`` (``bilinear``, ``bicubic``), and ``new_margin`` px mirrored around it. Coarse-to-fine
    runs pass it the image and the solver's carried state (:meth:`nstcore.solver.Stepper.carry`),
    so both keep the picture where it is and nothing of the old margin comes along."""
    from nstcore import backends
    from nstcore.resize import resize_tensor

    ops = backends.ops()

    def resize(canvas: Any, method: str) -> Any:
        canvas = ops.convert_to_tensor(canvas)
        if margin:
            height, width = canvas.shape[1], canvas.shape[2]
            canvas = canvas[:, margin:height - margin, margin:width - margin]
        picture = resize_tensor(canvas, shape, method)
        if not new_margin:
            return picture
        # mirrored by gathering rows and columns (Keras's torch backend pads "symmetric" as
        # "edge"): the same indices as np.pad(..., mode="symmetric") on every backend
        rows = np.pad(np.arange(shape[0]), new_margin, mode="symmetric")
        cols = np.pad(np.arange(shape[1]), new_margin, mode="symmetric")
        return ops.take(ops.take(picture, rows, axis=1), cols, axis=2)

    return resize
