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

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss
from nstcore.tiling import sum_statistics

EIGEN_FLOOR = 1e-8
RIDGE = 1e-2
ops = backends.ops()


def mean_and_covariance(features: Any) -> tuple[Any, Any]:
    """Mean [C] and covariance [C, C] of the feature vectors over all positions (batch of one)."""
    flat = ops.reshape(features, (-1, ops.shape(features)[-1]))
    mean = ops.mean(flat, axis=0)
    centred = flat - mean
    count = ops.cast(ops.shape(flat)[0], features.dtype)
    cov = ops.matmul(ops.transpose(centred), centred) / count
    return mean, cov


def moments_from_sums(total: Any, products: Any, count: Any) -> tuple[Any, Any]:
    """Mean and covariance (float32) from wide-float sums of f, of f fᵀ and the count."""
    mean = total / count
    cov = products / count - mean[:, None] * mean[None, :]
    return ops.cast(mean, "float32"), ops.cast(cov, "float32")


def ridged(cov: Any, ridge: float = RIDGE) -> Any:
    channels = ops.shape(cov)[0]
    level = ridge * ops.trace(cov) / ops.cast(channels, cov.dtype) + EIGEN_FLOOR
    return cov + level * ops.eye(channels, dtype=cov.dtype)


def psd_sqrt(matrix: Any) -> Any:
    values, vectors = ops.eigh(matrix)
    return ops.matmul(vectors * ops.sqrt(ops.maximum(values, EIGEN_FLOOR)), ops.transpose(vectors))


def w2_squared(mean: Any, cov: Any, target_mean: Any, target_cov: Any, target_sqrt: Any) -> Any:
    middle = ops.matmul(ops.matmul(target_sqrt, cov), target_sqrt)
    middle = (middle + ops.transpose(middle)) / 2.0  # symmetric to rounding, as eigh requires
    eigenvalues, _ = ops.eigh(middle)
    cross = ops.sum(ops.sqrt(ops.maximum(eigenvalues, EIGEN_FLOOR)))
    return (ops.sum(ops.square(mean - target_mean)) + ops.trace(cov)
            + ops.trace(target_cov) - 2.0 * cross)


class GaussianW2StyleLoss(Loss):
    """Mean over style layers of W2^2 between Gaussian fits, divided by the channel count.

    Written with ``keras.ops`` only: runs on every nstcore backend."""

    role = "style"
    backends = backends.ALL
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

    def __call__(self, features: Features, image: Any) -> Any:
        terms = []
        for name in self.layers:
            mean, cov = mean_and_covariance(features[name])
            cov = ridged(cov, self.ridge)
            channels = ops.cast(ops.shape(cov)[0], cov.dtype)
            terms.append(w2_squared(mean, cov, *self.targets[name]) / channels)
        return self.mean_over_layers(terms)

    # Tileable: per layer, the wide-float (float64; float32 on JAX) sums of f and of f fᵀ over
    # positions and their count, so the covariance, sum f fᵀ / n - m mᵀ, keeps its digits.

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[Any, ...]]:
        wide = backends.get().WIDE_FLOAT
        sums = {}
        for name in self.layers:
            flat = ops.cast(ops.reshape(features[name], (-1, ops.shape(features[name])[-1])), wide)
            sums[name] = (ops.sum(flat, axis=0), ops.matmul(ops.transpose(flat), flat),
                          ops.cast(ops.shape(flat)[0], wide))
        return sums

    def from_statistics(self, statistics: Any) -> Any:
        terms = []
        for name in self.layers:
            mean, cov = moments_from_sums(*statistics[name])
            cov = ridged(cov, self.ridge)
            channels = ops.cast(ops.shape(cov)[0], cov.dtype)
            terms.append(w2_squared(mean, cov, *self.targets[name]) / channels)
        return self.mean_over_layers(terms)
