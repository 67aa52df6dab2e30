"""The objective: the weighted sum of the losses on the extractor's features of an image.

The one objective type. What a solver is given is this, or a wrapper that looks like it to the
solver (``term_names``, ``origins``, ``__call__``): the tiled (:mod:`nstcore.tiling`) and masked
(:mod:`nstcore.mask`) objectives of a scale.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from nstcore import backends
from nstcore.errors import PluginError, one_line
from nstcore.extractor import FeatureExtractor
from nstcore.loss import Loss, add


class Objective:
    """The weighted sum of the losses, evaluated on the extractor's features of an image:
    ``objective(image) -> (total, {term: weighted value})`` for a [1, h, w, 3] tensor."""

    #: One object serves every run of its engine (a batch's jobs), so a solver may keep a step it
    #: traced for it (:func:`nstcore.solver.trace_key`); the per-scale tiled and masked wrappers
    #: are new each time and do not say this.
    reusable = True

    def __init__(self, extractor: FeatureExtractor, losses: Sequence[Loss],
                 origins: Mapping[str, str] | None = None) -> None:
        self.extractor = extractor
        self.losses = list(losses)
        self.term_names = tuple(loss.name for loss in self.losses)
        self.origins = dict(origins or {})

    def __call__(self, image: Any) -> tuple[Any, dict[str, Any]]:
        features = self.extractor(image) if any(loss.layers for loss in self.losses) else {}
        terms = {loss.name: loss.weight * self._term(loss, features, image) for loss in self.losses}
        return add(list(terms.values())), terms

    def _term(self, loss: Loss, features: Any, image: Any) -> Any:
        """One loss's scalar; a plugin's exception becomes an error naming that plugin."""
        try:
            value = backends.ops().cast(loss(features, image), "float32")
        except Exception as exc:
            origin = self.origins.get(loss.name, type(loss).__module__)
            hint = ("; a loss runs traced (tf.function, jax.jit): no .numpy(), no Python if/for"
                    " on tensor values (nstcore.testing.check_loss finds these)"
                    ) if backends.get().inside_trace() else ""
            raise PluginError(f"loss '{loss.name}' from plugin {origin} failed:"
                              f" {type(exc).__name__}: {one_line(exc)}{hint}") from exc
        if len(value.shape) != 0:
            raise PluginError(f"loss '{loss.name}' from plugin {self.origins.get(loss.name, '?')}"
                              f" returned shape {list(value.shape)}, not a scalar;"
                              " reduce it (e.g. keras.ops.sum)")
        return value
