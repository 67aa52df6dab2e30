"""Mean/std style loss: style as first and second moments of each feature channel.

The statistics AdaIN aligns (Huang & Belongie 2017): cheaper than Gram matrices (O(C) instead of
O(C^2) per layer) and blind to cross-channel correlations.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss
from nstcore.tiling import sum_statistics

EPSILON = 1e-5


def channel_moments(features: tf.Tensor, epsilon: float = EPSILON) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-channel mean and standard deviation over positions, each shaped [batch, channels]."""
    mean, variance = tf.nn.moments(features, axes=[1, 2])
    return mean, tf.sqrt(variance + epsilon)


class MeanStdStyleLoss(Loss):
    """Mean over style layers of the squared differences of channel means and of channel stds."""

    role = "style"
    default_weight = 1e3
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def __init__(self, epsilon: float = EPSILON, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def prepare(self, content: Features, style: Features) -> None:
        sums = sum_statistics(self.statistics, style)
        self.targets = {name: self._moments(*sums[name]) for name in self.layers}

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        terms = []
        for name in self.layers:
            mean, std = channel_moments(features[name], self.epsilon)
            target_mean, target_std = self.targets[name]
            terms.append(tf.reduce_mean(tf.square(mean - target_mean))
                         + tf.reduce_mean(tf.square(std - target_std)))
        return self.mean_over_layers(terms)

    # Tileable: per layer, the per-channel sums of f and f**2 and the count of positions, in
    # float64 so the variance (sum f**2 / n - mean**2) keeps its digits.

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[tf.Tensor, ...]]:
        sums = {}
        for name in self.layers:
            values = tf.cast(features[name], tf.float64)
            sums[name] = (tf.reduce_sum(values, axis=[0, 1, 2]),
                          tf.reduce_sum(tf.square(values), axis=[0, 1, 2]),
                          tf.cast(tf.shape(values)[1] * tf.shape(values)[2], tf.float64))
        return sums

    def _moments(self, total: tf.Tensor, squares: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        mean = total / count
        variance = tf.maximum(squares / count - tf.square(mean), 0.0)
        return (tf.cast(mean, tf.float32)[None],
                tf.cast(tf.sqrt(variance + self.epsilon), tf.float32)[None])

    def from_statistics(self, statistics: Any) -> tf.Tensor:
        terms = []
        for name in self.layers:
            mean, std = self._moments(*statistics[name])
            target_mean, target_std = self.targets[name]
            terms.append(tf.reduce_mean(tf.square(mean - target_mean))
                         + tf.reduce_mean(tf.square(std - target_std)))
        return self.mean_over_layers(terms)
