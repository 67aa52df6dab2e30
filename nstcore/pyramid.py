"""Image pyramids: the sizes a coarse-to-fine run optimises at, and the resizing between them.

Optimising first at a small size, where a step is cheap and the receptive field of deep layers
covers more of the picture, then upsampling the result as the next size's start, reaches a
given quality at the final size in fewer full-size steps (crowsonkb/style-transfer-pytorch and
jcjohnson/neural-style's multi-scale script do the same).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from nstcore.errors import InputError

#: The smallest long side ``--scales auto`` starts from (never below the extractor's minimum).
AUTO_START = 128
RATIO = math.sqrt(2.0)


def pyramid_sizes(size: int, scales: str, *, minimum: int = 16, start: int = AUTO_START) -> list[int]:
    """Long sides to optimise at, ascending, ending at ``size``.

    ``scales`` is ``auto`` (half of ``size``, then down by factors of about sqrt(2) to ``start``,
    then ``size`` itself: 128, 181, 256, 512 for 512), ``1`` (one scale: ``size`` itself, the
    tutorial's behaviour) or an explicit ascending list ``128,256,512``.

    The last step of ``auto`` is a factor of 2, not sqrt(2): a step at ``size`` / sqrt(2) costs half
    a step at ``size``, and measured at 512 px (docs/defaults.md) the same time spent at 512 px
    instead of 362 px ends at a lower loss.
    """
    text = str(scales).strip().lower()
    if text == "1":
        return [size]
    if text == "auto":
        floor = max(start, minimum)
        sizes, k = [size], 2
        while size / RATIO ** k >= floor - 1e-6:  # exact powers: 512 / 2 ** 2 reaches 128
            sizes.append(int(round(size / RATIO ** k)))
            k += 1
        return sorted(set(sizes))
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--scales must be auto, 1 or a list such as 128,256,512; got '{scales}'") from None
    if not sizes or sizes != sorted(set(sizes)):
        raise InputError(f"--scales list must be increasing sizes, got '{scales}'")
    if sizes[-1] != size:
        raise InputError(f"--scales list must end at --size ({size}), got '{scales}'")
    if sizes[0] < minimum:
        raise InputError(f"--scales: {sizes[0]} px is below the {minimum} px the extractor needs")
    return sizes


def resize_to(image: np.ndarray, shape: tuple[int, int], method: str = "bilinear") -> np.ndarray:
    """``image`` (h, w, c) at ``shape``; downsampling is antialiased; unchanged if already there."""
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    from nstcore.resize import resize_array

    return resize_array(image, shape, method)
