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
    plain = nstcore.stylize(content, style, size=48, steps=3, weights=weights_path)
    xla = nstcore.stylize(content, style, size=48, steps=3, weights=weights_path, xla=True)
    np.testing.assert_allclose([r["total"] for r in xla.losses], [r["total"] for r in plain.losses],
                               rtol=1e-3)


def _edge_ratios(image, content):
    """How much each edge row/column changed, relative to the interior (top, bottom, left, right)."""
    change = np.abs(image - content).mean(axis=2)
    inner = change[6:-6, 6:-6].mean()
    return [change[0].mean() / inner, change[-1].mean() / inner,
            change[:, 0].mean() / inner, change[:, -1].mean() / inner]


def test_edge_pad_stops_the_light_band_along_the_edges(tiny_pair, weights_path):
    """README "Clean edges": with zero padding the style loss changes the edge pixels more than
    the interior; a 16-px mirrored margin brings the edges back in line."""
    content, style = tiny_pair
    ratios = {}
    for pad in (0, 16):
        result = nstcore.stylize(content, style, size=64, steps=60, scales="1", seed=0,
                                 weights=weights_path, edge_pad=pad)
        ratios[pad] = float(np.mean(_edge_ratios(result.image, content)))
    assert ratios[0] > 1.2  # the band: edges change clearly more than the interior
    assert ratios[16] < 1.1 and ratios[16] < 0.85 * ratios[0]
