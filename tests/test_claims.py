"""What the README claims and no other test checked: resizing, output formats, XLA, bfloat16."""
from __future__ import annotations

import numpy as np
import pytest

import nstcore
from nstcore.imageio import OUTPUT_SUFFIXES, load_image, long_side_shape, resize_long_side, save_image


@pytest.mark.parametrize("height,width,size", [(600, 752, 64), (752, 600, 64), (300, 451, 97),
                                               (512, 512, 128), (17, 1000, 333)])
def test_the_long_side_is_exactly_the_requested_size(height, width, size):
    image = np.random.default_rng(0).uniform(0, 1, (height, width, 3)).astype(np.float32)
    resized = resize_long_side(image, size)
    assert max(resized.shape[:2]) == size
    assert resized.shape[:2] == long_side_shape(height, width, size)
    # the short side is the tutorial's float32 truncation
    short = int(np.float32(min(height, width)) * (np.float32(size) / np.float32(max(height, width))))
    assert min(resized.shape[:2]) == max(short, 1)


def test_an_image_already_at_the_size_is_not_resampled():
    image = np.random.default_rng(1).uniform(0, 1, (48, 64, 3)).astype(np.float32)
    same = resize_long_side(image, 64)
    np.testing.assert_array_equal(same, image)


def _smooth(height=40, width=56):
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    return np.stack([rows * cols, 0.5 + 0.4 * np.sin(6 * cols + 0 * rows), 1 - rows + 0 * cols], -1)


@pytest.mark.parametrize("suffix", sorted(OUTPUT_SUFFIXES))
def test_every_listed_output_format_round_trips(suffix, tmp_path):
    image = _smooth()
    path = save_image(tmp_path / f"out{suffix}", image)
    back = load_image(path)
    assert back.shape == image.shape and back.dtype == np.float32
    error = np.abs(back - image)
    if OUTPUT_SUFFIXES[suffix] in ("JPEG", "WEBP"):  # lossy: close, not equal
        assert error.mean() < 3 / 255 and error.max() < 40 / 255
    else:  # lossless: exactly the 8-bit image written
        assert error.max() <= 0.5 / 255 + 1e-6


def test_xla_runs_and_gives_the_graph_modes_losses(tiny_pair, weights_path):
    content, style = tiny_pair
    plain = nstcore.stylize(content, style, size=48, steps=3, weights=weights_path, precision="float32")
    xla = nstcore.stylize(content, style, size=48, steps=3, weights=weights_path, xla=True,
                          precision="float32")
    np.testing.assert_allclose([r["total"] for r in xla.losses], [r["total"] for r in plain.losses],
                               rtol=1e-3)
