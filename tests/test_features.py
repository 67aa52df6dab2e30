"""The peers' features, each checked by its effect: several styles, colour preservation, start
image, pooling, per-layer weights, masks, transparency, 16-bit and colour-profile output."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageCms

import nstcore
from nstcore import cli
from nstcore.color import match_histogram, recombine, to_yiq
from nstcore.engine import Engine
from nstcore.errors import InputError
from nstcore.run import load_inputs
from nstcore.testing import TinyVGG, tiny_images

from conftest import CONTENT, STYLE

# exact comparisons: float32; Adam, whose first step reports the loss at the start image; the
# start image itself (no --start-noise), so runs with and without a feature start alike
RUN = dict(size=48, scales="1", steps=8, precision="float32", optimizer="adam", start_noise=0)


def tiny_run(weights_path, content=CONTENT, style=STYLE, **options):
    return nstcore.stylize(str(content), style if isinstance(style, list) else str(style),
                           weights=weights_path, **{**RUN, **options})


def gram_terms(weights_path, image, style, size=48):
    """The unweighted Gram loss of ``image`` against ``style`` (a path) at ``size``."""
    from nstcore_builtins.gram import GramStyleLoss
    from nstcore_builtins.vgg19 import VGG19Extractor

    _, style_image = load_inputs(str(CONTENT), str(style), size)
    engine = Engine(VGG19Extractor(weights=weights_path), [GramStyleLoss()], _no_solver())
    rows = engine.initial_terms(image, style_image, image)
    return rows[0]["value"]


def _no_solver():
    from nstcore_builtins.adam import Adam

    return Adam()


# -- several styles ------------------------------------------------------------------------------

def test_blend_of_two_styles_moves_the_gram_terms_of_both(weights_path, tmp_path):
    second = tmp_path / "stripes.png"
    y, x = np.mgrid[0:64, 0:64]
    stripes = ((x + y) // 6 % 2).astype(bool)
    Image.fromarray(np.where(stripes[..., None], [220, 30, 40], [20, 40, 200]).astype(np.uint8)).save(second)
    content, _ = load_inputs(str(CONTENT), str(STYLE), 48)
    result = tiny_run(weights_path, style=[str(STYLE), str(second)], style_blend="1,1", steps=25)
    for style in (STYLE, second):
        before, after = gram_terms(weights_path, content, style), gram_terms(weights_path, result.image, style)
        assert after < 0.8 * before, (style, before, after)


def test_blend_weight_one_is_the_single_style_run_and_weights_normalise(weights_path, tmp_path):
    second = tmp_path / "second.png"
    Image.open(CONTENT).convert("RGB").save(second)
    single = tiny_run(weights_path, steps=3)
    blended = tiny_run(weights_path, style=[str(STYLE), str(second)], style_blend="2,0", steps=3)
    np.testing.assert_allclose([r["total"] for r in blended.losses],
                               [r["total"] for r in single.losses], rtol=1e-5)


def test_a_loss_without_prepare_styles_is_blended_by_its_losses():
    """meanstd defines no prepare_styles: the engine blends copies, value = sum w_i L_i."""
    from nstcore_meanstd.loss import MeanStdStyleLoss

    content, style_a, image = tiny_images(32, seed=1)
    _, style_b, _ = tiny_images(32, seed=2)

    def value(styles, blend):
        engine = Engine(TinyVGG(), [MeanStdStyleLoss(layers=("block1_conv1", "block2_conv1"))], _no_solver())
        return engine.initial_terms(content, styles, image, blend)[0]["value"]

    a, b = value(style_a, None), value(style_b, None)
    mixed = value([style_a, style_b], [0.7, 0.3])
    assert mixed == pytest.approx(0.7 * a + 0.3 * b, rel=1e-5)
    assert abs(a - b) > 1e-3 * a  # the two styles do differ


def test_blended_gram_targets_equal_blended_losses_up_to_a_constant():
    """Gram blends targets; its gradient equals that of the blend of the single-style losses."""
    from nstcore_builtins.gram import GramStyleLoss

    content, style_a, image = tiny_images(32, seed=3)
    _, style_b, _ = tiny_images(32, seed=4)
    extractor = TinyVGG()
    layers = ("block1_conv1", "block2_conv1")
    extractor.select(layers)

    def gradient(styles, blend):
        engine = Engine(extractor, [GramStyleLoss(layers=layers, weight=1.0)], _no_solver())
        engine._selected = list(layers)
        engine.prepare(content, styles, blend)
        x = tf.Variable(image[None])
        with tf.GradientTape() as tape:
            total, _ = engine.objective(x)
        return tape.gradient(total, x).numpy()

    blended = gradient([style_a, style_b], [0.25, 0.75])
    by_losses = 0.25 * gradient(style_a, None) + 0.75 * gradient(style_b, None)
    np.testing.assert_allclose(blended, by_losses, rtol=1e-4, atol=1e-6 * np.abs(by_losses).max())


def test_bad_blends_are_one_line_errors(image_files, capsys):
    content, style = image_files
    for blend, message in (("1", "1 weight(s) for 2 style image(s)"), ("1,x", "numbers separated"),
                           ("0,0", "not all 0"), ("-1,2", ">= 0")):
        code = cli.main(["run", str(content), str(style), str(style), f"--style-blend={blend}",
                         "-o", str(content.with_name("o.png"))])
        err = capsys.readouterr().err
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
        assert not content.with_name("o.png").exists()


# -- colour --------------------------------------------------------------------------------------

def test_luminance_preservation_keeps_the_contents_chroma(weights_path, tmp_path):
    out = tmp_path / "lum.png"
    code = cli.main(["run", str(CONTENT), str(STYLE), "--size", "48", "--scales", "1", "--steps",
                     "10", "--preserve-color", "luminance", "--weights", weights_path, "-o", str(out), "-q"])
    assert code == 0
    content, _ = load_inputs(str(CONTENT), str(STYLE), 48)
    written = np.asarray(Image.open(out).convert("RGB"), dtype=np.float64) / 255.0
    chroma_out, chroma_content = to_yiq(written)[..., 1:], to_yiq(content)[..., 1:]
    assert np.abs(chroma_out - chroma_content).max() <= 1 / 255
    luma_change = np.abs(to_yiq(written)[..., 0] - to_yiq(content)[..., 0]).mean()
    assert luma_change > 0.02  # the style did change the picture, in luminance


def test_recombine_keeps_chroma_even_where_luminance_would_leave_the_gamut():
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    output = np.clip(content + rng.normal(0, 0.5, content.shape), 0, 1).astype(np.float32)
    combined = recombine(output, content)
    assert combined.min() >= 0 and combined.max() <= 1
    np.testing.assert_allclose(to_yiq(combined)[..., 1:], to_yiq(content)[..., 1:], atol=1e-5)


def test_histogram_matching_gives_the_style_the_contents_colour_statistics():
    rng = np.random.default_rng(1)
    content = (0.5 + 0.1 * rng.normal(size=(40, 40, 3)) @ np.array(
        [[1, 0.3, 0], [0, 1, 0.2], [0, 0, 1]])).clip(0.2, 0.8).astype(np.float32)
    style = (np.array([0.3, 0.4, 0.6]) + 0.05 * rng.normal(size=(30, 50, 3))).clip(0, 1).astype(np.float32)
    matched = match_histogram(style, content)
    flat_m, flat_c = matched.reshape(-1, 3), content.reshape(-1, 3)
    np.testing.assert_allclose(flat_m.mean(0), flat_c.mean(0), atol=2e-3)
    np.testing.assert_allclose(np.cov(flat_m, rowvar=False), np.cov(flat_c, rowvar=False), atol=2e-4)
    assert np.abs(style.mean((0, 1)) - content.mean((0, 1))).max() > 0.1  # it did have to move


def test_histogram_preservation_runs_on_the_recoloured_style(weights_path):
    """The style is recoloured towards the photo's colours; the photo (the content target) is not.

    From the same noise start the content term is the same non-zero number in both runs, and the
    style term from the photo is smaller with the recoloured style."""
    plain = tiny_run(weights_path, steps=1, init="noise", seed=3)
    matched = tiny_run(weights_path, steps=1, init="noise", seed=3, preserve_color="histogram")
    assert plain.losses[0]["content"] > 0
    assert matched.losses[0]["content"] == pytest.approx(plain.losses[0]["content"], rel=1e-5)
    assert matched.losses[0]["gram"] != pytest.approx(plain.losses[0]["gram"], rel=1e-3)
    from_photo = tiny_run(weights_path, steps=1)
    matched_photo = tiny_run(weights_path, steps=1, preserve_color="histogram")
    assert matched_photo.losses[0]["gram"] < from_photo.losses[0]["gram"]


# -- start image, pooling, layer weights ---------------------------------------------------------

def test_init_style_and_init_file_start_from_that_picture(weights_path, tmp_path):
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    content, style = load_inputs(str(CONTENT), str(STYLE), 48)
    prepared = prepare_run(Settings(init="style", weights=weights_path, **RUN), str(CONTENT), str(STYLE))
    assert prepared.init.shape == content.shape
    stretched = tf.image.resize(style, content.shape[:2], method="bicubic", antialias=True).numpy()
    np.testing.assert_allclose(prepared.init, np.clip(stretched, 0, 1), atol=1e-6)
    picture = tmp_path / "start.png"
    Image.fromarray(np.full((30, 20, 3), (200, 40, 90), np.uint8)).save(picture)
    prepared = prepare_run(Settings(init=str(picture), weights=weights_path, **RUN), str(CONTENT), str(STYLE))
    np.testing.assert_allclose(prepared.init, np.broadcast_to(np.array([200, 40, 90]) / 255, content.shape),
                               atol=1e-5)
    with pytest.raises(InputError, match="no such file"):
        prepare_run(Settings(init=str(tmp_path / "missing.png"), **RUN), str(CONTENT), str(STYLE))


def test_avg_pooling_changes_the_features_after_the_first_pool(weights_path, tiny_pair):
    from nstcore_builtins.vgg19 import VGG19Extractor

    content, _ = tiny_pair
    layers = ("block1_conv2", "block2_conv1", "block4_conv1")
    features = {}
    for pooling in ("max", "avg"):
        extractor = VGG19Extractor(weights=weights_path, pooling=pooling)
        extractor.select(layers)
        features[pooling] = {k: v.numpy() for k, v in extractor(content[None]).items()}
    np.testing.assert_array_equal(features["max"]["block1_conv2"], features["avg"]["block1_conv2"])
    for layer in layers[1:]:
        difference = np.abs(features["max"][layer] - features["avg"][layer]).mean()
        assert difference > 0.1 * np.abs(features["max"][layer]).mean(), layer


def test_reflect_padding_changes_only_the_border_and_mirrors_the_input(weights_path, tiny_pair):
    """``--padding reflect``: block1_conv1 is the convolution of the mirrored input (NumPy's
    reflect), and differs from zero padding only in its outer ring of positions."""
    import tensorflow as tf
    from nstcore_builtins.vgg19 import VGG19Extractor

    content, _ = tiny_pair
    out = {}
    for padding in ("zero", "reflect"):
        extractor = VGG19Extractor(weights=weights_path, padding=padding, precision="float32")
        extractor.select(["block1_conv1"])
        out[padding] = extractor(content[None])["block1_conv1"].numpy()[0]
    name, kernel, bias = extractor._params[0]
    mirrored = np.pad(extractor.preprocess(content[None]).numpy(), [(0, 0), (1, 1), (1, 1), (0, 0)],
                      mode="reflect")
    by_hand = tf.nn.relu(tf.nn.conv2d(mirrored, kernel, 1, "VALID") + bias).numpy()[0]
    np.testing.assert_allclose(out["reflect"], by_hand, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(out["zero"][1:-1, 1:-1], out["reflect"][1:-1, 1:-1])
    assert np.abs(out["zero"][0] - out["reflect"][0]).mean() > 1.0  # the border does differ
    with pytest.raises(InputError, match="unknown padding 'mirror'"):
        VGG19Extractor(weights=weights_path, padding="mirror")


def test_layer_weights_weight_each_layers_term():
    from nstcore_builtins.gram import GramStyleLoss

    content, style, image = tiny_images(32, seed=5)
    layers = ("block1_conv1", "block2_conv1")

    def value(**kw):
        engine = Engine(TinyVGG(), [GramStyleLoss(weight=1.0, **kw)], _no_solver())
        return engine.initial_terms(content, style, image)[0]["value"]

    first, second = value(layers=layers[:1]), value(layers=layers[1:])
    assert value(layers=layers) == pytest.approx((first + second) / 2, rel=1e-5)
    assert value(layers=layers, layer_weights={layers[0]: 3, layers[1]: 1}) == pytest.approx(
        0.75 * first + 0.25 * second, rel=1e-5)
    assert value(layers=layers, layer_weights={layers[0]: 1, layers[1]: 0}) == pytest.approx(first, rel=1e-5)


def test_layer_weights_from_the_command_line(weights_path, image_files, tmp_path):
    import json

    content, style = image_files
    reports = {}
    for name, layers in (("plain", "block1_conv1,block2_conv1"), ("weighted", "block1_conv1:1,block2_conv1:0")):
        report = tmp_path / f"{name}.json"
        assert cli.main(["run", str(content), str(style), "--size", "32", "--scales", "1", "--steps", "1",
                         "--style-layers", layers, "--weights", weights_path, "--report", str(report),
                         "-o", str(tmp_path / f"{name}.png"), "-q"]) == 0
        reports[name] = json.loads(report.read_text())["losses"][0]["gram"]
    only_first = tmp_path / "first.json"
    assert cli.main(["run", str(content), str(style), "--size", "32", "--scales", "1", "--steps", "1",
                     "--style-layers", "block1_conv1", "--weights", weights_path, "--report",
                     str(only_first), "-o", str(tmp_path / "first.png"), "-q"]) == 0
    first = json.loads(only_first.read_text())["losses"][0]["gram"]
    assert reports["weighted"] == pytest.approx(first, rel=1e-5)
    assert reports["plain"] != pytest.approx(first, rel=1e-2)


# -- mask ----------------------------------------------------------------------------------------

@pytest.fixture
def half_mask(tmp_path):
    """A mask that is 0 (keep) on the left half and 255 (style) on the right, at 48 px."""
    content, _ = load_inputs(str(CONTENT), str(STYLE), 48)
    height, width = content.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    mask[:, width // 2:] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(mask).save(path)
    return path, content, width // 2


def test_a_zero_mask_region_stays_within_2_of_255_of_a_content_only_run(weights_path, half_mask):
    path, content, half = half_mask
    masked = tiny_run(weights_path, style_mask=str(path), steps=30, tv_weight=0.0)
    content_only = tiny_run(weights_path, style_weight=0.0, steps=30, tv_weight=0.0)
    styled = tiny_run(weights_path, steps=30, tv_weight=0.0)
    assert np.abs(masked.image[:, :half] - content_only.image[:, :half]).max() <= 2 / 255
    change = np.abs(masked.image[:, half:] - content_only.image[:, half:]).mean()
    assert change > 0.5 * np.abs(styled.image[:, half:] - content_only.image[:, half:]).mean()


def test_a_zero_mask_region_keeps_the_content_exactly_with_tv_and_lbfgs(weights_path, half_mask):
    """With the default TV a content-only run blurs the picture; a masked region does not move."""
    path, content, half = half_mask
    masked = tiny_run(weights_path, style_mask=str(path), steps=5, optimizer="lbfgs")
    np.testing.assert_allclose(masked.image[:, :half], content[:, :half], atol=1e-6)
    assert np.abs(masked.image[:, half:] - content[:, half:]).mean() > 0.02
    assert masked.losses[-1]["total"] < 0.8 * masked.losses[0]["total"]  # L-BFGS makes progress


def test_a_grey_mask_moves_pixels_part_of_the_way(weights_path, half_mask, tmp_path):
    _, content, _ = half_mask
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full(content.shape[:2], 128, np.uint8)).save(grey)
    full = tiny_run(weights_path, steps=10)
    partial = tiny_run(weights_path, steps=10, style_mask=str(grey))
    ratio = np.abs(partial.image - content).mean() / np.abs(full.image - content).mean()
    assert 0.2 < ratio < 0.8, ratio


def test_a_mask_of_another_shape_is_refused(weights_path, tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.zeros((10, 40), np.uint8)).save(path)
    with pytest.raises(InputError, match="aspect ratio"):
        tiny_run(weights_path, style_mask=str(path))


# -- transparency, 16 bits, colour profiles ------------------------------------------------------

@pytest.fixture
def rgba_content(tmp_path):
    rgb = np.asarray(Image.open(CONTENT).convert("RGB").resize((48, 48)))
    alpha = (np.arange(48 * 48).reshape(48, 48) * 7 % 256).astype(np.uint8)
    path = tmp_path / "rgba.png"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path, icc_profile=profile)
    return path, alpha, profile


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_alpha_round_trips_exactly(weights_path, rgba_content, tmp_path, suffix):
    path, alpha, _ = rgba_content
    out = tmp_path / f"out{suffix}"
    assert cli.main(["run", str(path), str(STYLE), "--size", "48", "--scales", "1", "--steps", "2",
                     "--weights", weights_path, "-o", str(out), "-q"]) == 0
    written = np.asarray(Image.open(out))
    assert written.shape == (48, 48, 4)
    np.testing.assert_array_equal(written[..., 3], alpha)


def test_jpeg_output_of_a_transparent_content_is_composited_over_white(weights_path, tmp_path):
    path = tmp_path / "clear.png"
    Image.fromarray(np.zeros((48, 48, 4), np.uint8), "RGBA").save(path)
    out = tmp_path / "out.jpg"
    assert cli.main(["run", str(path), str(STYLE), "--size", "48", "--scales", "1", "--steps", "2",
                     "--weights", weights_path, "-o", str(out), "-q"]) == 0
    assert np.asarray(Image.open(out)).min() >= 250  # fully transparent: paper white


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_output_keeps_alpha_profile_and_the_8_bit_picture(weights_path, rgba_content, tmp_path, suffix):
    import png
    import tifffile

    path, alpha, profile = rgba_content
    common = ["run", str(path), str(STYLE), "--size", "48", "--scales", "1", "--steps", "2",
              "--weights", weights_path, "--seed", "0", "-q"]
    assert cli.main(common + ["-o", str(tmp_path / "eight.png")]) == 0
    deep = tmp_path / f"deep{suffix}"
    assert cli.main(common + ["--bit-depth", "16", "-o", str(deep)]) == 0
    if suffix == ".tif":
        pixels = tifffile.imread(deep)
    else:
        width, height, rows, info = png.Reader(filename=str(deep)).asDirect()
        assert info["bitdepth"] == 16
        pixels = np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, 4)
    assert pixels.dtype == np.uint16 and pixels.shape == (48, 48, 4)
    eight = np.asarray(Image.open(tmp_path / "eight.png"), dtype=np.float64)
    assert np.abs(pixels[..., :3] / 65535.0 - eight[..., :3] / 255.0).max() <= 0.6 / 255
    np.testing.assert_array_equal(np.rint(pixels[..., 3] / 257.0), alpha)
    assert Image.open(deep).info.get("icc_profile") == profile


def test_icc_profile_is_carried_to_the_output(weights_path, rgba_content, tmp_path):
    path, _, profile = rgba_content
    out = tmp_path / "out.webp"
    assert cli.main(["run", str(path), str(STYLE), "--size", "48", "--scales", "1", "--steps", "1",
                     "--weights", weights_path, "-o", str(out), "-q"]) == 0
    assert Image.open(out).info.get("icc_profile") == profile


def test_16_bit_jpeg_is_refused_before_any_work(image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.jpg"
    assert cli.main(["run", str(content), str(style), "--bit-depth", "16", "-o", str(out)]) != 0
    assert "--bit-depth 16 needs a .png or .tif" in capsys.readouterr().err
    assert not out.exists()


# -- loss plot -----------------------------------------------------------------------------------

def test_run_plot_and_plot_command_draw_the_losses(weights_path, image_files, tmp_path, capsys):
    content, style = image_files
    report, drawn, again = tmp_path / "run.json", tmp_path / "losses.png", tmp_path / "again.svg"
    assert cli.main(["run", str(content), str(style), "--size", "48", "--scales", "32,48", "--steps", "3",
                     "--weights", weights_path, "--report", str(report), "--plot", str(drawn),
                     "-o", str(tmp_path / "out.png"), "-q"]) == 0
    picture = Image.open(drawn)
    assert picture.size == (700, 400)
    pixels = np.asarray(picture.convert("RGB"))
    assert (pixels < 100).all(axis=2).mean() > 0.005  # the black total line and the text are drawn
    assert cli.main(["plot", str(report), "-o", str(again)]) == 0
    text = again.read_text()
    assert "<svg" in text and "total" in text and "gram" in text and "48 px" in text


def test_plot_refuses_what_is_not_a_report_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"settings": {}}')
    for args, message in (([str(bad)], "has no per-step losses"), ([str(tmp_path / "none.json")], "no such file"),
                          ([str(bad), "-o", str(tmp_path / "x.gif")], "unsupported plot format")):
        assert cli.main(["plot", *args]) != 0
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path, capsys, image_files):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    content, style = image_files
    out = tmp_path / "out.png"
    assert cli.main(["run", str(content), str(style), "--plot", str(tmp_path / "p.png"), "-o", str(out)]) != 0
    assert 'pip install "nstcore[plot]"' in capsys.readouterr().err
    assert not out.exists()


# -- together with tiling --------------------------------------------------------------------------

def test_two_styles_and_a_mask_tile_exactly(weights_path, image_files, tmp_path, monkeypatch):
    """Blended targets (gram), blended copies (meanstd) and the mask give the untiled losses."""
    import json

    pytest.importorskip("nstcore_meanstd")
    monkeypatch.setenv("NSTCORE_PLUGINS", "nstcore_meanstd")
    content, style = image_files
    second = tmp_path / "second.png"
    Image.open(CONTENT).convert("RGB").resize((48, 64)).rotate(90, expand=True).save(second)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))).save(mask)
    losses = {}
    for tile in ("off", "32"):
        report = tmp_path / f"{tile}.json"
        assert cli.main(["run", str(content), str(style), str(second), "--style-blend", "0.6,0.4",
                         "--losses", "content,gram,meanstd,tv", "--style-mask", str(mask), "--tile", tile,
                         "--size", "64", "--scales", "1", "--steps", "2", "--weights", weights_path,
                         "--precision", "float32",  # exact up to float32 rounding
                         "--report", str(report), "-o", str(tmp_path / f"{tile}.png"), "-q"]) == 0
        data = json.loads(report.read_text())
        assert data["scales"][0]["tile"] == (None if tile == "off" else 32)
        losses[tile] = data["losses"]
    for whole, tiled in zip(losses["off"], losses["32"]):
        for name in ("total", "gram", "meanstd", "content"):
            assert tiled[name] == pytest.approx(whole[name], rel=1e-4, abs=1e-3), name
