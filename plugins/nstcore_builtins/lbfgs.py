"""L-BFGS through ``tfp.optimizer.lbfgs_minimize``, one iteration per step.

TFP's L-BFGS has no bounds, so the solver minimises the projected objective ``f(clip(x, 0, 1))``
and returns ``clip(x, 0, 1)``: the image handed to the losses, the callback and the output is
always in range. A pixel that overshoots the range gets zero gradient from ``f(clip(x))``, so
on its own it would stay stuck at the bound for the rest of the run. After every accepted
iteration the solver therefore projects the position onto [0, 1] (``x <- clip(x)``), which
leaves the loss unchanged, and hands L-BFGS the gradient of ``f`` at that point, which it
already computed in the last evaluation: free, and the pixel moves again when ``f`` pulls it
back inside.
The optimiser state is carried between steps with ``previous_optimizer_results``, so the
curvature history survives while the engine gets a callback after every iteration.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from nstcore.solver import Objective, Solver, SolverStopped, Stepper


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
        # The last evaluation's gradient w.r.t. the clipped image (not masked outside the range):
        # the gradient at the projected position.
        last_image_gradient = tf.Variable(tf.zeros([int(tf.size(image))]), dtype=tf.float32)

        @tf.function(jit_compile=solver.jit_compile)
        def value_and_gradient(x: tf.Tensor):
            clipped = project(x)
            with tf.GradientTape() as tape:
                tape.watch(clipped)
                total, terms = objective(clipped)
            image_gradient = tf.reshape(tape.gradient(total, clipped), [-1]) * scale
            scaled = total * scale
            last_scaled.assign(scaled)
            last_total.assign(total)
            last_image_gradient.assign(image_gradient)
            for key, value in terms.items():
                last_terms[key].assign(value)
            inside = tf.cast((x >= 0.0) & (x <= 1.0), tf.float32)
            return scaled, image_gradient * inside

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
            last_scaled.assign(last_scaled * factor)
            last_image_gradient.assign(last_image_gradient * factor)
            state = state._replace(objective_value=state.objective_value * factor,
                                   objective_gradient=state.objective_gradient * factor)
        self.last = (last_scaled, last_total, last_terms)
        self.last_image_gradient = last_image_gradient
        self.state = self._projected(state)
        self.project = project
        self.resume = resume
        self.terms_at = tf.function(lambda x: objective(project(x)))

    def step(self):
        previous = self.state
        self._check_stopped(previous)
        target = int(previous.num_iterations) + 1
        self.state = state = self.resume(previous, tf.constant(target, dtype=tf.int32))
        if int(state.num_iterations) < target:
            self._check_stopped(state)
            raise SolverStopped("L-BFGS made no further iteration", converged=False)
        last_scaled, last_total, last_terms = self.last
        if float(last_scaled.numpy()) == float(state.objective_value.numpy()):
            total, terms = last_total.numpy(), {k: v.numpy() for k, v in last_terms.items()}
            self.state = self._projected(state)
        else:
            total, terms = self.terms_at(state.position)
        return total, terms, int(state.num_objective_evaluations)

    def _projected(self, state: Any) -> Any:
        """``state`` with its position clipped to [0, 1] and the gradient there, if any pixel was
        outside. Only valid when the last evaluation was at ``state.position`` (the caller checks).
        """
        position = state.position
        clipped = tf.clip_by_value(position, 0.0, 1.0)
        if not bool(tf.reduce_any(clipped != position)):
            return state
        gradient = self.last_image_gradient.read_value()
        # TFP judged convergence on the masked gradient, which is zero for pixels outside the
        # range; at the projected point the gradient is the real one. The newest curvature pair
        # (position and gradient change of the last iteration) is corrected to end there too.
        converged = tf.logical_and(state.converged, tf.reduce_all(gradient == 0.0))
        newest = tf.one_hot(tf.shape(state.position_deltas)[0] - 1, tf.shape(state.position_deltas)[0])
        position_deltas = state.position_deltas + newest[:, None] * (clipped - position)[None]
        gradient_deltas = state.gradient_deltas + newest[:, None] * (gradient - state.objective_gradient)[None]
        if int(state.num_iterations) == 0:  # no pair yet: nothing to correct
            position_deltas, gradient_deltas = state.position_deltas, state.gradient_deltas
        return state._replace(position=clipped, objective_gradient=gradient, converged=converged,
                              position_deltas=position_deltas, gradient_deltas=gradient_deltas)

    @staticmethod
    def _check_stopped(state: Any) -> None:
        if bool(state.converged):
            raise SolverStopped("converged: the gradient vanished or the loss stopped changing",
                                converged=True)
        if bool(state.failed):
            raise SolverStopped("the line search found no lower loss", converged=False)

    def image(self) -> tf.Tensor:
        return self.project(self.state.position)
