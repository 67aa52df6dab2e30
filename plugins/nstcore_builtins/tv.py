"""Total-variation regulariser: suppresses the high-frequency noise pixel optimisation creates."""
from __future__ import annotations

from typing import Any

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss

ops = backends.ops()


class TotalVariationLoss(Loss):
    """The sum of absolute differences between vertical and horizontal neighbours (what the
    tutorial's ``tf.image.total_variation`` computes), summed to a scalar."""

    role = "regularizer"
    backends = backends.ALL
    default_weight = 30.0
    default_layers = ()

    def __call__(self, features: Features, image: Any) -> Any:
        return (ops.sum(ops.abs(image[:, 1:, :, :] - image[:, :-1, :, :]))
                + ops.sum(ops.abs(image[:, :, 1:, :] - image[:, :, :-1, :])))
