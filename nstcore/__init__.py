"""nstcore: plugin-based neural style transfer on TensorFlow.

Importing this package is cheap (no TensorFlow): the engine loads on the first call that needs it.
"""
from __future__ import annotations

from typing import Any

from nstcore.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "stylize"]


def stylize(content: Any, style: Any, **options: Any) -> Any:
    """Stylise ``content`` with ``style`` (paths or (h, w, 3) float arrays in [0, 1]; ``style``
    may be a list of several, mixed by ``style_blend=[0.7, 0.3]``).

    Options are ``nstcore run``'s in snake case (``optimizer``, ``steps``, ``size``, ``losses``,
    ``content_weight``, ``style_weight``, ``tv_weight``, ``device``, ...; see
    :mod:`nstcore.settings`), plugin options as dicts (``solver_options={"learning_rate": 0.05}``,
    ``extractor_options={...}``, ``loss_options={"gram": {...}}``) and the shorthands plugins
    declare (``weights=PATH``, ``precision="bfloat16"``, ``xla=True``), all checked before any
    image is read. Returns an :class:`nstcore.engine.Result` with the image, per-step losses and
    timings.
    """
    from nstcore.run import stylize as _stylize

    return _stylize(content, style, **options)
