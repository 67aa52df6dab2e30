"""Coarse-to-fine runs: the sizes, per-scale targets, the upsampled start, solver state carried."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

import nstcore
from nstcore.testing import QuadraticObjective
from nstcore import cli, hookimpl
from nstcore.errors import InputError
from nstcore.loss import Loss
from nstcore.plugins import get_plugin_manager
from nstcore.pyramid import pyramid_sizes
from nstcore.solver import Solver, Stepper


def test_auto_sizes_grow_by_sqrt2_from_128_to_half_the_size_then_double():
    assert pyramid_sizes(512, "auto") == [128, 181, 256, 512]
    assert pyramid_sizes(300, "auto") == [150, 300]
    assert pyramid_sizes(256, "auto") == [128, 256]
    assert pyramid_sizes(4096, "auto") == [128, 181, 256, 362, 512, 724, 1024, 1448, 2048, 4096]
    assert pyramid_sizes(64, "auto") == [64]  # small runs are one scale
    assert pyramid_sizes(512, "1") == [512]
    assert pyramid_sizes(512, "128,256,512") == [128, 256, 512]


@pytest.mark.parametrize("scales,message", [
    ("256,128,512", "must be increasing sizes"),
    ("128,256", "must end at --size (512)"),
    ("8,512", "below the 16 px"),
    ("big", "must be auto, 1 or a list"),
])
def test_bad_scales_are_refused(scales, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pyramid_sizes(512, scales)


def test_bad_scales_from_the_command_line_are_one_line(image_files, tmp_path, capsys):
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "64",
                     "--scales", "32,48"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "nstcore: error: --scales list must end at --size (64), got '32,48'"]
    assert not (tmp_path / "o.png").exists()


class ShapeRecorder(Loss):
    """Records the feature shapes each scale's targets are computed from."""

    role = "style"
    default_weight = 1.0
    default_layers = ("block1_conv1",)
    seen: list = []

    def prepare(self, content, style):
        ShapeRecorder.seen.append((tuple(content["block1_conv1"].shape[1:3]),
                                   tuple(style["block1_conv1"].shape[1:3])))

    def __call__(self, features, image):
        return tf.reduce_mean(features["block1_conv1"]) * 0.0 + tf.reduce_mean(image) * 1e-3


class StartRecorder(Solver):
    """A plain gradient step whose start() takes no state: restarts at every scale."""

    starts: list = []

    def start(self, objective, image):
        StartRecorder.starts.append(np.asarray(image)[0].copy())
        variable = tf.Variable(image)

        class _Step(Stepper):
            count = 0

            def step(self):
                with tf.GradientTape() as tape:
                    total, terms = objective(variable)
                variable.assign(tf.clip_by_value(variable - 1e-3 * tf.sign(tape.gradient(total, variable)), 0, 1))
                self.count += 1
                return total, terms, self.count

            def image(self):
                return tf.convert_to_tensor(variable)

        return _Step()


class _Plugin:
    @hookimpl
    def register_losses(self, register):
        register("shapes", ShapeRecorder)

    @hookimpl
    def register_solvers(self, register):
        register("recorder", StartRecorder)


def test_each_scale_recomputes_targets_and_starts_from_the_upsampled_result(tiny_pair, weights_path):
    get_plugin_manager().register(_Plugin(), "pyramid-test")
    ShapeRecorder.seen.clear()
    StartRecorder.starts.clear()
    content, style = tiny_pair  # 64x64 and 64x51
    sizes_seen = []
    result = nstcore.stylize(content, style, size=64, scales="32,48,64", style_scale=0.75, steps=2,
                             losses=("content", "shapes"), optimizer="recorder", margin=0,
                             weights=weights_path, on_step=lambda info: sizes_seen.append(info.size))
    assert [s["size"] for s in result.scales] == [32, 48, 64]
    assert [s["first_step"] for s in result.scales] == [1, 3, 5]
    assert result.steps == 6 and sizes_seen == [32, 32, 48, 48, 64, 64]
    # content at each scale's size; the style at 0.75 of it (--style-scale 0.75)
    assert ShapeRecorder.seen == [((32, 32), (19, 24)), ((48, 48), (28, 36)), ((64, 64), (38, 48))]
    # each later scale starts from the previous result, upsampled bicubically and clipped
    assert [s.shape[:2] for s in StartRecorder.starts] == [(32, 32), (48, 48), (64, 64)]
    assert StartRecorder.starts[1].min() >= 0.0 and StartRecorder.starts[1].max() <= 1.0
    assert not np.allclose(StartRecorder.starts[2], content, atol=1e-3)  # not a restart from content


def test_adam_carries_its_moments_to_the_next_scale():
    component = get_plugin_manager().registry.get("solver", "adam")
    solver = component.create(**component.resolve_options({}))
    target = tf.constant(np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 3)), tf.float32)


    stepper = solver.start(QuadraticObjective(target), tf.constant(np.full((1, 8, 8, 3), 0.5, np.float32)))
    for _ in range(3):
        stepper.step()
    from nstcore.margin import resizer

    state = stepper.carry(resizer(0, (12, 12), 0))
    assert state["m"].shape == (1, 12, 12, 3) and state["v"].shape == (1, 12, 12, 3)
    assert float(tf.reduce_min(state["v"])) >= 0.0 and float(tf.reduce_max(tf.abs(state["m"]))) > 0
    assert state["iterations"] == 3
    resumed = solver.start(QuadraticObjective(target), tf.constant(np.full((1, 12, 12, 3), 0.5, np.float32)), state=state)
    np.testing.assert_allclose(resumed.m.numpy(), state["m"].numpy())
    assert float(resumed.t) == 3


def _report_of_run(image_files, tmp_path, weights_path, *extra):
    """Run 64-px images with ``extra`` flags; the JSON report."""
    content, style = image_files
    report = tmp_path / "r.json"
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "64",
                     "-q", "--weights", weights_path, "--report", str(report), *extra]) == 0
    return json.loads(report.read_text())


def test_a_multi_scale_run_reports_its_scales(image_files, tmp_path, weights_path):
    data = _report_of_run(image_files, tmp_path, weights_path, "--scales", "32,64", "--steps", "2")
    assert [(s["size"], s["first_step"]) for s in data["scales"]] == [(32, 1), (64, 3)]
    assert data["steps_done"] == 4 and len(data["losses"]) == 4


def test_scale_steps_give_each_scale_its_own_number_of_steps(image_files, tmp_path, weights_path):
    data = _report_of_run(image_files, tmp_path, weights_path, "--scales", "32,48,64",
                          "--scale-steps", "3,2,1")
    assert [(s["size"], s["first_step"]) for s in data["scales"]] == [(32, 1), (48, 4), (64, 6)]
    assert data["steps_done"] == 6


@pytest.mark.parametrize("extra,message", [
    (["--scales", "32,64", "--scale-steps", "3,2,1"],
     "--scale-steps has 3 number(s) but the run has 2 scale(s) (32, 64 px); give one per scale"),
    (["--scale-steps", "3,0"], "--scale-steps must be whole numbers >= 1 separated by commas, got '3,0'"),
    (["--scale-steps", "many"], "--scale-steps must be whole numbers >= 1 separated by commas, got 'many'"),
])
def test_bad_scale_steps_are_one_line(image_files, tmp_path, capsys, extra, message):
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "64",
                     *extra])
    assert code == 2 and not (tmp_path / "o.png").exists()
    assert capsys.readouterr().err.splitlines() == [f"nstcore: error: {message}"]
