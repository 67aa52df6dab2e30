"""The free margin around the picture (``--margin``): what the solver sees, what the user gets."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import nstcore
from nstcore import hookimpl
from nstcore.margin import canvas_shape, crop, extend, margin_at, resizer
from nstcore.plugins import get_plugin_manager
from nstcore.solver import Solver, Stepper
from nstcore_benchmarks.edges import edge_steps, extra_edge_steps


def test_extend_mirrors_the_picture_and_crop_takes_it_back():
    image = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    canvas = extend(image, 2)
    assert canvas.shape == (8, 9, 3) == (*canvas_shape((4, 5), 2), 3)
    np.testing.assert_array_equal(crop(canvas, 2), image)
    # a mirror held against the border: the edge row repeated, then the rows inside it
    np.testing.assert_array_equal(canvas[1, 2:7], image[0])
    np.testing.assert_array_equal(canvas[0, 2:7], image[1])
    np.testing.assert_array_equal(canvas[2:6, 0], image[:, 1])
    assert extend(image, 0) is image and crop(image, 0) is image


def test_the_margin_is_never_wider_than_the_pictures_short_side():
    assert margin_at((40, 64), 16) == 16
    assert margin_at((10, 64), 16) == 10
    assert margin_at((40, 64), 0) == 0


def test_resizer_keeps_the_picture_in_place_and_mirrors_a_new_margin():
    ramp = np.tile(np.linspace(0, 1, 20, dtype=np.float32)[None, :, None], (10, 1, 3))
    canvas = extend(ramp, 4)
    canvas[:4] = 9.0  # whatever the old margin held must not come along
    resized = resizer(4, (20, 40), 6)(tf.constant(canvas[None]), "bilinear").numpy()[0]
    assert resized.shape == (32, 52, 3)
    picture = crop(resized, 6)
    expected = tf.image.resize(ramp[None], (20, 40), method="bilinear", antialias=True).numpy()[0]
    np.testing.assert_allclose(picture, expected, atol=1e-6)
    np.testing.assert_allclose(resized, extend(picture, 6), atol=1e-6)


class CanvasRecorder(Solver):
    """A sign-gradient solver that records the shape of every image it starts from."""

    starts: list = []
    arrays: list = []

    def start(self, objective, image, state=None):
        CanvasRecorder.starts.append(tuple(image.shape[1:3]))
        CanvasRecorder.arrays.append(np.array(image[0]))
        variable = tf.Variable(image)

        class _Step(Stepper):
            count = 0

            def step(self):
                with tf.GradientTape() as tape:
                    total, terms = objective(variable)
                update = tf.sign(tape.gradient(total, variable)) * 1e-2
                variable.assign(tf.clip_by_value(variable - update, 0.0, 1.0))
                self.count += 1
                return total, terms, self.count

            def image(self):
                return tf.convert_to_tensor(variable)

        return _Step()


class _Plugin:
    @hookimpl
    def register_solvers(self, register):
        register("canvas-recorder", CanvasRecorder)


def test_the_solver_optimises_the_canvas_and_the_user_gets_the_picture(tiny_pair, weights_path):
    get_plugin_manager().register(_Plugin(), "margin-test")
    CanvasRecorder.starts.clear()
    content, style = tiny_pair  # 64 x 64
    seen = []
    result = nstcore.stylize(content, style, size=64, scales="32,64", steps=2, margin=8,
                             optimizer="canvas-recorder", weights=weights_path, precision="float32",
                             on_step=lambda info: seen.append(tuple(info.image.shape[1:3])))
    assert CanvasRecorder.starts == [(48, 48), (80, 80)]  # each scale's picture and 8 px a side
    assert result.image.shape == content.shape
    assert result.image.flags["C_CONTIGUOUS"]
    assert seen == [(32, 32), (32, 32), (64, 64), (64, 64)]  # on_step sees the picture
    assert [s["margin"] for s in result.scales] == [8, 8]


def test_margin_zero_optimises_the_picture_itself(tiny_pair, weights_path):
    get_plugin_manager().register(_Plugin(), "margin-test")
    CanvasRecorder.starts.clear()
    content, style = tiny_pair
    nstcore.stylize(content, style, size=64, scales="1", steps=1, margin=0,
                    optimizer="canvas-recorder", weights=weights_path, precision="float32")
    assert CanvasRecorder.starts == [(64, 64)]


def _first_start(content, style, weights_path, **options):
    if not get_plugin_manager().pm.has_plugin("margin-test"):
        get_plugin_manager().register(_Plugin(), "margin-test")
    CanvasRecorder.arrays.clear()
    nstcore.stylize(content, style, size=64, scales="32,64", steps=1, margin=8,
                    optimizer="canvas-recorder", weights=weights_path, precision="float32",
                    **options)
    return CanvasRecorder.arrays[0]


def test_the_first_scales_start_has_seeded_noise_and_the_tutorial_none(tiny_pair, weights_path):
    """The default start: the photo with its mirrored margin plus noise of --start-noise's
    standard deviation (clipped to [0, 1]), the same for the same --seed; --start-noise 0 and
    --preset tutorial start from the photo itself."""
    from nstcore.pyramid import resize_to
    from nstcore.settings import Settings

    content, style = tiny_pair
    mirrored = extend(resize_to(content, (32, 32)), 8)
    plain = _first_start(content, style, weights_path, start_noise=0)
    np.testing.assert_allclose(plain, mirrored, atol=1e-6)
    default = _first_start(content, style, weights_path)
    assert default.shape == mirrored.shape
    assert default.min() >= 0 and default.max() <= 1
    assert 0.07 < float(np.std(default - mirrored)) < 0.105  # 0.1, less where the clip bites
    np.testing.assert_array_equal(default, _first_start(content, style, weights_path, seed=0))
    other = _first_start(content, style, weights_path, seed=1)
    assert np.abs(other - default).mean() > 0.03
    assert 0.2 < float(np.std(_first_start(content, style, weights_path, start_noise=0.25)
                               - mirrored)) < 0.26
    assert Settings(preset="tutorial").start_noise == 0
    assert Settings(preset="tutorial", start_noise=0.2).start_noise == 0.2  # explicit wins


def test_edge_steps_measure_a_band_along_each_side():
    photo = np.full((40, 48, 3), 0.5, np.float32)
    banded = photo.copy()
    banded[:2] -= 20 / 255  # a dark 2-px band along the top
    banded[:, -2:] += 10 / 255  # a light one on the right
    extra = extra_edge_steps(banded, photo)
    assert extra["top"] == pytest.approx(20, abs=1e-3) and extra["right"] == pytest.approx(10, abs=1e-3)
    assert extra["left"] == pytest.approx(0, abs=1e-3) and extra["bottom"] == pytest.approx(0, abs=1e-3)
    assert edge_steps(photo) == {"top": 0.0, "left": 0.0, "bottom": 0.0, "right": 0.0}


def test_the_rank_tells_a_band_from_texture(tmp_path):
    """``measure`` ranks each side's figure among the interior's: a band on textured picture is
    above every interior line, a side with only texture is not."""
    from PIL import Image

    from nstcore_benchmarks.edges import measure

    rng = np.random.default_rng(3)
    photo = np.full((96, 128, 3), 0.5, np.float32)
    texture = np.clip(photo + rng.normal(0, 0.08, (96, 128, 1)), 0, 1)
    texture[:2] -= 25 / 255  # a dark band along the top
    paths = {}
    for name, array in (("photo", photo), ("out", texture)):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray((np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)).save(paths[name])
    result = measure(str(paths["out"]), str(paths["photo"]))
    assert result["rank"]["top"] == 1.0 and result["extra"]["top"] > 15
    for side in ("left", "bottom", "right"):
        assert result["rank"][side] < 1.0 and abs(result["extra"][side]) < 6


def test_flip_turns_inputs_and_a_band_the_run_paints_follows_the_runs_top(tmp_path):
    """``nstcore_benchmarks.defaults --flip v`` gives nstcore the photo upside down and turns the
    picture back: flipping twice is lossless, and a band painted along the *run's* top is measured
    on the photo's bottom, which is how a band of the pipeline is told from one of the images."""
    from PIL import Image

    from nstcore_benchmarks.defaults import flip_image
    from nstcore_benchmarks.edges import measure

    rng = np.random.default_rng(5)
    photo = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    for flip in ("v", "h", "vh"):
        turned = flip_image(tmp_path / "photo.png", flip, tmp_path / f"turned-{flip}.png")
        back = flip_image(turned, flip, tmp_path / f"back-{flip}.png")
        assert np.array_equal(np.asarray(Image.open(back)), photo)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "turned-v.png")), photo[::-1])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "turned-h.png")), photo[:, ::-1])

    flat = np.full((96, 128, 3), 128, np.uint8)
    Image.fromarray(flat).save(tmp_path / "flat.png")
    run = flat.copy()
    run[:2] -= 30  # what a run given the upside-down photo paints along its own top
    Image.fromarray(run).save(tmp_path / "run.png")
    result = measure(str(flip_image(tmp_path / "run.png", "v", tmp_path / "out.png")),
                     str(tmp_path / "flat.png"))
    assert result["extra"]["bottom"] == pytest.approx(30, abs=0.01)
    assert result["rank"]["bottom"] == 1.0
    assert result["extra"]["top"] == pytest.approx(0, abs=0.01)


def _edge_change(image, content):
    """How much the outer 2 px of the picture changed from the photo, relative to the interior,
    averaged over the four sides (1: like the interior)."""
    change = np.abs(image - content).mean(axis=2)
    inner = change[6:-6, 6:-6].mean()
    return np.mean([change[:2].mean(), change[-2:].mean(), change[:, :2].mean(),
                    change[:, -2:].mean()]) / inner


def test_the_margin_removes_the_band_zero_padding_paints(tiny_pair, weights_path):
    """At 64 px, 60 of the tutorial's Adam steps (float32): without a margin the style term paints against VGG19's
    zero padding and the outer 2 px change about 1.3 times as much as the interior (the band);
    with 16 px of margin they change like the interior (0.87 measured; 8 px gave 0.86)."""
    content, style = tiny_pair
    change = {}
    for margin in (0, 16):
        result = nstcore.stylize(content, style, size=64, steps=60, scales="1", margin=margin,
                                 weights=weights_path, precision="float32", optimizer="adam")
        change[margin] = _edge_change(result.image, content)
    assert change[0] > 1.2, change
    assert 0.7 < change[16] < 1.05, change
