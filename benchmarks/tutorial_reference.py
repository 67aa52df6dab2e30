"""The TensorFlow tutorial's style transfer, written out plainly and independently of nstcore.

Tests use it to check that nstcore's defaults reproduce the tutorial's losses step for step;
benchmarks time its train step as the reference nstcore is measured against (in float32
nstcore runs the same computation and matches it; see README "Measured here"). It shares nothing with
nstcore but the weights file.
"""
from __future__ import annotations

import tensorflow as tf

CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e-2
CONTENT_WEIGHT = 1e4
TOTAL_VARIATION_WEIGHT = 30


def vgg_layers(layer_names, weights_path):
    vgg = tf.keras.applications.VGG19(include_top=False, weights=weights_path)
    vgg.trainable = False
    outputs = [vgg.get_layer(name).output for name in layer_names]
    return tf.keras.Model([vgg.input], outputs)


def gram_matrix(input_tensor):
    result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
    input_shape = tf.shape(input_tensor)
    num_locations = tf.cast(input_shape[1] * input_shape[2], tf.float32)
    return result / num_locations


class StyleContentModel(tf.keras.models.Model):
    def __init__(self, style_layers, content_layers, weights_path):
        super().__init__()
        self.vgg = vgg_layers(style_layers + content_layers, weights_path)
        self.style_layers = style_layers
        self.content_layers = content_layers
        self.num_style_layers = len(style_layers)
        self.vgg.trainable = False

    def call(self, inputs):
        inputs = inputs * 255.0
        preprocessed_input = tf.keras.applications.vgg19.preprocess_input(inputs)
        outputs = self.vgg(preprocessed_input)
        style_outputs = outputs[: self.num_style_layers]
        content_outputs = outputs[self.num_style_layers:]
        style_outputs = [gram_matrix(style_output) for style_output in style_outputs]
        content_dict = dict(zip(self.content_layers, content_outputs))
        style_dict = dict(zip(self.style_layers, style_outputs))
        return {"content": content_dict, "style": style_dict}


class TutorialRun:
    """The tutorial's objective and Adam train step on one content/style pair."""

    def __init__(self, content_image, style_image, weights_path, jit_compile=False):
        self.extractor = StyleContentModel(STYLE_LAYERS, CONTENT_LAYERS, weights_path)
        self.style_targets = self.extractor(style_image)["style"]
        self.content_targets = self.extractor(content_image)["content"]
        self.image = tf.Variable(content_image)
        self.opt = tf.keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        self.train_step = tf.function(self._train_step, jit_compile=jit_compile)

    def style_content_loss(self, outputs):
        style_outputs = outputs["style"]
        content_outputs = outputs["content"]
        style_loss = tf.add_n([tf.reduce_mean((style_outputs[name] - self.style_targets[name]) ** 2)
                               for name in style_outputs.keys()])
        style_loss *= STYLE_WEIGHT / len(STYLE_LAYERS)
        content_loss = tf.add_n([tf.reduce_mean((content_outputs[name] - self.content_targets[name]) ** 2)
                                 for name in content_outputs.keys()])
        content_loss *= CONTENT_WEIGHT / len(CONTENT_LAYERS)
        return style_loss + content_loss

    def total_loss(self, image):
        outputs = self.extractor(image)
        loss = self.style_content_loss(outputs)
        loss += TOTAL_VARIATION_WEIGHT * tf.image.total_variation(image)
        return loss

    def _train_step(self):
        with tf.GradientTape() as tape:
            loss = self.total_loss(self.image)
        grad = tape.gradient(loss, self.image)
        self.opt.apply_gradients([(grad, self.image)])
        self.image.assign(tf.clip_by_value(self.image, clip_value_min=0.0, clip_value_max=1.0))
        return loss
