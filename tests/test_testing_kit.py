"""The contract kit passes good plugins and explains what is wrong with bad ones."""
import pytest
import tensorflow as tf

from mistakes_plugin import TupleHoldLoss
from nstcore.loss import Loss
from nstcore.solver import Solver, Stepper
from nstcore.testing import ContractError, TinyVGG, check_extractor, check_loss, check_solver
from nstcore_builtins.adam import Adam
from nstcore_builtins.content import ContentLoss
from nstcore_builtins.gram import GramStyleLoss
from nstcore_builtins.lbfgs import LBFGS
from nstcore_builtins.tv import TotalVariationLoss
from nstcore_builtins.vgg19 import VGG19Extractor


@pytest.mark.parametrize("loss", [ContentLoss, GramStyleLoss, TotalVariationLoss])
def test_builtin_losses_pass_and_say_which_checks_ran(loss):
    ran = check_loss(loss)
    assert any(line.startswith("gradient: autodiff matches") for line in ran), ran
    tiled = [line for line in ran if line.startswith("tiled")]
    if loss is TotalVariationLoss:  # no layers: sees the whole image
        assert tiled == ["tiled: skipped (the loss uses no layers: it sees the whole image)"]
    else:
        assert tiled and tiled[0].startswith("tiled (16-px tiles"), ran


def test_a_loss_without_statistics_is_said_to_be_checked_untiled_only():
    from plugin_for_tests import MeanColourLoss

    ran = check_loss(MeanColourLoss)
    assert any(line.startswith("tiled: SKIPPED: no statistics()") for line in ran), ran


@pytest.mark.parametrize("solver", [Adam, LBFGS])
def test_builtin_solvers_pass_through_carry_to_the_next_scale(solver):
    ran = check_solver(solver)
    assert ran[1].startswith("next scale (16 px) from carry(): ")
    assert ("state passed" in ran[1]) == (solver is Adam)  # Adam carries its moments


def gradient_off_by(factor):
    """A loss whose hand-written gradient is ``factor`` times the true one."""

    class OffGradientLoss(Loss):
        role = "regularizer"

        def __call__(self, features, image):
            @tf.custom_gradient
            def f(x):
                return tf.reduce_sum(tf.square(x)), lambda dy: dy * 2.0 * factor * x
            return f(image)

    return OffGradientLoss


# its hand-written gradient is 3 % too large: what a wrong constant in one does
SlightlyWrongGradientLoss = gradient_off_by(1.03)


def test_slightly_wrong_gradients_and_tuple_holds_are_caught():
    with pytest.raises(ContractError, match="gradient does not match finite differences"):
        check_loss(SlightlyWrongGradientLoss)
    with pytest.raises(ContractError, match="hold\\(\\) keeps one tensor per name, but 'target' is a"
                                            " tuple of 2: hold each under its own name"):
        check_loss(TupleHoldLoss)


def test_a_name_taken_by_another_plugin_is_caught():
    with pytest.raises(ContractError, match="the loss name 'gram' is already registered by plugin"
                                            " 'losses' \\(nstcore"):
        check_loss(SlightlyWrongGradientLoss, name="gram")
    assert check_loss(GramStyleLoss, name="gram")[0] == ("name: 'gram' is not taken by another"
                                                        " installed plugin")


def test_extractors_pass(weights_path):
    check_extractor(TinyVGG())
    check_extractor(VGG19Extractor(weights=weights_path))


class VectorLoss(Loss):
    role = "regularizer"

    def __call__(self, features, image):
        return tf.image.total_variation(image)


class RoundingLoss(Loss):
    role = "regularizer"

    def __call__(self, features, image):
        return tf.reduce_sum(tf.round(image * 255.0))


class StopGradientLoss(Loss):
    role = "style"
    default_layers = ("block1_conv1",)

    def prepare(self, content, style):
        self.target = tf.reduce_mean(style["block1_conv1"], axis=[1, 2])

    def __call__(self, features, image):
        pooled = tf.reduce_mean(tf.stop_gradient(features["block1_conv1"]), axis=[1, 2])
        return tf.reduce_mean(tf.square(pooled - self.target))


class WrongLayerLoss(Loss):
    role = "style"
    default_layers = ("conv9_9",)

    def __call__(self, features, image):
        return tf.reduce_sum(features["conv9_9"])


class RandomLoss(Loss):
    role = "regularizer"

    def __call__(self, features, image):
        return tf.reduce_sum(image) * tf.random.uniform([])


WrongGradientLoss = gradient_off_by(3.0)


class SameSizeLoss(Loss):
    """Assumes the style image has the content image's size (subtracts feature maps)."""

    role = "style"
    default_layers = ("block1_conv1",)

    def prepare(self, content, style):
        self.target = style["block1_conv1"]

    def __call__(self, features, image):
        return tf.reduce_mean(tf.square(features["block1_conv1"] - self.target))


class NumpyLoss(Loss):
    """Leaves TensorFlow with .numpy(): fine eagerly, a crash inside tf.function."""

    role = "regularizer"

    def __call__(self, features, image):
        return tf.constant(float(image.numpy().mean())) + tf.reduce_mean(image)


class MisspeltRoleLoss(Loss):
    role = "Style"

    def __call__(self, features, image):
        return tf.reduce_mean(image)


@pytest.mark.parametrize("loss,message", [
    (SameSizeLoss, "raised InvalidArgumentError when called eagerly: "),
    (NumpyLoss, "raised AttributeError when called inside tf.function: "),
    (MisspeltRoleLoss, "has role 'Style'; it must be one of content, style, regularizer"),
])
def test_crashes_and_wrong_roles_get_the_hint(loss, message):
    with pytest.raises(ContractError) as error:
        check_loss(loss)
    text = str(error.value)
    assert message in text
    if loss is not MisspeltRoleLoss:
        assert text.endswith("avoid Python side effects, .numpy() and Python if/for on tensor values"
                             " in __call__: the engine runs it inside tf.function (jax.jit on JAX);"
                             " and do not assume"
                             " the style image has the content image's size")


@pytest.mark.parametrize("loss,message", [
    (VectorLoss, "returned shape [1], not a scalar: reduce it"),
    (RoundingLoss, "gradient w.r.t. the image is None"),
    (StopGradientLoss, "gradient w.r.t. the image is None"),
    (WrongLayerLoss, "asks for layers ['conv9_9'] that the extractor lacks"),
    (RandomLoss, "is not deterministic"),
    (WrongGradientLoss, "gradient does not match finite differences"),
])
def test_bad_losses_fail_with_what_to_fix(loss, message):
    with pytest.raises(ContractError) as error:
        check_loss(loss)
    assert message in str(error.value)


class UnclippedDescent(Solver):
    """Plain gradient descent that forgets to keep pixels in [0, 1]."""

    def start(self, objective, image):
        variable = tf.Variable(image)

        class Step(Stepper):
            evaluations = 0

            def step(self):
                with tf.GradientTape() as tape:
                    total, terms = objective(variable)
                variable.assign_sub(0.4 * tape.gradient(total, variable))
                self.evaluations += 1
                return total, terms, self.evaluations

            def image(self):
                return tf.convert_to_tensor(variable)

        return Step()


def test_a_solver_that_leaves_the_range_is_caught():
    with pytest.raises(ContractError, match="outside \\[0, 1\\] at step 1: clip or project"):
        check_solver(UnclippedDescent)


class TimidAdam(Adam):
    """Adam at a learning rate too small to matter: the objective barely moves."""

    def __init__(self):
        super().__init__(learning_rate=1e-5)


class ForgetfulAdam(Adam):
    """Its steppers carry state, but its start() takes none."""

    def start(self, objective, image):
        return super().start(objective, image)


def test_a_solver_that_barely_moves_or_drops_its_carried_state_is_caught():
    with pytest.raises(ContractError, match="lowered a convex objective only from"):
        check_solver(TimidAdam)
    with pytest.raises(ContractError, match="carries state but start\\(\\) does not take it"):
        check_solver(ForgetfulAdam)
