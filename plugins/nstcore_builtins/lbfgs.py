"""L-BFGS through ``tfp.optimizer.lbfgs_minimize``, one iteration per step.

TFP's L-BFGS has no bounds, so the solver minimises the projected objective
``f(clip(x, 0, 1))`` and returns ``clip(x, 0, 1)``: a pixel pushed past the range stops receiving
gradient, and the image handed to the losses, the callback and the output is always in [0, 1].
The optimiser state is carried between steps with ``previous_optimizer_results``, so the
curvature history survives while the engine gets a callback after every iteration.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from nstcore.solver import Objective, Solver, Stepper


class LBFGS(Solver):
    def __init__(self, num_correction_pairs: int = 10, max_line_search_iterations: int = 50,
                 first_step: float = 0.05, jit_compile: bool = False) -> None:
        self.options = dict(num_correction_pairs=num_correction_pairs, tolerance=0.0,
                            f_relative_tolerance=0.0, x_tolerance=0.0,
                            max_line_search_iterations=max_line_search_iterations)
        self.first_step = first_step
        self.jit_compile = jit_compile

    def start(self, objective: Objective, image: Any) -> Stepper:
        return _LBFGSStepper(self, objective, tf.convert_to_tensor(image, dtype=tf.float32))


class _LBFGSStepper(Stepper):
    def __init__(self, solver: LBFGS, objective: Objective, image: tf.Tensor) -> None:
        shape = image.shape
        options = solver.options

        def project(x: tf.Tensor) -> tf.Tensor:
            return tf.clip_by_value(tf.reshape(x, shape), 0.0, 1.0)

        # TFP's first line search starts at a step of 1 along -gradient, far too long for a loss
        # of order 1e9; ``scale`` (set below) makes that step move the most-pushed pixel by
        # ``first_step``. L-BFGS is scale-invariant after its first iteration.
        scale = tf.Variable(1.0, dtype=tf.float32)
        # The last evaluation (scaled value, unscaled total and terms), so a step can report the
        # accepted point's terms without another forward pass.
        last_scaled = tf.Variable(0.0, dtype=tf.float32)
        last_total = tf.Variable(0.0, dtype=tf.float32)
        last_terms = {k: tf.Variable(0.0, dtype=tf.float32) for k in objective.term_names}

        @tf.function(jit_compile=solver.jit_compile)
        def value_and_gradient(x: tf.Tensor):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total, terms = objective(project(x))
            scaled = total * scale
            last_scaled.assign(scaled)
            last_total.assign(total)
            for key, value in terms.items():
                last_terms[key].assign(value)
            return scaled, tape.gradient(total, x) * scale

        @tf.function
        def resume(previous, max_iterations: tf.Tensor):
            return tfp.optimizer.lbfgs_minimize(value_and_gradient, initial_position=None,
                                                previous_optimizer_results=previous,
                                                max_iterations=max_iterations, **options)

        # Zero iterations: just the initial evaluation, eagerly, so only ``resume`` is traced.
        state = tfp.optimizer.lbfgs_minimize(value_and_gradient, initial_position=tf.reshape(image, [-1]),
                                             max_iterations=0, **options)
        largest = float(tf.reduce_max(tf.abs(state.objective_gradient)))
        if largest > 0:
            factor = solver.first_step / largest
            scale.assign(factor)
            state = state._replace(objective_value=state.objective_value * factor,
                                   objective_gradient=state.objective_gradient * factor)
        self.state = state
        self.project = project
        self.resume = resume
        self.terms_at = tf.function(lambda x: objective(project(x)))
        self.last = (last_scaled, last_total, last_terms)

    def step(self):
        previous = self.state
        if bool(previous.failed):
            return None
        target = int(previous.num_iterations) + 1
        self.state = state = self.resume(previous, tf.constant(target, dtype=tf.int32))
        if int(state.num_iterations) < target:  # converged, or the line search failed
            return None
        last_scaled, last_total, last_terms = self.last
        if float(last_scaled.numpy()) == float(state.objective_value.numpy()):
            total, terms = last_total.numpy(), {k: v.numpy() for k, v in last_terms.items()}
        else:
            total, terms = self.terms_at(state.position)
        return total, terms, int(state.num_objective_evaluations)

    def image(self) -> tf.Tensor:
        return self.project(self.state.position)
