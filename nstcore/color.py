"""Colour preservation (Gatys, Bethge, Hertzmann, Shechtman 2016, "Preserving color in neural
artistic style transfer"): keep the content photo's colours and take only the style's texture.

``luminance``: optimise grey images (the content's and the style's luminance, the style's matched
to the content's mean and standard deviation), then put the content's chroma back. ``histogram``:
recolour the style image so its colour mean and covariance are the content's, then optimise as
usual. Both are image transforms before and after the run, so every loss and solver takes part.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MODES = ("none", "luminance", "histogram")
#: RGB -> YIQ (NTSC), the colour space the paper uses; Y is luminance, I and Q chroma.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]], dtype=np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def to_yiq(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, dtype=np.float64) @ RGB_TO_YIQ.T


def from_yiq(yiq: np.ndarray) -> np.ndarray:
    return np.asarray(yiq, dtype=np.float64) @ YIQ_TO_RGB.T


def luminance(rgb: np.ndarray) -> np.ndarray:
    """(h, w) luminance Y of an (h, w, 3) RGB image."""
    return to_yiq(rgb)[..., 0]


def grey(y: np.ndarray) -> np.ndarray:
    """A luminance map as the (h, w, 3) grey image the network sees."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def luminance_inputs(content: np.ndarray, styles: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Grey content and grey styles, each style's luminance shifted and scaled to the content's
    mean and standard deviation (the paper's luminance matching)."""
    y = luminance(content)
    mean, std = y.mean(), y.std()
    greys = []
    for style in styles:
        ys = luminance(style)
        scale = std / ys.std() if ys.std() > 1e-8 else 1.0
        greys.append(grey((ys - ys.mean()) * scale + mean))
    return grey(y), greys


def recombine(output: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The output's luminance with the content's chroma (I, Q), as RGB in [0, 1].

    Where that colour is outside [0, 1], the luminance is moved (not the chroma) to the nearest
    value inside: for RGB = Y + d with d fixed by the chroma, Y is kept within
    [max(-d), min(1 - d)], a range that holds the content's own Y. So the chroma is the content's
    exactly, up to 8-bit rounding.
    """
    yiq = to_yiq(content)
    offsets = from_yiq(np.concatenate([np.zeros_like(yiq[..., :1]), yiq[..., 1:]], axis=-1))
    low = np.max(-offsets, axis=-1)
    high = np.min(1.0 - offsets, axis=-1)
    y = np.clip(luminance(output), low, np.maximum(low, high))
    return np.clip(y[..., None] + offsets, 0.0, 1.0).astype(np.float32)


def match_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``style`` recoloured by the affine map x -> A (x - mu_s) + mu_c whose output has the
    content's colour mean mu_c and covariance S_c: A = S_c^(1/2) S_s^(-1/2) (symmetric square
    roots, the paper's "Image Analogies" colour transfer); clipped to [0, 1]."""
    source = np.asarray(style, dtype=np.float64).reshape(-1, 3)
    target = np.asarray(content, dtype=np.float64).reshape(-1, 3)
    mu_s, mu_c = source.mean(axis=0), target.mean(axis=0)
    eps = 1e-5 * np.eye(3)
    transform = _sqrtm(np.cov(target, rowvar=False) + eps) @ _inv_sqrtm(np.cov(source, rowvar=False) + eps)
    matched = (source - mu_s) @ transform.T + mu_c
    return np.clip(matched, 0.0, 1.0).reshape(style.shape).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def _inv_sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors / np.sqrt(np.maximum(values, 1e-12))) @ vectors.T
