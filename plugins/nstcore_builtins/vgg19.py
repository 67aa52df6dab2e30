"""VGG19 feature extractor with real ImageNet weights, computing only the layers asked for."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from nstcore.errors import InputError, WeightsError
from nstcore.extractor import FeatureExtractor, Features
from nstcore.weights import VGG19_CONV_LAYERS, WeightsInfo, resolve


class VGG19Extractor(FeatureExtractor):
    """Keras ``VGG19(include_top=False)`` with Caffe-style preprocessing (BGR, mean-subtracted)."""

    layers = tuple(name for name, _, _ in VGG19_CONV_LAYERS)

    def __init__(self, weights: str | None = None, fetch_if_missing: bool = True,
                 announce: Callable[[str], None] | None = None) -> None:
        self.weights_info: WeightsInfo = resolve(weights, fetch_if_missing=fetch_if_missing,
                                                 announce=announce)
        self.selected: tuple[str, ...] = ()
        self._model: keras.Model | None = None

    @classmethod
    def floats_per_pixel(cls, layers: Sequence[str]) -> float:
        """Activation floats per input pixel up to the deepest layer in ``layers`` (memory estimate)."""
        deepest = max(cls.layers.index(name) for name in layers)
        total = 0.0
        for name, _, channels in VGG19_CONV_LAYERS[:deepest + 1]:
            block = int(name[5])
            total += channels / 4 ** (block - 1)  # each pooling quarters the positions
        return total

    @classmethod
    def flops_per_pixel(cls, layers: Sequence[str]) -> float:
        """Forward convolution FLOPs per input pixel up to the deepest layer in ``layers``."""
        deepest = max(cls.layers.index(name) for name in layers)
        total = 0.0
        for name, cin, cout in VGG19_CONV_LAYERS[:deepest + 1]:
            block = int(name[5])
            total += 2.0 * 9 * cin * cout / 4 ** (block - 1)
        return total

    def select(self, layers: Sequence[str]) -> None:
        unknown = [name for name in layers if name not in self.layers]
        if unknown:
            raise InputError(f"unknown VGG19 layer {', '.join(unknown)} (layers: {', '.join(self.layers)})")
        try:
            base = keras.applications.VGG19(include_top=False, weights=self.weights_info.path)
        except Exception as exc:
            raise WeightsError(f"cannot load VGG19 weights from {self.weights_info.path}:"
                               f" {type(exc).__name__}: {str(exc)[:200]}") from None
        base.trainable = False
        # A functional model over these outputs holds only the layers up to the deepest one.
        self.selected = tuple(dict.fromkeys(layers))
        outputs = [base.get_layer(name).output for name in self.selected]
        self._model = keras.Model(base.input, outputs)
        self._model.trainable = False

    def preprocess(self, image: Any) -> tf.Tensor:
        # A tensor, never a numpy array: Keras's preprocess_input edits float numpy input in place.
        return keras.applications.vgg19.preprocess_input(tf.convert_to_tensor(image) * 255.0)

    def __call__(self, image: Any) -> Features:
        if self._model is None:
            raise RuntimeError("call select(layers) before extracting features")
        outputs = self._model(self.preprocess(image))
        if len(self.selected) == 1:
            outputs = [outputs] if not isinstance(outputs, (list, tuple)) else outputs
        return dict(zip(self.selected, outputs))

    def describe(self) -> dict[str, Any]:
        return {"weights": self.weights_info.as_dict()}
