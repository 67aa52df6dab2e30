"""Several style images: blend weights, and the default way any loss takes part in a blend.

A loss that defines :meth:`~nstcore.loss.Loss.prepare_styles` builds blended targets itself. Any
other loss is blended by :class:`BlendedLoss`: one copy of it prepared per style image, the term
being the blend-weighted sum of the copies' terms. That is always correct (it is the weighted
sum of the single-style objectives) and costs one evaluation of the loss per style.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

from nstcore.errors import InputError
from nstcore.extractor import Features
from nstcore.loss import Loss, add


def style_list(style: Any) -> list[Any]:
    """One style (a path or an array) or several (a list or tuple of them), as a list."""
    if isinstance(style, (list, tuple)):
        if not style:
            raise InputError("no style image given")
        return list(style)
    return [style]


def parse_blend(value: Any, count: int) -> list[float]:
    """``--style-blend``: one weight >= 0 per style image, normalised to sum 1; None: equal."""
    if value is None or str(value).strip() == "":
        return [1.0 / count] * count
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        weights = [float(part) for part in parts]
    except ValueError:
        raise InputError(f"--style-blend must be numbers separated by commas, got '{value}'") from None
    if len(weights) != count:
        raise InputError(f"--style-blend has {len(weights)} weight(s) for {count} style image(s);"
                         " give one per style")
    if not all(w >= 0 and w < float("inf") for w in weights) or sum(weights) <= 0:
        raise InputError(f"--style-blend weights must be finite, >= 0 and not all 0, got '{value}'")
    total = sum(weights)
    return [w / total for w in weights]


def blends_itself(loss: Loss) -> bool:
    """Whether the loss's class defines ``prepare_styles`` (else the engine blends its copies)."""
    return getattr(type(loss), "prepare_styles", None) is not Loss.prepare_styles


class BlendedLoss(Loss):
    """``loss`` blended over several style images: sum over styles of weight x the loss of a copy
    prepared with that style. Keeps the loss's name, role, weight and layers; tileable when the
    loss is (the statistics are the copies' statistics, in style order)."""

    def __init__(self, loss: Loss, copies: Sequence[Loss], blend: Sequence[float]) -> None:
        self.name, self.weight, self.layers = loss.name, loss.weight, loss.layers
        self.layer_weights = loss.layer_weights
        self.role = loss.role
        self.backends = getattr(loss, "backends", Loss.backends)
        self.original = loss
        self.copies = list(copies)
        self.blend = [float(w) for w in blend]

    @classmethod
    def prepared(cls, loss: Loss, content: Features, styles: Sequence[Features],
                 blend: Sequence[float]) -> "BlendedLoss":
        copies = []
        for style in styles:
            duplicate = copy.copy(loss)
            duplicate.prepare(content, style)
            copies.append(duplicate)
        return cls(loss, copies, blend)

    def __call__(self, features: Features, image: Any) -> Any:
        from nstcore import backends

        ops = backends.ops()
        return add([w * ops.cast(c(features, image), "float32")
                    for w, c in zip(self.blend, self.copies) if w > 0])

    def statistics(self, features: Features, region: Any) -> Any:  # type: ignore[override]
        return [c.statistics(features, region) if w > 0 else ()
                for w, c in zip(self.blend, self.copies)]

    def from_statistics(self, statistics: Any) -> Any:
        from nstcore import backends

        ops = backends.ops()
        return add([w * ops.cast(c.from_statistics(s), "float32")
                    for w, c, s in zip(self.blend, self.copies, statistics) if w > 0])


def prepare_losses(losses: Sequence[Loss], content: Features, styles: Sequence[Features],
                   blend: Sequence[float]) -> list[Loss]:
    """Prepare each loss for the style images; returns the losses the objective should use
    (a :class:`BlendedLoss` in place of a loss that cannot blend itself)."""
    if len(styles) == 1:
        for loss in losses:
            loss.prepare(content, styles[0])
        return list(losses)
    prepared = []
    for loss in losses:
        if loss.role != "style":
            loss.prepare(content, styles[0])  # content terms and regularisers ignore the style
            prepared.append(loss)
        elif blends_itself(loss):
            loss.prepare_styles(content, styles, blend)
            prepared.append(loss)
        else:
            prepared.append(BlendedLoss.prepared(loss, content, styles, blend))
    return prepared
