"""Total-variation regulariser: suppresses the high-frequency noise pixel optimisation creates."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss


class TotalVariationLoss(Loss):
    """``tf.image.total_variation`` summed to a scalar (it returns shape [1] for one image)."""

    role = "regularizer"
    default_weight = 30.0
    default_layers = ()

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        return tf.reduce_sum(tf.image.total_variation(image))
