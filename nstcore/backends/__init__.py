"""The numeric backend: TensorFlow, JAX or PyTorch, through Keras 3, chosen once per process.

Losses, the extractor, masks, blends and solvers are written once with ``keras.ops``; what
differs per backend (value and gradient, compilation, devices, memory, held targets) lives in
one module per backend (:mod:`nstcore.backends.tensorflow`, ``.jax``, ``.torch``), reached
through :func:`get`. Nothing else branches on the backend's name.

Keras reads ``KERAS_BACKEND`` when it is first imported, so :func:`choose` must run before
anything imports Keras: preparing a run calls it (``--backend``, else ``NSTCORE_BACKEND``, else
``tensorflow``, the tutorial's), and so does anything that needs ``keras.ops`` first
(:func:`ops`). ``--backend jax`` and ``--backend torch`` never import TensorFlow.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

from nstcore.errors import InputError, ResourceError

NAMES = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
ENV = "NSTCORE_BACKEND"
#: what a component supports when it says nothing: the backend every plugin was written for
#: before there were others
LEGACY = ("tensorflow",)
#: what a component written with ``keras.ops`` only declares
ALL = NAMES
#: the package each backend needs, for the error when it is missing
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
EXTRAS = {"tensorflow": "", "jax": "nstcore[jax]", "torch": "nstcore[torch]"}

_chosen: str | None = None


def requested(name: str | None = None) -> str:
    """``name``, else ``$NSTCORE_BACKEND``, else ``tensorflow``; checked against :data:`NAMES`."""
    name = (name or os.environ.get(ENV) or DEFAULT).strip().lower()
    if name not in NAMES:
        from nstcore.options import did_you_mean

        raise InputError(f"unknown backend '{name}' (choose from {', '.join(NAMES)})"
                         + did_you_mean(name, NAMES))
    return name


def choose(name: str | None = None) -> str:
    """Fix this process's backend (before Keras is imported); a second, different choice is an
    error, since Keras cannot switch backends once loaded."""
    global _chosen
    name = requested(name)
    if _chosen is not None and _chosen != name:
        raise InputError(f"this process already runs the {_chosen} backend; the backend is chosen"
                         f" once per process (start a new one for --backend {name})")
    if "keras" in sys.modules and _chosen is None:
        import keras

        loaded = keras.backend.backend()
        if loaded != name:
            raise InputError(f"Keras was imported with the {loaded} backend before nstcore chose"
                             f" {name}; set {ENV}={name} (or KERAS_BACKEND) before importing keras")
    elif _chosen is None:
        import importlib.util

        if importlib.util.find_spec(PACKAGES[name]) is None:
            extra = EXTRAS[name]
            raise ResourceError(f"--backend {name} needs the {PACKAGES[name]} package, which is not"
                                f" installed here" + (f" (pip install '{extra}')" if extra else ""))
        os.environ["KERAS_BACKEND"] = name
    _chosen = name
    return name


def current() -> str:
    """The process's backend, choosing the default (or ``$NSTCORE_BACKEND``) if none was chosen."""
    return _chosen or choose()


def get() -> ModuleType:
    """The current backend's module (importing its framework on first use)."""
    return importlib.import_module(f"nstcore.backends.{current()}")


def declared(component: object) -> tuple[str, ...]:
    """The backends a component declares (its ``backends`` attribute; :data:`LEGACY` if none)."""
    return tuple(getattr(component, "backends", None) or LEGACY)


def require(label: str, kind: str, supported: "tuple[str, ...]", backend: str) -> None:
    """Refuse, in one line, a component (``label``: "loss 'x' from plugin ...") that does not
    run on ``backend``: the check a run makes on the registry, and an engine on its objects."""
    if backend not in supported:
        raise InputError(f"{label} runs on {', '.join(supported)}, not on the {backend} backend"
                         f" (use --backend {supported[0]}, or another {kind})")


def ops() -> ModuleType:
    """``keras.ops`` on this process's backend (choosing the default first if none was chosen;
    TensorFlow is loaded quietly, see :mod:`nstcore.tfload`)."""
    if current() == "tensorflow":
        from nstcore.tfload import load_tensorflow

        load_tensorflow()
    import keras

    return keras.ops


def to_numpy(value: object) -> "np.ndarray":
    """A backend tensor (on any device) or array as a NumPy array."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value
    return np.asarray(ops().convert_to_numpy(value))


def constant(array: object) -> object:
    """``array`` as a float32 tensor of this backend (on the current device scope)."""
    return ops().convert_to_tensor(array, dtype="float32")
