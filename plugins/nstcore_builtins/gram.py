"""Gram style loss (Gatys et al.): match feature correlations, which carry texture, not layout."""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss
from nstcore.tiling import sum_statistics


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Channel-by-channel inner products over positions, divided by the number of positions."""
    result = tf.linalg.einsum("bijc,bijd->bcd", features, features)
    shape = tf.shape(features)
    return result / tf.cast(shape[1] * shape[2], result.dtype)


def positions(features: tf.Tensor) -> tf.Tensor:
    """The number of positions of a [1, h, w, c] map, as a float32 scalar."""
    shape = tf.shape(features)
    return tf.cast(shape[1] * shape[2], tf.float32)


class GramStyleLoss(Loss):
    """Mean squared Gram difference, averaged over the style layers (the tutorial's).

    Tileable: its statistics are, per layer, the sum of f fᵀ over positions and their count.
    """

    role = "style"
    default_weight = 1e-2
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def prepare(self, content: Features, style: Features) -> None:
        sums = sum_statistics(self.statistics, style)
        self.targets = {name: (products / count)[None] for name, (products, count) in sums.items()}

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        terms = [tf.reduce_mean(tf.square(gram_matrix(features[n]) - self.targets[n]))
                 for n in self.layers]
        return tf.add_n(terms) / len(terms)

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[tf.Tensor, tf.Tensor]]:
        return {n: (tf.linalg.einsum("bijc,bijd->cd", features[n], features[n]), positions(features[n]))
                for n in self.layers}

    def from_statistics(self, statistics: Any) -> tf.Tensor:
        terms = [tf.reduce_mean(tf.square(products / count - self.targets[n][0]))
                 for n, (products, count) in statistics.items()]
        return tf.add_n(terms) / len(terms)
