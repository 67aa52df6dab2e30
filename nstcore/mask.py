"""Where the style applies: ``--style-mask``.

The solver optimises y and the losses see the picture ``x = m * y + (1 - m) * content``, m the
mask: 1 = free to take the style, 0 = keeps the content exactly, grey = can move only that
fraction of the way. The style is fitted inside the mask knowing the fixed content around it;
any loss and any solver take part unchanged (a change of variables: values and gradients stay
one consistent objective for L-BFGS); it costs nothing per step. Masking the style term alone
(the content and TV terms on the whole picture) was tried and rejected: the deep content layer
sees across the mask's edge, and at 48 px (30 Adam steps) it moved the kept half by up to 147/255.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from nstcore.errors import InputError


def load_mask(path: Any) -> np.ndarray:
    """A mask file as (h, w) float32 in [0, 1]: its grey levels (colour images are converted to
    luminance; alpha is ignored)."""
    from nstcore.color import luminance
    from nstcore.imageio import load_image

    array = load_image(path)  # checks existence, format, size, decompression bombs
    return np.clip(luminance(array), 0.0, 1.0).astype(np.float32)


def check_aspect(mask_shape: tuple[int, int], content_shape: tuple[int, int]) -> None:
    """Refuse a mask whose aspect ratio is not the content's (within 2 %): a mask drawn for
    another picture would land in the wrong place."""
    (mh, mw), (ch, cw) = mask_shape, content_shape
    if abs(mw / mh - cw / ch) > 0.02 * (cw / ch):
        raise InputError(f"--style-mask is {mw}x{mh} but the content image is {cw}x{ch}; the mask"
                         " must have the content's aspect ratio")


def mask_for(mask: np.ndarray, shape: tuple[int, int], content_shape: tuple[int, int]) -> np.ndarray:
    """``mask`` ((h, w) in [0, 1]) at ``shape`` as [1, h, w, 1]."""
    from nstcore.pyramid import resize_to

    check_aspect(mask.shape[:2], content_shape)
    resized = resize_to(mask[:, :, None].astype(np.float32), shape)
    return np.clip(resized, 0.0, 1.0)[None]


class MaskedObjective:
    """``objective`` of ``compose(y) = mask * y + (1 - mask) * base``: the solver's variable is y,
    the picture is compose(y). Looks like the objective it wraps (tiled or not) to the solvers."""

    def __init__(self, objective: Any, mask: np.ndarray, base: np.ndarray) -> None:
        from nstcore import backends

        self.objective = objective
        self.term_names, self.origins = objective.term_names, objective.origins
        self.mask = backends.constant(mask)
        self.base = backends.constant(base)

    def compose(self, image: Any) -> Any:
        return self.mask * image + (1.0 - self.mask) * self.base

    def __call__(self, image: Any) -> Any:
        return self.objective(self.compose(image))
