"""Wasserstein-2 Gaussian style loss: compare feature distributions by their means and covariances.

For Gaussians N(m1, S1) and N(m2, S2):
``W2^2 = |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S2^1/2 S1 S2^1/2)^1/2)``.
The style's square root ``S2^1/2`` is computed once; the trace of the square root of the PSD
matrix ``S2^1/2 S1 S2^1/2`` is the sum of the square roots of its eigenvalues. Covariances of deep
layers at small sizes are rank-deficient (fewer positions than channels), and the square root's
derivative explodes at zero eigenvalues, so both covariances get a small ridge (``RIDGE`` times
their mean variance) before the distance is taken.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from nstcore.extractor import Features
from nstcore.loss import Loss
from nstcore.tiling import sum_statistics

EIGEN_FLOOR = 1e-8
RIDGE = 1e-2


def mean_and_covariance(features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean [C] and covariance [C, C] of the feature vectors over all positions (batch of one)."""
    flat = tf.reshape(features, [-1, tf.shape(features)[-1]])
    mean = tf.reduce_mean(flat, axis=0)
    centred = flat - mean
    count = tf.cast(tf.shape(flat)[0], features.dtype)
    cov = tf.matmul(centred, centred, transpose_a=True) / count
    return mean, cov


def moments_from_sums(total: tf.Tensor, products: tf.Tensor, count: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and covariance (float32) from float64 sums of f, of f fᵀ and the count."""
    mean = total / count
    cov = products / count - mean[:, None] * mean[None, :]
    return tf.cast(mean, tf.float32), tf.cast(cov, tf.float32)


def ridged(cov: tf.Tensor, ridge: float = RIDGE) -> tf.Tensor:
    channels = tf.shape(cov)[0]
    level = ridge * tf.linalg.trace(cov) / tf.cast(channels, cov.dtype) + EIGEN_FLOOR
    return cov + level * tf.eye(channels, dtype=cov.dtype)


def psd_sqrt(matrix: tf.Tensor) -> tf.Tensor:
    values, vectors = tf.linalg.eigh(matrix)
    return (vectors * tf.sqrt(tf.maximum(values, EIGEN_FLOOR))) @ tf.transpose(vectors)


def w2_squared(mean: tf.Tensor, cov: tf.Tensor, target_mean: tf.Tensor, target_cov: tf.Tensor,
               target_sqrt: tf.Tensor) -> tf.Tensor:
    middle = target_sqrt @ cov @ target_sqrt
    middle = (middle + tf.transpose(middle)) / 2.0  # symmetric to rounding, as eigh requires
    eigenvalues = tf.linalg.eigvalsh(middle)
    cross = tf.reduce_sum(tf.sqrt(tf.maximum(eigenvalues, EIGEN_FLOOR)))
    return (tf.reduce_sum(tf.square(mean - target_mean)) + tf.linalg.trace(cov)
            + tf.linalg.trace(target_cov) - 2.0 * cross)


class GaussianW2StyleLoss(Loss):
    """Mean over style layers of W2^2 between Gaussian fits, divided by the channel count."""

    role = "style"
    default_weight = 1e1
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def __init__(self, ridge: float = RIDGE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ridge = ridge

    def prepare(self, content: Features, style: Features) -> None:
        self.targets = {}
        sums = sum_statistics(self.statistics, style)
        for name in self.layers:
            mean, cov = moments_from_sums(*sums[name])
            cov = ridged(cov, self.ridge)
            self.targets[name] = (mean, cov, psd_sqrt(cov))

    def __call__(self, features: Features, image: Any) -> tf.Tensor:
        terms = []
        for name in self.layers:
            mean, cov = mean_and_covariance(features[name])
            cov = ridged(cov, self.ridge)
            channels = tf.cast(tf.shape(cov)[0], cov.dtype)
            terms.append(w2_squared(mean, cov, *self.targets[name]) / channels)
        return self.mean_over_layers(terms)

    # Tileable: per layer, the float64 sums of f and of f fᵀ over positions and their count
    # (float64 so the covariance, sum f fᵀ / n - m mᵀ, keeps its digits).

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[tf.Tensor, ...]]:
        sums = {}
        for name in self.layers:
            flat = tf.cast(tf.reshape(features[name], [-1, tf.shape(features[name])[-1]]), tf.float64)
            sums[name] = (tf.reduce_sum(flat, axis=0), tf.matmul(flat, flat, transpose_a=True),
                          tf.cast(tf.shape(flat)[0], tf.float64))
        return sums

    def from_statistics(self, statistics: Any) -> tf.Tensor:
        terms = []
        for name in self.layers:
            mean, cov = moments_from_sums(*statistics[name])
            cov = ridged(cov, self.ridge)
            channels = tf.cast(tf.shape(cov)[0], cov.dtype)
            terms.append(w2_squared(mean, cov, *self.targets[name]) / channels)
        return self.mean_over_layers(terms)
