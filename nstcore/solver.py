"""The solver interface: minimise the objective over the image's pixels, one step at a time."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from nstcore.objective import Objective  # noqa: F401  (what a solver minimises)

#: What one step reports: (total, {term: value}, objective evaluations so far).
StepOutput = "tuple[Any, Mapping[str, Any], int]"


def trace_key(objective: Any, image: Any) -> tuple:
    """What a traced step captures, by identity: the objective, the image's shape, each loss and
    every tensor its losses hold (their targets). A solver may reuse a traced step for a later run
    (``nstcore batch``) when this key is unchanged: losses that keep their targets in
    ``tf.Variable`` s assigned in place (``Loss.hold``) keep it; a loss that makes new tensors
    changes it, and so does any plain value (number, string) a loss holds, so a stale trace is
    never reused. (Captured objects stay alive with the trace, so their ids cannot be taken by
    new objects.)"""
    found: list[Any] = []

    def walk(value: Any, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(value, (bool, int, float, str)) or value is None:
            found.append(value)  # a plain value a trace would bake in (a scale set in prepare)
        elif hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, type):
            found.append(id(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, depth + 1)
        elif hasattr(value, "__dict__") and hasattr(value, "prepare"):  # a loss (or a blend's copy)
            found.append(id(value))
            for item in vars(value).values():
                walk(item, depth + 1)

    for loss in getattr(objective, "losses", ()):
        walk(loss, 0)
    shape = tuple(getattr(image, "shape", ()))
    return (id(objective), shape, tuple(found))


class TraceCache(dict):
    """What a solver traced for an objective, kept for later runs (``nstcore batch``: no tracing
    from job 2 on), by :func:`trace_key`, within a budget of image pixels: each entry keeps its
    graph and per-pixel buffers alive. Only objectives that say ``reusable`` are kept (the
    per-scale tiled and masked wrappers are new each time)."""

    def __init__(self, pixels: int = 2048 * 2048) -> None:
        super().__init__()
        self.pixels = pixels

    def keep(self, objective: Any, key: tuple, entry: Any) -> Any:
        if getattr(objective, "reusable", False):
            self[key] = entry
            while sum(_pixels(k) for k in self) > self.pixels and len(self) > 1:
                self.pop(next(iter(self)))
        return entry


def _pixels(key: tuple) -> int:
    shape = key[1]
    return int(shape[1] * shape[2]) if len(shape) >= 3 else 0


class SolverStopped(Exception):
    """Raised by :meth:`Stepper.step` when the solver cannot take another step.

    ``converged`` is True for a genuine convergence (the run then ends successfully) and False
    for a failure such as a line search that found no lower loss; ``reason`` says which in a few
    words ("line search found no lower loss").
    """

    def __init__(self, reason: str, *, converged: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.converged = converged


class Stepper(ABC):
    """A solver in progress. ``step()`` does one iteration; the benchmarks time exactly that."""

    @abstractmethod
    def step(self) -> "tuple[Any, Mapping[str, Any], int]":
        """One iteration; raises :class:`SolverStopped` when the solver cannot go on."""

    @abstractmethod
    def image(self) -> Any:
        """The current image, a [1, h, w, 3] tensor in [0, 1]."""

    def close(self) -> None:
        """Release what the stepper holds beyond its memory (a worker thread, say); the engine
        calls it when a scale is done with the stepper. Default: nothing to release."""

    def carry(self, resize: "Callable[[Any, str], Any]") -> Any:
        """State for the next, larger scale of a coarse-to-fine run.

        ``resize(tensor, method)`` maps a [1, h, w, c] tensor laid out like this scale's image to
        the next scale's layout, interpolating with ``method`` (``bilinear`` or ``bicubic``): use it
        for every per-pixel state, so the state stays aligned with the picture (the engine's
        margin, :mod:`nstcore.margin`, is cropped and mirrored by it). The engine passes the
        result to ``Solver.start(objective, image, state=...)``. The default, None, restarts the
        solver at each scale (right for L-BFGS, whose curvature pairs do not resize); Adam carries
        its moment estimates.
        """
        return None


class Solver(ABC):
    """Builds a :class:`Stepper` for each scale; the engine steps it and reports every step.

    ``backends`` lists the backends it runs on (:mod:`nstcore.backends`; default TensorFlow).

    ``total``/``terms`` describe the image the step started from for first-order solvers (as in
    the TensorFlow tutorial) and the accepted point for L-BFGS.
    """

    backends: tuple[str, ...] = ("tensorflow",)

    @abstractmethod
    def start(self, objective: Objective, image: Any, state: Any = None) -> Stepper:
        """Prepare to minimise ``objective`` from ``image`` (traced functions, optimiser state).

        ``state`` is what the previous scale's stepper returned from :meth:`Stepper.carry`
        (None at the first scale, and always for a solver whose steppers carry nothing).
        """
