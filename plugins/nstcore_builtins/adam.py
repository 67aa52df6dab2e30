"""Adam on the pixels, clipped to [0, 1] after every update: the TensorFlow tutorial's solver."""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from nstcore.solver import Objective, Solver, Stepper


class Adam(Solver):
    """Defaults are the tutorial's: learning rate 0.02, beta_1 0.99, epsilon 0.1."""

    def __init__(self, learning_rate: float = 0.02, beta_1: float = 0.99, beta_2: float = 0.999,
                 epsilon: float = 0.1, jit_compile: bool = False) -> None:
        self.options = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.jit_compile = jit_compile

    def start(self, objective: Objective, image: Any) -> Stepper:
        return _AdamStepper(objective, image, keras.optimizers.Adam(**self.options), self.jit_compile)


class _AdamStepper(Stepper):
    def __init__(self, objective: Objective, image: Any, optimizer: Any, jit_compile: bool) -> None:
        self.variable = tf.Variable(image, dtype=tf.float32, name="image")
        self.evaluations = 0
        variable = self.variable

        @tf.function(jit_compile=jit_compile)
        def train_step():
            with tf.GradientTape() as tape:
                total, terms = objective(variable)
            gradient = tape.gradient(total, variable)
            optimizer.apply_gradients([(gradient, variable)])
            variable.assign(tf.clip_by_value(variable, 0.0, 1.0))
            return total, terms

        self.train_step = train_step

    def step(self):
        total, terms = self.train_step()
        self.evaluations += 1
        return total, terms, self.evaluations

    def image(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.variable)
