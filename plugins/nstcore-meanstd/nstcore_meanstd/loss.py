"""Mean/std style loss: style as first and second moments of each feature channel.

The statistics AdaIN aligns (Huang & Belongie 2017): cheaper than Gram matrices (O(C) instead of
O(C^2) per layer) and blind to cross-channel correlations. Written with ``keras.ops`` only, so it
runs on every nstcore backend (TensorFlow, JAX, PyTorch).
"""
from __future__ import annotations

from typing import Any

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss
from nstcore.tiling import sum_statistics

EPSILON = 1e-5
ops = backends.ops()


def channel_moments(features: Any, epsilon: float = EPSILON) -> tuple[Any, Any]:
    """Per-channel mean and standard deviation over positions, each shaped [batch, channels]."""
    mean, variance = ops.moments(features, axes=[1, 2])
    return mean, ops.sqrt(variance + epsilon)


class MeanStdStyleLoss(Loss):
    """Mean over style layers of the squared differences of channel means and of channel stds."""

    role = "style"
    backends = backends.ALL
    default_weight = 1e3
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def __init__(self, epsilon: float = EPSILON, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def prepare(self, content: Features, style: Features) -> None:
        sums = sum_statistics(self.statistics, style)
        self.targets = {name: self._moments(*sums[name]) for name in self.layers}

    def __call__(self, features: Features, image: Any) -> Any:
        terms = []
        for name in self.layers:
            mean, std = channel_moments(features[name], self.epsilon)
            target_mean, target_std = self.targets[name]
            terms.append(ops.mean(ops.square(mean - target_mean))
                         + ops.mean(ops.square(std - target_std)))
        return self.mean_over_layers(terms)

    # Tileable: per layer, the per-channel sums of f and f**2 and the count of positions, in
    # the backend's widest float (float64; float32 on JAX, which has 64-bit floats off) so the
    # variance (sum f**2 / n - mean**2) keeps its digits.

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[Any, ...]]:
        wide = backends.get().WIDE_FLOAT
        sums = {}
        for name in self.layers:
            values = ops.cast(features[name], wide)
            shape = ops.shape(values)
            sums[name] = (ops.sum(values, axis=[0, 1, 2]), ops.sum(ops.square(values), axis=[0, 1, 2]),
                          ops.cast(shape[1] * shape[2], wide))
        return sums

    def _moments(self, total: Any, squares: Any, count: Any) -> tuple[Any, Any]:
        mean = total / count
        variance = ops.maximum(squares / count - ops.square(mean), 0.0)
        return (ops.cast(mean, "float32")[None],
                ops.cast(ops.sqrt(variance + self.epsilon), "float32")[None])

    def from_statistics(self, statistics: Any) -> Any:
        terms = []
        for name in self.layers:
            mean, std = self._moments(*statistics[name])
            target_mean, target_std = self.targets[name]
            terms.append(ops.mean(ops.square(mean - target_mean))
                         + ops.mean(ops.square(std - target_std)))
        return self.mean_over_layers(terms)
