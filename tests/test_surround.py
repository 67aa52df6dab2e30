"""The surround benchmark: the margin taken from the real photo around a crop, and put back."""
from __future__ import annotations

import numpy as np
import pytest

import nstcore.margin
from nstcore.imageio import long_side_shape
from nstcore.pyramid import resize_to
from nstcore_benchmarks.surround import centre_crop, photo_margin, run_pair, surroundings


def _photo() -> np.ndarray:
    rows, cols = np.mgrid[0:90, 0:120]
    return np.stack([rows / 89, cols / 119, (rows + cols) % 7 / 6], axis=2).astype(np.float32)


def test_the_crop_leaves_enough_photo_for_the_margin_at_the_coarsest_scale():
    photo = _photo()
    crop, border = centre_crop(photo, 8, coarsest=48)
    assert border == 15 and crop.shape == (60, 90, 3)  # 8 px at 48 px long side = 15 photo px
    np.testing.assert_array_equal(crop, photo[15:75, 15:105])
    with pytest.raises(ValueError, match="needs .* px of photo around the crop"):
        surroundings(photo, border, crop.shape[:2], (16, 24), 8)  # 8 px at 24 px: 30 photo px


def test_the_margin_is_the_photo_around_the_picture_and_nstcore_margin_is_restored():
    photo = _photo()
    crop, border = centre_crop(photo, 8, coarsest=48)
    shape = long_side_shape(*crop.shape[:2], 90)  # 1:1 with the crop
    picture = resize_to(crop, shape)
    original = nstcore.margin.extend
    with photo_margin(photo, border, crop.shape[:2]):
        canvas = nstcore.margin.extend(picture, 8)
    assert nstcore.margin.extend is original
    # at 1:1 the canvas is the photo itself, 8 px beyond the crop on every side: no mirror
    np.testing.assert_allclose(canvas, photo[7:83, 7:113], atol=1e-6)
    assert not np.allclose(canvas, original(picture, 8), atol=0.05)


def test_run_pair_measures_both_starts(tiny_pair, weights_path, tmp_path):
    from nstcore.imageio import save_image

    content, style = tiny_pair
    save_image(tmp_path / "c.png", content)
    save_image(tmp_path / "s.png", style)
    rows = [run_pair(str(tmp_path / "c.png"), str(tmp_path / "s.png"), 48, start,
                     tmp_path / f"out-{start}.png", steps=2, margin=8, weights=weights_path,
                     precision="float32") for start in ("mirror", "photo")]
    for row, start in zip(rows, ("mirror", "photo")):
        assert row["margin_start"] == start and row["border"] == 8 and row["crop"] == [48, 48]
        assert row["start_noise"] == 0.1  # nstcore's default, recorded
        assert set(row["extra_edge_steps"]) == {"top", "left", "bottom", "right"}
        assert (tmp_path / f"out-{start}.png").exists()
    assert rows[0]["extra_edge_steps"] != rows[1]["extra_edge_steps"]
