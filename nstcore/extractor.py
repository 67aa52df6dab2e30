"""The feature-extractor interface: a network that maps an image to named layer activations."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping, Sequence

Features = Mapping[str, Any]  # layer name -> a backend tensor [1, h, w, c]


class FeatureExtractor(ABC):
    """Turns an RGB image in [0, 1] into ``{layer: activations}``.

    The engine calls :meth:`select` once with the union of the layers its losses need, so the
    extractor can build a network that computes those layers and nothing deeper.
    """

    #: the backends it runs on (:mod:`nstcore.backends`; default TensorFlow alone)
    backends: tuple[str, ...] = ("tensorflow",)
    #: Every layer this extractor can return, in network order.
    layers: Sequence[str] = ()

    @abstractmethod
    def select(self, layers: Sequence[str]) -> None:
        """Prepare to compute exactly ``layers`` (each one of :attr:`layers`)."""

    @abstractmethod
    def preprocess(self, image: Any) -> Any:
        """Map a [1, h, w, 3] RGB tensor in [0, 1] to the network's input convention."""

    @abstractmethod
    def __call__(self, image: Any) -> Features:
        """Activations of the selected layers for a [1, h, w, 3] RGB image in [0, 1]."""

    @classmethod
    def floats_per_pixel(cls, layers: Sequence[str]) -> float | None:
        """Activation floats kept per input pixel for ``layers``, for the memory estimate.

        None (the default) skips the check.
        """
        return None

    @classmethod
    def min_side(cls, layers: Sequence[str]) -> int:
        """The smallest image side (px) that still gives ``layers`` at least one position (a
        network that pools k times before its deepest layer needs 2**k); runs and coarse scales
        below it are refused. Default 1."""
        return 1

    @classmethod
    def flops_per_pixel(cls, layers: Sequence[str]) -> float | None:
        """Forward FLOPs per input pixel up to the deepest of ``layers``, for the benchmarks'
        GFLOP/s; None (the default) when unknown."""
        return None

    @classmethod
    def tile_geometry(cls, layers: Sequence[str]) -> Any:
        """A :class:`nstcore.tiling.TileGeometry` (pooling grid, halo, strides) for ``layers``,
        which lets the engine evaluate large images tile by tile; None (the default) means this
        network cannot be tiled (build one with :func:`nstcore.tiling.conv_pool_geometry`)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Facts for the run report (weights source and checksum, for example)."""
        return {}
