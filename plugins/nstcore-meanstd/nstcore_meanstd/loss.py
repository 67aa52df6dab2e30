"""Mean/std style loss: style as first and second moments of each feature channel.

The statistics AdaIN aligns (Huang & Belongie 2017): cheaper than Gram matrices (O(C) instead of
O(C^2) per layer) and blind to cross-channel correlations.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss

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
        self.targets = {name: channel_moments(style[name], self.epsilon) for name in self.layers}

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        terms = []
        for name in self.layers:
            mean, std = channel_moments(features[name], self.epsilon)
            target_mean, target_std = self.targets[name]
            terms.append(tf.reduce_mean(tf.square(mean - target_mean))
                         + tf.reduce_mean(tf.square(std - target_std)))
        return tf.add_n(terms) / len(terms)
