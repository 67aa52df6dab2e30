"""The solver interface: minimise the objective over the image's pixels."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping, Protocol


class Objective(Protocol):
    """``objective(image) -> (total, {term: weighted value})`` for a [1, h, w, 3] tensor."""

    term_names: tuple[str, ...]

    def __call__(self, image: Any) -> "tuple[Any, Mapping[str, Any]]": ...


#: ``callback(step, image, total, terms, evaluations) -> bool``; returning False stops the solver.
StepCallback = Callable[[int, Any, Any, Mapping[str, Any], int], bool]


class Solver(ABC):
    """Runs up to ``steps`` iterations, calling ``callback`` after each, and keeps pixels in [0, 1].

    ``total``/``terms`` passed to the callback describe the image the step started from for
    first-order solvers (as in the TensorFlow tutorial) and the accepted point for L-BFGS;
    ``evaluations`` counts objective evaluations so far.
    """

    @abstractmethod
    def minimize(self, objective: Objective, image: Any, steps: int,
                 callback: StepCallback) -> Any:
        """Return the final image, a [1, h, w, 3] tensor in [0, 1]."""
