"""The loss interface: content terms, style terms and image regularisers."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from nstcore.extractor import Features

ROLES = ("content", "style", "regularizer")


class Loss(ABC):
    """One weighted term of the objective.

    A loss declares the extractor layers it needs (:attr:`layers`), computes its targets once in
    :meth:`prepare`, and returns an *unweighted* scalar for the current image; the engine multiplies
    by :attr:`weight`. Regularisers use no layers and look at the image itself.
    """

    #: "content" losses get ``--content-layers``/``--content-weight``, "style" losses the style ones.
    role: ClassVar[str] = "style"
    default_weight: ClassVar[float] = 1.0
    default_layers: ClassVar[Sequence[str]] = ()

    def __init__(self, weight: float | None = None, layers: Sequence[str] | None = None,
                 name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.weight = float(self.default_weight if weight is None else weight)
        self.layers: tuple[str, ...] = tuple(self.default_layers if layers is None else layers)

    def prepare(self, content: Features, style: Features) -> None:
        """Compute targets from the content and style images' features (called once)."""

    @abstractmethod
    def __call__(self, features: Features, image: Any) -> Any:
        """The unweighted scalar loss of ``image`` (a [1, h, w, 3] tensor in [0, 1])."""

    # Optional: the statistics interface, which lets the engine evaluate the loss tile by tile on
    # images too large for memory (nstcore.tiling). Implement both methods or neither.

    def statistics(self, features: Features, region: Any) -> Any:
        """Sums over the positions of ``features`` (a tile's core, or the whole image): a nest
        (dict, list, tuple) of tensors that, added over tiles, give the whole image's sums.

        ``region`` (:class:`nstcore.tiling.Region`) says where these features sit in the whole
        feature maps: ``region.take(target, layer, features[layer])`` is the matching part of a
        whole-image target (the content loss needs it). Include counts as well as sums.
        """
        raise NotImplementedError

    def from_statistics(self, statistics: Any) -> Any:
        """The unweighted scalar loss from the whole image's summed :meth:`statistics`; equal to
        ``__call__`` on the whole image up to float rounding (``check_loss`` verifies it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, weight={self.weight}, layers={self.layers})"
