"""L-BFGS-B from SciPy (``scipy.optimize.minimize(method="L-BFGS-B")``), one iteration per step.

Why SciPy's: the pixels live in a box, [0, 1], and L-BFGS-B keeps them there by construction (its
projected gradient and Cauchy point), where an unbounded L-BFGS needs a clipped objective and a
pull back into the box. And its line search (More-Thuente) accepts the first trial step of most
iterations: measured on nstcore's objective at 256 px (bfloat16, 16-px margin, 60 iterations
from the photo), 63 loss evaluations against 179 for TensorFlow Probability's L-BFGS
(Hager-Zhang line search), for the same loss (1.93e7 against 1.91e7): 31 s against 73 s. It
needs only the objective's value and gradient as arrays, so it serves every backend alike.

SciPy's minimiser runs its own loop; the stepper runs it in a worker thread and lets it go on one
iteration per :meth:`step` (its callback waits for the next request), so the engine still gets
a callback after every iteration. The loss and its gradient are computed by the backend's
compiled function (``tf.function``, ``jax.jit``; eager on torch), once per image shape, called
from that thread.
"""
from __future__ import annotations

import queue
import threading
import weakref
from typing import Any

import numpy as np
from scipy.optimize import Bounds, minimize  # here, not in the first step (0.5 s to import)

from nstcore import backends
from nstcore.solver import Objective, Solver, SolverStopped, Stepper, TraceCache, trace_key

#: SciPy's status 0: converged (its gradient or relative-reduction test); anything else is a stop
#: that is not a success (its line search found no lower loss).
CONVERGED = 0


class LBFGS(Solver):
    """Bounded L-BFGS on the pixels; ``num_correction_pairs`` curvature pairs kept (SciPy's
    ``maxcor``), ``max_line_search_iterations`` loss evaluations per line search (``maxls``);
    ``first_step``: the largest pixel change of the first trial step (see the stepper)."""

    backends = backends.ALL

    def __init__(self, num_correction_pairs: int = 10, max_line_search_iterations: int = 20,
                 first_step: float = 0.05, jit_compile: bool = False) -> None:
        self.options = {"maxcor": num_correction_pairs, "maxls": max_line_search_iterations}
        self.first_step = first_step
        self.jit_compile = jit_compile
        #: traced loss-and-gradient functions, reused by later runs of the same objective and
        #: image shape (a batch's jobs)
        self._traced = TraceCache()

    def start(self, objective: Objective, image: Any, state: Any = None) -> Stepper:
        """``state`` is ignored: curvature pairs do not resize, so each scale starts afresh."""
        image = backends.constant(image)
        key = trace_key(objective, image)
        traced = self._traced.get(key) or self._traced.keep(
            objective, key, _Traced(objective, self.jit_compile))
        return _LBFGSStepper(traced, image, self.options, self.first_step)


class _Traced:
    """The compiled loss-and-gradient (and loss-only) functions of an image."""

    def __init__(self, objective: Objective, jit_compile: bool) -> None:
        backend = backends.get()
        self.value_and_gradient = backend.compile(backend.value_and_grad(objective), jit_compile)
        self.forward = backend.compile(backend.no_grad(objective))


class _Channel:
    """Requests from the stepper to SciPy's loop, and what each iteration gives back."""

    def __init__(self) -> None:
        self.requests: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.requests.put("stop")


class _NonFinite(Exception):
    """The loss came out NaN or infinite: SciPy's loop ends there."""

    def __init__(self, total: Any, terms: Any) -> None:
        super().__init__("non-finite loss")
        self.total, self.terms = total, terms


#: Evaluations remembered (position, total, terms), so a step reports the accepted point's terms
#: without another forward pass: the accepted point is one of the line search's last trials.
REMEMBERED = 3


class _LBFGSStepper(Stepper):
    """SciPy's loop in a worker thread, one iteration per :meth:`step`.

    Starting evaluates the loss and gradient at the start image (tracing the computation), so a
    step is an iteration and nothing else. With every variable boxed, L-BFGS-B's first trial is
    the whole gradient step x - g (its first curvature model is the identity): for a loss of order
    1e8 that sends every pixel to a bound, and its line search spends several evaluations coming
    back. So SciPy works on the pixels divided by ``s``, chosen so that the first trial moves the
    most-pushed pixel by ``first_step``. A uniform scaling of the variables changes nothing after
    the first iteration (the curvature pairs absorb it)."""

    def __init__(self, traced: _Traced, image: Any, options: dict[str, Any],
                 first_step: float) -> None:
        shape = tuple(image.shape)
        value_and_gradient, forward = traced.value_and_gradient, traced.forward
        place = backends.get().place  # SciPy's thread is outside the engine's device scope
        self.shape = shape
        self.evaluations = 0
        self._seen: list[tuple[np.ndarray, Any, Any]] = []
        seen, counter = self._seen, self

        def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
            """Loss and gradient at pixels ``x`` (float64, flat)."""
            total, terms, gradient = value_and_gradient(place(as_pixels(x), image))
            counter.evaluations += 1
            seen.append((x.copy(), total, terms))
            del seen[:-REMEMBERED]
            if not np.isfinite(float(total)):  # no line search recovers from that: say so
                raise _NonFinite(total, terms)
            return float(total), backends.to_numpy(gradient).astype(np.float64).ravel()

        def as_pixels(x: np.ndarray) -> np.ndarray:
            return x.reshape(shape).astype(np.float32)

        def value_at(x: np.ndarray) -> tuple[Any, Any]:
            return forward(place(as_pixels(x), image))

        self._value_at = value_at
        x0 = np.clip(backends.to_numpy(image).astype(np.float64).ravel(), 0.0, 1.0)
        f0, g0 = evaluate(x0)
        largest = float(np.max(np.abs(g0))) if g0.size else 0.0
        # with every pixel boxed, the first trial is x - g (SciPy's first model is the identity)
        # in the variables SciPy sees: y = x / s moves x by s^2 g, so s^2 = first_step / max|g|
        scale = float(np.sqrt(first_step / largest)) if largest > 0 else 1.0

        self._channel = channel = _Channel()
        waiting = [True]  # until the first step is asked for

        def scaled(y: np.ndarray) -> tuple[float, np.ndarray]:
            if np.array_equal(y, y0):  # SciPy's own first evaluation: done above
                return f0, g0 * scale
            if waiting[0]:  # SciPy's set-up is done: the first iteration waits for step()
                waiting[0] = False
                channel.results.put(("ready",))
                if channel.requests.get() == "stop":
                    raise StopIteration
            value, gradient = evaluate(y * scale)
            return value, gradient * scale

        y0 = x0 / scale
        self._scale, self._x = scale, x0
        self._thread = threading.Thread(target=_minimize, args=(scaled, y0.copy(), 1.0 / scale,
                                                                options, channel),
                                        name="nstcore-lbfgs", daemon=True)
        self._thread.start()
        # a stepper dropped without close() still ends its thread (and frees SciPy's history)
        weakref.finalize(self, channel.stop)
        # SciPy's set-up (its bounds, in Python loops over the pixels: 2.8 s at 544 x 544) belongs
        # to the start, not to the first step
        self._pending = self._receive()

    def _receive(self) -> tuple:
        while True:
            try:
                return self._channel.results.get(timeout=0.2)
            except queue.Empty:  # short waits, so Ctrl-C reaches the main thread at once
                if not self._thread.is_alive():
                    raise SolverStopped("L-BFGS-B ended unexpectedly", converged=False) from None

    def step(self):
        pending, self._pending = self._pending, None
        if pending is None or pending[0] == "ready":
            self._channel.requests.put("step")
            pending = self._receive()
        kind, *payload = pending
        if kind == "error" and isinstance(payload[0], _NonFinite):
            # the step's loss is reported as it came (the engine stops on it and keeps the last
            # finite picture); the image stays the last accepted one
            return payload[0].total, payload[0].terms, self.evaluations
        if kind == "error":
            raise payload[0]
        if kind == "end":
            status, message = payload
            raise SolverStopped(_reason(status, message), converged=status == CONVERGED)
        self._x = payload[0] * self._scale  # the same product the evaluation was given
        for x, total, terms in reversed(self._seen):
            if np.array_equal(x, self._x):
                return total, terms, self.evaluations
        # not among the last trials (not seen so far): evaluate it, while SciPy's loop waits
        total, terms = self._value_at(self._x)
        return total, terms, self.evaluations

    def image(self) -> np.ndarray:
        return np.clip(self._x, 0.0, 1.0).reshape(self.shape).astype(np.float32)

    def close(self) -> None:
        """End SciPy's loop (its thread exits once its current evaluation returns)."""
        self._channel.stop()
        self._thread.join(timeout=10)


def _minimize(evaluate: Any, y0: np.ndarray, upper: float, options: dict[str, Any],
              channel: _Channel) -> None:
    """SciPy's loop (in the worker thread): each iteration waits for the next request."""
    def callback(intermediate_result: Any) -> None:
        channel.results.put(("step", intermediate_result.x.copy()))
        if channel.requests.get() == "stop":
            raise StopIteration

    try:
        result = minimize(evaluate, y0, jac=True, method="L-BFGS-B",
                          bounds=Bounds(np.zeros(y0.size), np.full(y0.size, upper)),
                          callback=callback,
                          options={"maxiter": 2**31 - 1, "maxfun": 2**31 - 1, **options})
        if not channel.stopped:
            channel.results.put(("end", int(result.status), str(result.message)))
    except BaseException as exc:  # the objective's error (a plugin's), handed to the stepper
        channel.results.put(("error", exc))


def _reason(status: int, message: str) -> str:
    if status == CONVERGED:
        return f"converged: {message.lower()}"
    if "LNSRCH" in message.upper():
        return "the line search found no lower loss"
    return f"L-BFGS-B stopped: {message}"
