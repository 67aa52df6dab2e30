"""VGG19 feature extractor with real ImageNet weights, computing only the layers asked for."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from nstcore import backends
from nstcore.errors import InputError, WeightsError
from nstcore.extractor import FeatureExtractor, Features
from nstcore.console import info, warn
from nstcore.tiling import TileGeometry, conv_pool_geometry
from nstcore_builtins.weights import VGG19_CONV_LAYERS, WeightsInfo, resolve, vgg19_floats_per_pixel

PRECISIONS = ("float32", "bfloat16")
#: CPU flags (Linux /proc/cpuinfo) of instructions that compute in bfloat16 natively.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16() -> bool:
    """Whether bfloat16 convolutions run natively here: a GPU the backend sees (compute
    capability 8.0 or newer), or a CPU with AVX512-BF16 or AMX. Elsewhere bfloat16 is emulated,
    measured 7-11x slower than float32 with TensorFlow on an AVX2-only CPU."""
    if backends.get().gpu_bfloat16():
        return True
    return any(flag in cpu_flags() for flag in NATIVE_BFLOAT16_FLAGS)


def resolve_precision(precision: str) -> str:
    """``auto`` -> bfloat16 where it is native, else float32; a one-line warning when bfloat16
    is asked for on hardware that would emulate it."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    if precision == "bfloat16" and not native_bfloat16():
        warn("--precision bfloat16: this machine has no native bfloat16 (no GPU, no avx512_bf16"
             " or amx_bf16 CPU flag), so it will run several times slower than float32; use"
             " --precision auto or float32")
    return precision


def vgg_network(layers: Sequence[str]) -> list[tuple[str, Any]]:
    """VGG's stack for :func:`nstcore.tiling.conv_pool_geometry` from its layer names: 3x3
    convolutions (``blockN_convM``) with a 2x2 pool before each block after the first."""
    network: list[tuple[str, Any]] = []
    for name in layers:
        if name.endswith("_conv1") and network:
            network.append(("pool", 2))
        network.append(("conv", (name, 3)))
    return network


POOLINGS = ("max", "avg")
#: How each convolution sees past the border: zeros (Keras's, the tutorial's) or the mirrored
#: activations
PADDINGS = ("zero", "reflect")
#: Caffe's per-channel means, in BGR order (Keras's ``vgg19.preprocess_input``)
BGR_MEANS = (103.939, 116.779, 123.68)


def conv_stack(x: Any, params: Sequence[tuple[str, Any, Any]],
               selected: Sequence[str], pooling: str = "max", padding: str = "zero") -> Features:
    """VGG's body: 3x3 conv + ReLU per layer, 2x2 pooling between blocks (``blockN_convM``),
    in ``keras.ops`` (any backend).

    ``params`` are (layer name, HWIO kernel, bias) in network order, up to the deepest layer
    wanted; ``pooling`` is VGG's ``max`` or ``avg`` (Gatys et al.'s choice: smoother pictures);
    ``padding`` is ``zero`` or ``reflect``; returns the selected layers' activations as float32.
    """
    ops = backends.ops()
    pool = ops.max_pool if pooling == "max" else ops.average_pool
    features, block = {}, 1
    for name, kernel, bias in params:
        if int(name[5]) != block:  # VGG19 pools between blocks
            x = pool(x, 2, 2, "valid")
            block = int(name[5])
        if padding == "reflect":
            for axis in (1, 2):  # an axis one position long has nothing to reflect: repeated
                widths = [(1, 1) if i == axis else (0, 0) for i in range(4)]
                x = ops.pad(x, widths, mode="reflect" if x.shape[axis] > 1 else "symmetric")
            x = ops.relu(ops.conv(x, kernel, 1, "valid") + bias)
        else:
            x = ops.relu(ops.conv(x, kernel, 1, "same") + bias)
        if name in selected:
            features[name] = ops.cast(x, "float32")
    return features


class VGG19Extractor(FeatureExtractor):
    """Keras ``VGG19(include_top=False)`` weights, Caffe-style preprocessing (BGR, mean-subtracted).

    The forward pass runs the conv/ReLU/max-pool stack directly on the loaded kernels, stopping at
    the deepest selected layer. ``precision="bfloat16"`` runs the convolutions in bfloat16 (the
    features handed to the losses stay float32): 1.8x faster per step measured on one CPU with
    AVX512-BF16, 7-11x slower on a CPU without native bfloat16, not measured on a GPU; the losses
    differed by 1-2 % at 64 px; ``float32`` (the default) reproduces the TensorFlow tutorial and
    ``auto`` picks bfloat16 only where it is native. ``padding="reflect"`` mirrors each
    convolution's input at the border instead of padding it with zeros (Keras's, the tutorial's).
    """

    layers = tuple(name for name, _, _ in VGG19_CONV_LAYERS)
    backends = backends.ALL

    def __init__(self, weights: str | None = None, precision: str = "auto",
                 fetch_if_missing: bool = True, pooling: str = "max",
                 padding: str = "zero") -> None:
        if padding not in PADDINGS:
            raise InputError(f"unknown padding '{padding}' (choose from {', '.join(PADDINGS)})")
        self.padding = padding
        if pooling not in POOLINGS:
            raise InputError(f"unknown pooling '{pooling}' (choose from {', '.join(POOLINGS)})")
        self.pooling = pooling
        if precision not in PRECISIONS + ("auto",):
            raise InputError(f"unknown precision '{precision}' (choose from auto, {', '.join(PRECISIONS)})")
        self.requested_precision = precision
        self.precision = resolve_precision(precision)
        self.weights_info: WeightsInfo = resolve(weights, fetch_if_missing=fetch_if_missing,
                                                 announce=info)
        self.selected: tuple[str, ...] = ()
        self._params: list[tuple[str, Any, Any]] = []

    @classmethod
    def floats_per_pixel(cls, layers: Sequence[str]) -> float:
        """Activation floats per input pixel up to the deepest layer in ``layers`` (memory estimate)."""
        return vgg19_floats_per_pixel(layers)

    @classmethod
    def min_side(cls, layers: Sequence[str]) -> int:
        """2 ** (max-pools before the deepest layer in ``layers``): 16 for block5."""
        deepest = max(cls.layers.index(name) for name in layers)
        return 2 ** (int(cls.layers[deepest][5]) - 1)

    @classmethod
    def flops_per_pixel(cls, layers: Sequence[str]) -> float:
        """Forward convolution FLOPs per input pixel up to the deepest layer in ``layers``."""
        deepest = max(cls.layers.index(name) for name in layers)
        return sum(2.0 * 9 * cin * cout / 4 ** (int(name[5]) - 1)
                   for name, cin, cout in VGG19_CONV_LAYERS[:deepest + 1])

    @classmethod
    def tile_geometry(cls, layers: Sequence[str]) -> TileGeometry:
        """3x3 'same' convolutions with a 2x2 max-pool between blocks (as ``conv_stack`` runs
        them): halo 96 px and a 16-px grid for block5_conv2."""
        return conv_pool_geometry(vgg_network(cls.layers), layers)

    def select(self, layers: Sequence[str]) -> None:
        unknown = [name for name in layers if name not in self.layers]
        if unknown:
            raise InputError(f"unknown VGG19 layer {', '.join(unknown)} (layers: {', '.join(self.layers)})")
        ops = backends.ops()  # the backend chosen (and TensorFlow loaded quietly) before Keras
        import keras

        try:
            base = keras.applications.VGG19(include_top=False, weights=self.weights_info.path)
        except Exception as exc:
            raise WeightsError(f"cannot load VGG19 weights from {self.weights_info.path}:"
                               f" {type(exc).__name__}: {str(exc)[:200]}; it is corrupt or not a"
                               " Keras VGG19 no-top file (download it again, or drop --weights and"
                               " run `nstcore weights fetch`)") from None
        self.selected = tuple(dict.fromkeys(layers))
        deepest = max(self.layers.index(name) for name in self.selected)
        self._params = []
        for name, _, _ in VGG19_CONV_LAYERS[:deepest + 1]:
            kernel, bias = base.get_layer(name).get_weights()
            self._params.append((name, ops.convert_to_tensor(kernel, self.precision),
                                 ops.convert_to_tensor(bias, self.precision)))
        self._means = ops.convert_to_tensor(np.array(BGR_MEANS, np.float32))
        del base

    def preprocess(self, image: Any) -> Any:
        """Caffe's convention (Keras's ``vgg19.preprocess_input``): RGB in [0, 1] to BGR in
        [0, 255] less the ImageNet means; written out, since Keras's edits NumPy input in place."""
        ops = backends.ops()
        return ops.flip(ops.convert_to_tensor(image), axis=-1) * 255.0 - self._means

    def __call__(self, image: Any) -> Features:
        if not self._params:
            raise RuntimeError("call select(layers) before extracting features")
        x = backends.ops().cast(self.preprocess(image), self.precision)
        return conv_stack(x, self._params, self.selected, self.pooling, self.padding)

    def describe(self) -> dict[str, Any]:
        return {"weights": self.weights_info.as_dict(), "precision": self.precision,
                "pooling": self.pooling, "padding": self.padding,
                "requested_precision": self.requested_precision}
