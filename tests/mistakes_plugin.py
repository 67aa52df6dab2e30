"""Losses with the mistakes a plugin author makes first (tests/test_plugins.py)."""
import tensorflow as tf

import nstcore
from nstcore.loss import Loss


class NumpyMomentsLoss(Loss):
    """Works eagerly; inside the traced step ``.numpy()`` does not exist."""

    role = "style"
    default_layers = ("block1_conv1",)

    def __call__(self, features, image):
        return tf.reduce_mean(features["block1_conv1"]) + float(features["block1_conv1"].numpy().mean())


class TupleHoldLoss(Loss):
    """Holds a (mean, std) tuple under one name."""

    role = "style"
    default_layers = ("block1_conv1",)

    def prepare(self, content, style):
        f = style["block1_conv1"]
        self.held = self.hold({"target": (tf.reduce_mean(f, [1, 2]), tf.math.reduce_std(f, [1, 2]))},
                              getattr(self, "held", None))

    def __call__(self, features, image):
        mean, _ = self.held["target"]
        return tf.reduce_mean(tf.square(tf.reduce_mean(features["block1_conv1"], [1, 2]) - mean))


@nstcore.hookimpl
def register_losses(register):
    register("numpymoments", NumpyMomentsLoss)
    register("tuplehold", TupleHoldLoss)
