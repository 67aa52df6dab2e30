"""Image resizing that gives the same numbers on every backend: TensorFlow's own definitions
(``tf.image.resize``), written as one weight matrix per axis.

Each backend's resize differs in its details (PyTorch's bicubic uses another cubic, a = -0.75,
and clamps at the border), so a pyramid run would start each scale from a slightly different
picture on each backend. Here a resize is ``out = A_h @ image @ A_w^T`` per channel, with
``A`` built in NumPy exactly as TensorFlow builds its sampling weights:

- with ``antialias`` (every resize inside a run): TensorFlow's ``ScaleAndTranslate``: for each
  output pixel, the kernel (triangle for ``bilinear``, Keys cubic with a = -0.5 for
  ``bicubic``) stretched by the downsampling factor when shrinking, over the source pixels in
  range, the weights normalised to sum to 1 (nothing is sampled outside the picture);
- without it (``bilinear`` only: how the tutorial loads an image): ``ResizeBilinear`` with half-pixel
  centres, the border pixel repeated.

NumPy arrays are resized in NumPy (no backend needed to load an image); tensors with
``keras.ops`` on their device.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

METHODS = ("bilinear", "bicubic")


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.float32(0.0), np.float32(1.0) - x)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    f32 = np.float32
    near = ((f32(1.5) * x - f32(2.5)) * x) * x + f32(1.0)
    far = ((f32(-0.5) * x + f32(2.5)) * x - f32(4.0)) * x + f32(2.0)
    return np.where(x >= 2.0, f32(0.0), np.where(x >= 1.0, far, near))


_KERNELS = {"bilinear": (_triangle, 1.0), "bicubic": (_keys_cubic, 2.0)}


@functools.lru_cache(maxsize=64)
def weights(source: int, target: int, method: str = "bilinear", antialias: bool = True) -> np.ndarray:
    """The (target, source) float32 matrix that resizes one axis of ``source`` pixels to
    ``target``, as ``tf.image.resize(..., method, antialias)`` does."""
    if method not in METHODS:
        raise ValueError(f"unknown resize method {method!r} (choose from {', '.join(METHODS)})")
    matrix = np.zeros((target, source), np.float64)
    inverse = np.float32(source) / np.float32(target)
    if not antialias:
        if method != "bilinear":
            raise ValueError("only bilinear resizing is defined without antialiasing")
        for i in range(target):
            position = (i + 0.5) * inverse - 0.5
            low = math.floor(position)
            lerp = position - low
            matrix[i, min(max(low, 0), source - 1)] += 1.0 - lerp
            matrix[i, min(max(low + 1, 0), source - 1)] += lerp
        return matrix.astype(np.float32)
    kernel, radius = _KERNELS[method]
    f32 = np.float32
    scale = max(inverse, f32(1.0))  # stretched when shrinking: the antialiasing
    for i in range(target):  # in float32, step for step as TensorFlow computes it
        centre = (f32(i) + f32(0.5)) * inverse
        if centre < 0 or centre > source:
            continue
        first = min(max(math.ceil(centre - f32(radius) * scale - f32(0.5)), 0), source - 1)
        last = min(max(math.floor(centre + f32(radius) * scale - f32(0.5)), 0), source - 1) + 1
        taps = np.arange(first, last).astype(f32)
        found = kernel(np.abs((taps + f32(0.5) - centre) * (f32(1.0) / scale))).astype(f32)
        total = found.sum(dtype=f32)
        if abs(total) >= 1000 * np.finfo(f32).tiny:
            found = found / total
        matrix[i, first:last] = found
    return matrix.astype(np.float32)


def resize_array(image: np.ndarray, shape: tuple[int, int], method: str = "bilinear",
                 antialias: bool = True) -> np.ndarray:
    """A (h, w, c) or (b, h, w, c) float array at ``shape`` (h, w), in NumPy."""
    rows = weights(image.shape[-3], int(shape[0]), method, antialias)
    cols = weights(image.shape[-2], int(shape[1]), method, antialias)
    image = np.asarray(image, np.float32)
    out = np.einsum("oh,...hwc->...owc", rows, image, optimize=True)
    return np.einsum("pw,...owc->...opc", cols, out, optimize=True).astype(np.float32)


def resize_tensor(image: Any, shape: tuple[int, int], method: str = "bilinear",
                  antialias: bool = True) -> Any:
    """A [b, h, w, c] tensor of the current backend at ``shape`` (h, w), on its device."""
    from nstcore import backends

    ops = backends.ops()
    height, width = int(image.shape[1]), int(image.shape[2])
    rows = ops.convert_to_tensor(weights(height, int(shape[0]), method, antialias))
    cols = ops.convert_to_tensor(weights(width, int(shape[1]), method, antialias))
    out = ops.einsum("oh,bhwc->bowc", rows, image)
    return ops.einsum("pw,bowc->bopc", cols, out)
