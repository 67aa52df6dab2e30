"""Adam on the pixels, clipped to [0, 1] after every update: the TensorFlow tutorial's solver."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from nstcore.solver import Objective, Solver, Stepper, TraceCache, trace_key


#: Image pixels whose traced steppers Adam keeps for later runs: 2048 x 2048 (about 200 MB of
#: image, moments and gradient), so a coarse-to-fine batch keeps every scale of a 1448-px job.
CACHED_PIXELS = 2048 * 2048


class Adam(Solver):
    """Adam as the TensorFlow tutorial uses it: learning rate 0.02, beta_1 0.99, epsilon 0.1."""

    def __init__(self, learning_rate: float = 0.02, beta_1: float = 0.99, beta_2: float = 0.999,
                 epsilon: float = 0.1, jit_compile: bool = False) -> None:
        self.options = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.jit_compile = jit_compile
        #: traced steppers: a later run with the same objective, targets held in place and image
        #: shape restarts one instead of tracing again
        self._traced = TraceCache(CACHED_PIXELS)

    def start(self, objective: Objective, image: Any, state: dict[str, Any] | None = None) -> Stepper:
        key = trace_key(objective, image)
        stepper = self._traced.get(key)
        if stepper is not None:
            stepper.restart(image, state)
            return stepper
        self._traced.pixels = CACHED_PIXELS
        return self._traced.keep(objective, key, _AdamStepper(
            objective, image, keras.optimizers.Adam(**self.options), self.jit_compile, state))


class _AdamStepper(Stepper):
    def __init__(self, objective: Objective, image: Any, optimizer: Any, jit_compile: bool,
                 state: dict[str, Any] | None = None) -> None:
        self.variable = tf.Variable(image, dtype=tf.float32, name="image")
        self.evaluations = 0
        self.optimizer = optimizer
        variable = self.variable
        optimizer.build([variable])
        self._set_state(state)

        @tf.function(jit_compile=jit_compile)
        def train_step():
            with tf.GradientTape() as tape:
                total, terms = objective(variable)
            gradient = tape.gradient(total, variable)
            optimizer.apply_gradients([(gradient, variable)])
            variable.assign(tf.clip_by_value(variable, 0.0, 1.0))
            return total, terms

        self.train_step = train_step

    def _set_state(self, state: dict[str, Any] | None) -> None:
        """Adam's moments and step count: carried from the previous scale, or a fresh start."""
        optimizer = self.optimizer
        if state is not None:  # moments carried from the previous scale, already resized
            optimizer._momentums[0].assign(state["m"])
            optimizer._velocities[0].assign(state["v"])
            optimizer.iterations.assign(state["iterations"])
        else:
            optimizer._momentums[0].assign(tf.zeros_like(optimizer._momentums[0]))
            optimizer._velocities[0].assign(tf.zeros_like(optimizer._velocities[0]))
            optimizer.iterations.assign(0)

    def restart(self, image: Any, state: dict[str, Any] | None = None) -> None:
        """Start again from ``image`` with the traced step kept (same shape and objective)."""
        self.variable.assign(image)
        self.evaluations = 0
        self._set_state(state)

    def step(self):
        total, terms = self.train_step()
        self.evaluations += 1
        return total, terms, self.evaluations

    def image(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.variable)

    def carry(self, resize: Any) -> dict[str, Any]:
        """Adam's moments resized to the next scale (as crowsonkb/style-transfer-pytorch does):
        the first moment bicubically, the second bilinearly and kept non-negative; the step
        count carries over so the bias correction does not restart."""
        m = resize(self.optimizer._momentums[0], "bicubic")
        v = tf.nn.relu(resize(self.optimizer._velocities[0], "bilinear"))
        return {"m": m, "v": v, "iterations": int(self.optimizer.iterations.numpy())}
