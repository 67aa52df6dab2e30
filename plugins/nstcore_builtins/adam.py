"""Adam on the pixels, clipped to [0, 1] after every update: the TensorFlow tutorial's solver,
written with ``keras.ops`` so it runs on every backend."""
from __future__ import annotations

from typing import Any

from nstcore import backends
from nstcore.solver import Objective, Solver, Stepper, TraceCache, trace_key


#: Image pixels whose compiled steps Adam keeps for later runs: 2048 x 2048 (about 200 MB of
#: image, moments and gradient), so a coarse-to-fine batch keeps every scale of a 1448-px job.
CACHED_PIXELS = 2048 * 2048


class Adam(Solver):
    """Adam as the TensorFlow tutorial uses it (Keras's ``Adam``: learning rate 0.02, beta_1
    0.99, epsilon 0.1); the update is Keras's, written out so its moments are ours to carry."""

    backends = backends.ALL

    def __init__(self, learning_rate: float = 0.02, beta_1: float = 0.99, beta_2: float = 0.999,
                 epsilon: float = 0.1, jit_compile: bool = False) -> None:
        self.options = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.jit_compile = jit_compile
        #: compiled steps: a later run with the same objective, targets held in place and image
        #: shape reuses one instead of tracing again
        self._traced = TraceCache(CACHED_PIXELS)

    def start(self, objective: Objective, image: Any, state: dict[str, Any] | None = None) -> Stepper:
        key = trace_key(objective, image)
        step = self._traced.get(key)
        if step is None:
            self._traced.pixels = CACHED_PIXELS
            step = self._traced.keep(objective, key, adam_step(objective, **self.options,
                                                               jit_compile=self.jit_compile))
        return _AdamStepper(step, image, state)


def adam_step(objective: Objective, learning_rate: float, beta_1: float, beta_2: float,
              epsilon: float, jit_compile: bool = False) -> Any:
    """The compiled step ``(image, m, v, t) -> (image, m, v, t, total, terms)``: the loss and
    its gradient at ``image``, Keras's Adam update, then the clip to [0, 1]."""
    backend = backends.get()
    ops = backends.ops()
    evaluate = backend.value_and_grad(objective)

    def step(image: Any, m: Any, v: Any, t: Any) -> Any:
        total, terms, gradient = evaluate(image)
        t = t + 1.0
        m = m + (gradient - m) * (1.0 - beta_1)
        v = v + (ops.square(gradient) - v) * (1.0 - beta_2)
        alpha = learning_rate * ops.sqrt(1.0 - ops.power(beta_2, t)) / (1.0 - ops.power(beta_1, t))
        image = ops.clip(image - m * alpha / (ops.sqrt(v) + epsilon), 0.0, 1.0)
        return image, m, v, t, total, terms

    return backend.compile(step, jit_compile)


class _AdamStepper(Stepper):
    def __init__(self, step: Any, image: Any, state: dict[str, Any] | None = None) -> None:
        ops = backends.ops()
        self._step = step
        self.evaluations = 0
        self.x = ops.convert_to_tensor(image, "float32")
        if state is not None:  # moments carried from the previous scale, already resized
            self.m, self.v = state["m"], state["v"]
            self.t = ops.convert_to_tensor(float(state["iterations"]), "float32")
        else:
            self.m, self.v = ops.zeros_like(self.x), ops.zeros_like(self.x)
            self.t = ops.convert_to_tensor(0.0, "float32")

    def step(self):
        self.x, self.m, self.v, self.t, total, terms = self._step(self.x, self.m, self.v, self.t)
        self.evaluations += 1
        return total, terms, self.evaluations

    def image(self) -> Any:
        return self.x

    def carry(self, resize: Any) -> dict[str, Any]:
        """Adam's moments resized to the next scale (as crowsonkb/style-transfer-pytorch does):
        the first moment bicubically, the second bilinearly and kept non-negative; the step
        count carries over so the bias correction does not restart."""
        ops = backends.ops()
        m = resize(self.m, "bicubic")
        v = ops.relu(resize(self.v, "bilinear"))
        return {"m": m, "v": v, "iterations": int(backends.to_numpy(self.t))}
