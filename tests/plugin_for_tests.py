"""A third-party-style plugin used by the tests: a loss pulling the mean colour toward the style's."""
import tensorflow as tf

import nstcore
from nstcore.loss import Loss


class MeanColourLoss(Loss):
    role = "style"
    default_weight = 1e3

    def prepare(self, content, style):
        self.target = tf.reduce_mean(style["block1_conv1"], axis=[1, 2])

    def __call__(self, features, image):
        return tf.reduce_mean(tf.square(tf.reduce_mean(features["block1_conv1"], axis=[1, 2]) - self.target))

    default_layers = ("block1_conv1",)


@nstcore.hookimpl
def register_losses(register):
    register("meancolour", MeanColourLoss, description="test plugin: mean colour of block1_conv1")


steps_seen = []


@nstcore.hookimpl
def on_step(step):
    steps_seen.append((step.step, step.total))
