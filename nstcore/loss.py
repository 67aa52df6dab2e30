"""The loss interface: content terms, style terms and image regularisers."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Mapping, Sequence

from nstcore.errors import PluginError
from nstcore.extractor import Features

ROLES = ("content", "style", "regularizer")


class HoldError(PluginError):
    """A loss passed :meth:`Loss.hold` something other than name -> one tensor; the engine adds
    the plugin's name to the message."""

    def __init__(self, loss: str, detail: str) -> None:
        super().__init__(f"loss '{loss}': {detail}")
        self.loss, self.detail = loss, detail


def add(terms: Sequence[Any]) -> Any:
    """The sum of a non-empty list of tensors (any backend's)."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class Loss(ABC):
    """One weighted term of the objective.

    A loss declares the extractor layers it needs (:attr:`layers`), computes its targets once in
    :meth:`prepare`, and returns an *unweighted* scalar for the current image; the engine multiplies
    by :attr:`weight`. Regularisers use no layers and look at the image itself.
    """

    #: required: "content" losses get ``--content-layers``/``--content-weight``, "style" losses
    #: the style ones, "regularizer" losses look at the image itself (a loss without one is
    #: refused when it is built)
    role: ClassVar[str]
    #: the backends this loss runs on (:mod:`nstcore.backends`); code written with ``keras.ops``
    #: only declares all of them, code with ``tf.*`` the default, TensorFlow alone
    backends: ClassVar[tuple[str, ...]] = ("tensorflow",)
    default_weight: ClassVar[float] = 1.0
    default_layers: ClassVar[Sequence[str]] = ()

    def __init__(self, weight: float | None = None, layers: Sequence[str] | None = None,
                 name: str | None = None, layer_weights: Mapping[str, float] | None = None) -> None:
        self.name = name or type(self).__name__
        self.weight = float(self.default_weight if weight is None else weight)
        self.layers: tuple[str, ...] = tuple(self.default_layers if layers is None else layers)
        #: relative weight of each layer's term (``--style-layers block1_conv1:1,...``); None:
        #: equal weights, the tutorial's plain mean over layers
        self.layer_weights: dict[str, float] | None = None
        if layer_weights is not None:
            missing = [n for n in self.layers if n not in layer_weights]
            if missing or sum(layer_weights.values()) <= 0:
                raise ValueError(f"layer_weights must give each of {', '.join(self.layers)} a"
                                 f" weight >= 0, not all 0; got {dict(layer_weights)}")
            self.layer_weights = {n: float(layer_weights[n]) for n in self.layers}

    def mean_over_layers(self, terms: Sequence[Any]) -> Any:
        """The per-layer ``terms`` (in :attr:`layers` order) averaged with :attr:`layer_weights`
        (weights relative: divided by their sum); equal weights give the plain mean."""
        terms = list(terms)
        if self.layer_weights is None or len(set(self.layer_weights.values())) == 1:
            return add(terms) / len(terms)
        total = sum(self.layer_weights.values())
        return add([term * (self.layer_weights[n] / total) for n, term in zip(self.layers, terms)])

    def hold(self, values: Mapping[str, Any], held: Mapping[str, Any] | None) -> dict[str, Any]:
        """``values`` (name -> one tensor each) kept for the run. On TensorFlow they are
        ``tf.Variable`` s and ``held`` (what the last call returned) is assigned in place where
        names and shapes match, so a solver can reuse a step it traced for an earlier run
        (``nstcore batch``: no tracing from job 2 on); other backends keep plain tensors.

        A tuple or list under one name is refused (:class:`HoldError`): it would be stacked into
        one variable and fail later inside the traced step; hold each tensor by its own name."""
        from nstcore import backends

        if not isinstance(values, Mapping):
            raise HoldError(self.name, f"hold() takes a dict of name -> tensor, got a"
                            f" {type(values).__name__}: e.g. self.hold({{'target': t}}, held)")
        for name, value in values.items():
            if isinstance(value, (tuple, list, dict)):
                parts = ", ".join(f"'{name}_{i}': ..." for i in range(min(len(value), 3)))
                raise HoldError(self.name, f"hold() keeps one tensor per name, but '{name}' is a"
                                f" {type(value).__name__} of {len(value)}: hold each under its own"
                                f" name ({{{parts}}}) and read them back by name")
        return backends.get().hold(values, held)

    def prepare(self, content: Features, style: Features) -> None:
        """Compute targets from the content and style images' features (called once per scale)."""

    def prepare_styles(self, content: Features, styles: Sequence[Features],
                       blend: Sequence[float]) -> None:
        """Targets for several style images mixed with ``blend`` weights (summing to 1).

        Optional. A loss that does not define it is blended by the engine
        (:class:`nstcore.blend.BlendedLoss`): one prepared copy per style, the loss being the
        blend-weighted sum of the copies' losses. Define it when blending targets is the same
        objective and cheaper (the Gram loss does: see its docstring).
        """
        raise NotImplementedError

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
