"""Gram style loss (Gatys et al.): match feature correlations, which carry texture, not layout."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Channel-by-channel inner products over positions, divided by the number of positions."""
    result = tf.linalg.einsum("bijc,bijd->bcd", features, features)
    shape = tf.shape(features)
    return result / tf.cast(shape[1] * shape[2], result.dtype)


class GramStyleLoss(Loss):
    """Mean squared Gram difference, averaged over the style layers (the tutorial's)."""

    role = "style"
    default_weight = 1e-2
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def prepare(self, content: Features, style: Features) -> None:
        self.targets = {name: gram_matrix(style[name]) for name in self.layers}

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        terms = [tf.reduce_mean(tf.square(gram_matrix(features[n]) - self.targets[n]))
                 for n in self.layers]
        return tf.add_n(terms) / len(terms)
