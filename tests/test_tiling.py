"""Exact tiled evaluation: the tile plan, tiled == untiled, the tiling policy and its refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import plugin_for_tests
from nstcore import cli
from nstcore.objective import Objective
from nstcore.loss import Loss
from nstcore.plugins import get_plugin_manager
from nstcore.resources import GIB, IMAGE_BYTES_PER_PIXEL, estimate_bytes
from nstcore.testing import ContractError, TinyVGG, check_tiled
from nstcore.tiling import (AUTO_TILE_BUDGET_GIB, TiledFeatures, TiledObjective, TilePolicy,
                            conv_pool_geometry, group_tiles, plan_tiles)
from nstcore_builtins.content import ContentLoss
from nstcore_builtins.gram import GramStyleLoss
from nstcore_builtins.tv import TotalVariationLoss
from nstcore_builtins.vgg19 import VGG19Extractor
from nstcore_meanstd.loss import MeanStdStyleLoss
from nstcore_wasserstein.loss import GaussianW2StyleLoss


def test_vgg19_halo_covers_the_receptive_field_on_the_pooling_grid():
    deep = VGG19Extractor.tile_geometry(["block1_conv1", "block5_conv2"])
    assert (deep.align, deep.halo) == (16, 96)  # 6 spoiled block5 positions x stride 16
    assert deep.strides == {"block1_conv1": 1, "block5_conv2": 16}
    shallow = VGG19Extractor.tile_geometry(["block2_conv1"])
    assert (shallow.align, shallow.halo) == (2, 4)  # 2 convs, pool (1 left), 1 conv: 2 x 2 px
    assert TinyVGG.tile_geometry(["block1_conv1", "block5_conv2"]) == deep


@pytest.mark.parametrize("height,width,tile", [(150, 131, 32), (97, 203, 48), (64, 64, 64), (300, 17, 16)])
def test_tiles_partition_the_image_on_the_grid(height, width, tile):
    geometry = conv_pool_geometry([("conv", ("a", 3)), ("pool", 2), ("conv", ("b", 3))], ["b"])
    tiles = plan_tiles(height, width, tile, geometry)
    covered = np.zeros((height, width), int)
    for t in tiles:
        top, bottom, left, right = t.core
        covered[top:bottom, left:right] += 1
        wtop, wbottom, wleft, wright = t.window
        assert wtop % geometry.align == 0 and wleft % geometry.align == 0
        assert 0 <= wtop <= top and bottom <= wbottom <= height
        assert top - wtop in (0, geometry.halo) or wtop == 0
        if not t.last_row:
            assert bottom % geometry.align == 0 and wbottom - bottom in (geometry.halo, height - bottom)
    assert (covered == 1).all()


def _losses():
    return [ContentLoss(), GramStyleLoss(weight=1e3), TotalVariationLoss(weight=1e-3),
            MeanStdStyleLoss(weight=1e2), GaussianW2StyleLoss(weight=1.0)]


@pytest.mark.parametrize("height,width,tile", [(150, 131, 32), (97, 203, 48), (211, 160, 64)])
def test_tiled_value_and_gradient_equal_untiled(height, width, tile):
    """Every built-in and example loss; windows smaller than the image, odd sizes, partial tiles."""
    extractor = TinyVGG(width=6)
    losses = _losses()
    layers = [n for n in extractor.layers if any(n in loss.layers for loss in losses)]
    extractor.select(layers)
    geometry = extractor.tile_geometry(layers)
    assert len(plan_tiles(height, width, tile, geometry)) >= 4
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 1, (1, height, width, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (1, 70, 90, 3)).astype(np.float32)
    image = tf.constant(np.clip(content + rng.normal(0, 0.1, content.shape), 0, 1).astype(np.float32))

    def evaluate(objective):
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, terms = objective(image)
        return {k: float(v) for k, v in terms.items()}, tape.gradient(total, image).numpy()

    for loss in losses:
        loss.prepare(extractor(content), extractor(style))
    objective = Objective(extractor, losses)
    whole_terms, whole_gradient = evaluate(objective)
    for loss in losses:  # targets from tiled features too
        loss.prepare(*(TiledFeatures(extractor, tf.constant(a), layers, tile, geometry) for a in (content, style)))
    tiled_terms, tiled_gradient = evaluate(TiledObjective(objective, tile, geometry))
    for name, value in whole_terms.items():
        assert tiled_terms[name] == pytest.approx(value, rel=1e-4), name
    scale = np.abs(whole_gradient).max()
    assert np.abs(tiled_gradient - whole_gradient).max() / scale < 1e-4
    for loss in losses:  # each loss's own gradient, not only the sum dominated by one term
        single = Objective(extractor, [loss])
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _ = TiledObjective(single, tile, geometry)(image)
        tiled = tape.gradient(total, image).numpy()
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _ = single(image)
        whole = tape.gradient(total, image).numpy()
        assert np.abs(tiled - whole).max() / np.abs(whole).max() < 1e-4, loss.name


def test_tiled_objective_works_inside_tf_function():
    extractor = TinyVGG(width=4)
    loss = GramStyleLoss()
    extractor.select(list(loss.layers))
    geometry = extractor.tile_geometry(loss.layers)
    rng = np.random.default_rng(2)
    style = rng.uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    loss.prepare({}, extractor(style))
    image = tf.Variable(rng.uniform(0, 1, (1, 133, 120, 3)).astype(np.float32))
    objective = Objective(extractor, [loss])
    tiled = TiledObjective(objective, 32, geometry)

    @tf.function
    def gradient(obj):
        with tf.GradientTape() as tape:
            total, _ = obj(image)
        return total, tape.gradient(total, image)

    (a, ga), (b, gb) = gradient(objective), gradient(tiled)
    assert float(b) == pytest.approx(float(a), rel=1e-4)
    assert np.abs(ga.numpy() - gb.numpy()).max() / np.abs(ga.numpy()).max() < 1e-4


def _graph_ops(function, *args) -> int:
    """Ops in a traced function's graph, with the bodies of its loops and nested functions."""
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def test_tiled_step_graph_does_not_grow_with_the_tile_count():
    """Tiles of one shape share one traced loop body: a 4x4 and an 8x8 grid of tiles give the same
    graph (unrolled, each tile added a forward and a backward pass, and TensorFlow kept memory
    for every op). Groups: interior, edge and corner tiles, nine for a grid whose cores are at
    least the halo (96 px here)."""
    extractor = TinyVGG(width=4)
    losses = [ContentLoss(), GramStyleLoss(), TotalVariationLoss()]
    layers = [n for n in extractor.layers if any(n in loss.layers for loss in losses)]
    extractor.select(layers)
    geometry = extractor.tile_geometry(layers)
    rng = np.random.default_rng(3)
    content = rng.uniform(0, 1, (1, 768, 768, 3)).astype(np.float32)
    for loss in losses:
        loss.prepare(extractor(content), extractor(content[:, :64, :64]))
    image = tf.Variable(content)
    sizes = {}
    for tile in (192, 96):
        tiles = plan_tiles(768, 768, tile, geometry)
        assert len(group_tiles(tiles)) == 9
        tiled = TiledObjective(Objective(extractor, losses), tile, geometry)

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                total, _ = tiled(image)
            return total, tape.gradient(total, image)

        sizes[len(tiles)] = _graph_ops(step)
    assert sizes[16] == sizes[64], sizes


class MeanNotSum(Loss):
    """Statistics that are means, not sums: tiles then do not add up to the whole image."""

    role = "style"
    default_layers = ("block1_conv1",)

    def prepare(self, content, style):
        pass

    def __call__(self, features, image):
        return tf.reduce_mean(features["block1_conv1"])

    def statistics(self, features, region):
        return tf.reduce_mean(features["block1_conv1"])

    def from_statistics(self, statistics):
        return statistics


class HalfTileable(MeanNotSum):
    from_statistics = Loss.from_statistics


def test_kit_catches_statistics_that_are_not_sums():
    with pytest.raises(ContractError, match="tiled value .* differs from untiled"):
        check_tiled(MeanNotSum)
    with pytest.raises(ContractError, match="defines statistics\\(\\) but not the other"):
        check_tiled(HalfTileable)


def test_policy_tiles_only_when_the_estimate_exceeds_the_limit():
    geometry = VGG19Extractor.tile_geometry(["block5_conv2"])
    fpp = VGG19Extractor.floats_per_pixel(["block1_conv1", "block5_conv2"])
    roomy = TilePolicy("auto", geometry, fpp, 24 * GIB)
    assert roomy.tile_for(768, 1024) is None
    tile = roomy.tile_for(4096, 3072)
    budget = AUTO_TILE_BUDGET_GIB * GIB + IMAGE_BYTES_PER_PIXEL * 4096 * 3072  # working set + images
    assert tile is not None and tile % 16 == 0 and roomy.estimate(4096, 3072, tile) <= budget
    assert roomy.estimate(4096, 3072, tile + 16) > budget  # the largest that fits the budget
    assert roomy.estimate(4096, 4096, roomy.tile_for(4096, 4096)) < 6e9
    tight = TilePolicy("auto", geometry, fpp, 2 * GIB)
    assert tight.tile_for(1024, 1024) < tile
    assert TilePolicy(250, geometry, fpp, None).tile_for(1024, 1024) == 240  # onto the 16-px grid
    assert TilePolicy(2048, geometry, fpp, None).tile_for(1024, 1024) is None  # one tile: untiled
    assert TilePolicy("off", geometry, fpp, 1.0).tile_for(4096, 4096) is None


def test_a_pyramid_whose_final_scale_is_tiled_never_peaks_above_it():
    from nstcore.run import plan_tiling
    from nstcore.settings import Settings

    layers = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1",
              "block5_conv2"]
    plain = TilePolicy("auto", VGG19Extractor.tile_geometry(layers),
                       VGG19Extractor.floats_per_pixel(layers), 24 * GIB)
    assert plain.tile_for(1448, 1448) is None and plain.tile_for(1024, 1024) is None
    policy = plan_tiling(Settings(size=4096, memory_limit=24), VGG19Extractor, [], {}, layers,
                         [(4096, 4096), (4096, 4096)])
    final_tile = policy.tile_for(4096, 4096)
    assert final_tile == plain.tile_for(4096, 4096)  # the final scale itself is unchanged
    final = policy.estimate(4096, 4096, final_tile)
    assert final < 6e9
    for size in (128, 181, 256, 362, 512, 724, 1024, 1448, 2048, 2896):
        tile = policy.tile_for(size, size)
        need = estimate_bytes(size * size, policy.floats_per_pixel) if tile is None \
            else policy.estimate(size, size, tile)
        assert need <= final, size
    assert policy.tile_for(724, 724) is None  # small scales stay whole (untiled is faster)
    assert policy.tile_for(1024, 1024) is not None and policy.tile_for(1448, 1448) is not None
    # a run whose final scale fits whole keeps every scale whole
    small = plan_tiling(Settings(size=1024, memory_limit=24), VGG19Extractor, [], {}, layers,
                        [(1024, 1024), (1024, 1024)])
    assert small.tile_for(1024, 1024) is None


def _run(image_files, tmp_path, *extra):
    content, style = image_files
    out = tmp_path / "out.png"
    code = cli.main(["run", str(content), str(style), "-o", str(out), "--report", str(tmp_path / "r.json"),
                     "--size", "64", "--scales", "1", "--steps", "2", "--seed", "0",
                     "--precision", "float32", *extra])  # tiled == untiled up to float32 rounding
    return code, out


@pytest.mark.parametrize("options", [("--margin", "0"), ("--margin", "16"),
                                     ("--margin", "0", "--padding", "reflect")])
def test_tiled_run_gives_the_untiled_losses(image_files, tmp_path, weights_path, options):
    """Tiles stay exact with a margin and with reflect padding (a tile's window is padded only
    where the image ends, or inside the halo)."""
    code, _ = _run(image_files, tmp_path, "--tile", "off", *options)
    assert code == 0
    whole = json.loads((tmp_path / "r.json").read_text())
    code, out = _run(image_files, tmp_path, "--tile", "32", *options)
    assert code == 0 and out.exists()
    tiled = json.loads((tmp_path / "r.json").read_text())
    assert [s["tile"] for s in tiled["scales"]] == [32] and whole["scales"][0]["tile"] is None
    for a, b in zip(whole["losses"], tiled["losses"]):
        assert b["total"] == pytest.approx(a["total"], rel=1e-4)


def test_only_a_run_that_tiles_switches_malloc_to_freeing(image_files, tmp_path, weights_path,
                                                          monkeypatch):
    """The engine asks for glibc's give-back settings only in a run that tiles, where memory is
    the limit (what the settings do, and that they stay: tests/test_malloc.py)."""
    import nstcore.malloc

    calls = []
    monkeypatch.setattr(nstcore.malloc, "free_to_system", lambda: calls.append(1) or True)
    assert _run(image_files, tmp_path, "--tile", "off")[0] == 0
    assert calls == []
    assert _run(image_files, tmp_path, "--tile", "32")[0] == 0
    assert calls == [1]


def test_run_that_needs_tiling_names_the_loss_that_cannot(image_files, tmp_path, capsys, weights_path):
    get_plugin_manager().register(plugin_for_tests, "meancolour-plugin", distribution="tests", version="1.0")
    code, out = _run(image_files, tmp_path, "--tile", "32", "--losses", "content,meancolour,tv")
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "loss 'meancolour' from plugin 'meancolour-plugin'" in err[0] and "statistics()" in err[0]


@pytest.mark.parametrize("value", ["12", "big", "-5", "1.5"])
def test_bad_tile_values_are_one_line(image_files, tmp_path, capsys, value):
    code, out = _run(image_files, tmp_path, "--tile", value)
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.strip().splitlines() == [
        f"nstcore: error: --tile must be auto, off or a whole number of pixels >= 16, got '{value}'"]
