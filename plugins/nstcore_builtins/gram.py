"""Gram style loss (Gatys et al.): match feature correlations, which carry texture, not layout."""
from __future__ import annotations

from typing import Any, Sequence

from nstcore import backends
from nstcore.extractor import Features
from nstcore.loss import Loss, add
from nstcore.tiling import sum_statistics

ops = backends.ops()


def gram_matrix(features: Any) -> Any:
    """Channel-by-channel inner products over positions, divided by the number of positions."""
    return ops.einsum("bijc,bijd->bcd", features, features) / positions(features)


def positions(features: Any) -> Any:
    """The number of positions of a [1, h, w, c] map, as a float32 scalar."""
    shape = ops.shape(features)
    return ops.cast(shape[1] * shape[2], "float32")


class GramStyleLoss(Loss):
    """Mean squared Gram difference, averaged over the style layers (the tutorial's).

    Tileable: its statistics are, per layer, the sum of f fᵀ over positions and their count.

    Several styles blend their *targets*: the target Gram is sum_i w_i G_i (jcjohnson/neural-style
    does the same). For this squared error that is the same objective as blending the losses,
    since sum_i w_i |G - G_i|^2 = |G - sum_i w_i G_i|^2 + a constant (the weights sum to 1), and
    it costs one Gram difference per layer instead of one per style.
    """

    role = "style"
    backends = backends.ALL
    default_weight = 1e-2
    default_layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")

    def prepare(self, content: Features, style: Features) -> None:
        self.prepare_styles(content, [style], [1.0])

    def prepare_styles(self, content: Features, styles: Sequence[Features],
                       blend: Sequence[float]) -> None:
        grams = []
        for style in styles:
            sums = sum_statistics(self.statistics, style)
            grams.append({name: (products / count)[None] for name, (products, count) in sums.items()})
        blended = grams[0] if len(grams) == 1 else {
            name: add([w * gram[name] for w, gram in zip(blend, grams)]) for name in self.layers}
        self.targets = self.hold(blended, getattr(self, "targets", None))

    def __call__(self, features: Features, image: Any) -> Any:
        return self.mean_over_layers([ops.mean(ops.square(gram_matrix(features[n]) - self.targets[n]))
                                      for n in self.layers])

    def statistics(self, features: Features, region: Any) -> dict[str, tuple[Any, Any]]:
        return {n: (ops.einsum("bijc,bijd->cd", features[n], features[n]), positions(features[n]))
                for n in self.layers}

    def from_statistics(self, statistics: Any) -> Any:
        return self.mean_over_layers([ops.mean(ops.square(statistics[n][0] / statistics[n][1]
                                                          - self.targets[n][0]))
                                      for n in self.layers])
