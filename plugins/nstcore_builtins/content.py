"""Content loss: keep the image's deep features close to the content photo's."""
from __future__ import annotations

from typing import Any

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss

ops = backends.ops()


class ContentLoss(Loss):
    """Mean squared feature difference, averaged over the content layers (the tutorial's).

    Tileable: its statistics are, per layer, the sum of squared differences to the matching part
    of the target and the number of values summed.
    """

    role = "content"
    backends = backends.ALL
    default_weight = 1e4
    default_layers = ("block5_conv2",)

    def prepare(self, content: Features, style: Features) -> None:
        self.targets = self.hold({name: content[name] for name in self.layers},
                                 getattr(self, "targets", None))

    def __call__(self, features: Features, image: Any) -> Any:
        return self.mean_over_layers([ops.mean(ops.square(features[n] - self.targets[n]))
                                      for n in self.layers])

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[Any, Any]]:
        sums = {}
        for n in self.layers:
            target = region.take(self.targets[n], n, features[n])
            shape = ops.shape(features[n])
            sums[n] = (ops.sum(ops.square(features[n] - target)),
                       ops.cast(shape[0] * shape[1] * shape[2] * shape[3], "float32"))
        return sums

    def from_statistics(self, statistics: Any) -> Any:
        return self.mean_over_layers([statistics[n][0] / statistics[n][1] for n in self.layers])
