"""The built-in losses reproduce the TensorFlow tutorial's definitions."""
import numpy as np
import tensorflow as tf

from nstcore_benchmarks.tutorial_reference import TutorialRun
from nstcore.objective import Objective
from nstcore_builtins.content import ContentLoss
from nstcore_builtins.gram import GramStyleLoss, gram_matrix
from nstcore_builtins.tv import TotalVariationLoss
from nstcore_builtins.vgg19 import VGG19Extractor


def test_gram_matches_worked_example():
    x = tf.constant([[[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]], tf.float32)  # 1x2x2x3
    expected = np.array([[166, 188, 210], [188, 214, 240], [210, 240, 270]], np.float32) / 4.0
    np.testing.assert_array_equal(gram_matrix(x).numpy()[0], expected)


def test_gram_is_per_position_mean_of_outer_products():
    x = tf.random.stateless_normal([1, 5, 7, 4], seed=[1, 2])
    flat = x.numpy().reshape(-1, 4)
    np.testing.assert_allclose(gram_matrix(x).numpy()[0], flat.T @ flat / 35, rtol=1e-5)


def test_tv_equals_tensorflow_total_variation():
    image = tf.random.stateless_uniform([1, 9, 11, 3], seed=[3, 4])
    loss = TotalVariationLoss()
    value = loss({}, image)
    assert value.shape == ()
    np.testing.assert_allclose(value.numpy(), tf.image.total_variation(image).numpy()[0], rtol=1e-6)
    # and that is the sum of absolute neighbour differences
    a = image.numpy()[0]
    by_hand = np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum()
    np.testing.assert_allclose(value.numpy(), by_hand, rtol=1e-5)
    assert loss.weight == 30.0


def test_default_weights_and_layers_are_the_tutorials():
    assert ContentLoss().weight == 1e4 and ContentLoss().layers == ("block5_conv2",)
    assert GramStyleLoss().weight == 1e-2
    assert GramStyleLoss().layers == tuple(f"block{i}_conv1" for i in range(1, 6))


def test_default_total_loss_equals_the_tutorials(tiny_pair, weights_path):
    content, style = tiny_pair
    extractor = VGG19Extractor(weights=weights_path, precision="float32")
    losses = [ContentLoss(name="content"), GramStyleLoss(name="gram"), TotalVariationLoss(name="tv")]
    objective = Objective(extractor, losses)
    extractor.select(sorted({layer for loss in losses for layer in loss.layers},
                            key=extractor.layers.index))
    content_features = extractor(content[None])
    style_features = extractor(style[None])
    for loss in losses:
        loss.prepare(content_features, style_features)
    reference = TutorialRun(tf.constant(content[None]), tf.constant(style[None]), weights_path)
    # an image away from the content image, so every term is non-zero
    image = tf.constant(np.clip(content + 0.1 * np.sin(np.arange(content.size)).reshape(content.shape),
                                0, 1)[None], tf.float32)
    total, terms = objective(image)
    expected = reference.total_loss(image).numpy()[0]
    assert all(float(v) > 0 for v in terms.values())
    np.testing.assert_allclose(float(total), expected, rtol=1e-5)
