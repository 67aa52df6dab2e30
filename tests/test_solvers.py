"""Adam and L-BFGS lower the loss, keep pixels in [0, 1], and Adam matches the tutorial step by step."""
import json

import numpy as np
import pytest
import tensorflow as tf

import nstcore
from nstcore.testing import QuadraticObjective
import nstcore.solver
from nstcore_benchmarks.tutorial_reference import TutorialRun


def _run(tiny_pair, weights_path, **options):
    """The tutorial's run (one scale, float32, no margin) at 64 px, with ``options`` on top."""
    content, style = tiny_pair
    return nstcore.stylize(content, style, size=64, weights=weights_path, preset="tutorial", **options)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_solver_lowers_the_loss_and_keeps_pixels_in_range(tiny_pair, weights_path, optimizer):
    result = _run(tiny_pair, weights_path, optimizer=optimizer, steps=6)
    totals = [row["total"] for row in result.losses]
    assert len(totals) == 6
    assert totals[-1] < 0.5 * totals[0]
    assert all(b < a for a, b in zip(totals, totals[1:])), totals
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert result.image.shape == tiny_pair[0].shape
    for row in result.losses:  # every term reported, and they add up to the total
        assert set(row) == {"step", "total", "content", "gram", "tv"}
        assert row["content"] + row["gram"] + row["tv"] == pytest.approx(row["total"], rel=1e-5)


def test_lbfgs_beats_adam_for_the_same_number_of_loss_evaluations(tiny_pair, weights_path):
    lbfgs = _run(tiny_pair, weights_path, optimizer="lbfgs", steps=8)
    evaluations = lbfgs.evaluations
    assert 8 < evaluations <= 8 * 5  # a few evaluations per iteration, not dozens
    adam = _run(tiny_pair, weights_path, optimizer="adam", steps=evaluations)
    assert lbfgs.losses[-1]["total"] < adam.losses[-1]["total"]


def test_adam_per_step_losses_match_the_tutorial(tiny_pair, weights_path):
    content, style = tiny_pair
    steps = 5
    result = _run(tiny_pair, weights_path, optimizer="adam", steps=steps)
    reference = TutorialRun(tf.constant(content[None]), tf.constant(style[None]), weights_path)
    expected = [float(reference.train_step()[0]) for _ in range(steps)]
    np.testing.assert_allclose([row["total"] for row in result.losses], expected, rtol=1e-5)
    np.testing.assert_allclose(result.image, reference.image.numpy()[0], atol=1e-5)


def test_api_refuses_unknown_options_clearly(tiny_pair):
    from nstcore.errors import InputError

    with pytest.raises(InputError, match="unknown option 'stpes'"):
        nstcore.stylize(*tiny_pair, stpes=3)


def test_bfloat16_precision_runs_close_to_float32(tiny_pair, weights_path):
    full = _run(tiny_pair, weights_path, optimizer="adam", steps=3)
    fast = _run(tiny_pair, weights_path, optimizer="adam", steps=3, precision="bfloat16")
    for a, b in zip(full.losses, fast.losses):  # measured 1.1-1.8 % apart at 64 px
        assert b["total"] == pytest.approx(a["total"], rel=0.025)
    assert fast.image.min() >= 0.0 and fast.image.max() <= 1.0


def test_noise_init_is_reproducible_with_a_seed(tiny_pair, weights_path):
    first = _run(tiny_pair, weights_path, optimizer="adam", steps=2, init="noise", seed=3)
    again = _run(tiny_pair, weights_path, optimizer="adam", steps=2, init="noise", seed=3)
    other = _run(tiny_pair, weights_path, optimizer="adam", steps=2, init="noise", seed=4)
    assert [r["total"] for r in first.losses] == [r["total"] for r in again.losses]
    assert first.losses[0]["total"] != other.losses[0]["total"]
    assert first.losses[0]["content"] > 0  # it really started away from the content image


def test_lbfgs_pixels_that_overshoot_the_range_move_back():
    """A pixel outside [0, 1] gets no gradient from f(clip(x)); the solver must still bring it
    back, or it stays stuck at the bound for the rest of the run."""
    from nstcore.plugins import get_plugin_manager

    component = get_plugin_manager().registry.get("solver", "lbfgs")
    solver = component.create(**component.resolve_options({}))
    target = tf.constant(np.full((1, 6, 6, 3), 0.3, np.float32))


    start = np.full((1, 6, 6, 3), 0.5, np.float32)
    start[0, :3] = 1.6  # half the pixels start far past the bound, as after an overshoot
    stepper = solver.start(QuadraticObjective(target), tf.constant(start))
    for _ in range(15):
        try:
            stepper.step()
        except nstcore.solver.SolverStopped as stop:
            assert stop.converged, stop.reason
            break
    image = np.asarray(stepper.image())
    assert image.min() >= 0.0 and image.max() <= 1.0
    np.testing.assert_allclose(image[0, :3], 0.3, atol=0.02)  # they came back and converged


@pytest.mark.parametrize("flags,native", [({"avx2", "fma"}, False), ({"avx2", "avx512_bf16"}, True),
                                          ({"amx_bf16"}, True)])
def test_precision_auto_picks_bfloat16_only_where_it_is_native(flags, native, monkeypatch, capsys,
                                                                weights_path):
    from nstcore_builtins import vgg19

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides on its own")
    monkeypatch.setattr(vgg19, "cpu_flags", lambda: flags)
    auto = vgg19.VGG19Extractor(weights=weights_path, precision="auto")
    assert auto.precision == ("bfloat16" if native else "float32")
    assert auto.describe()["requested_precision"] == "auto"
    assert capsys.readouterr().err == ""
    vgg19.VGG19Extractor(weights=weights_path, precision="bfloat16")
    warning = capsys.readouterr().err.splitlines()
    if native:
        assert warning == []
    else:
        assert warning == ["nstcore: warning: --precision bfloat16: this machine has no native"
                           " bfloat16 (no GPU, no avx512_bf16 or amx_bf16 CPU flag), so it will run"
                           " several times slower than float32; use --precision auto or float32"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_start_that_is_already_optimal_is_a_success(image_files, tmp_path, capsys, weights_path,
                                                      optimizer):
    """Content alone, starting from the content itself (no start noise): the gradient is zero
    at the start. That is convergence (exit 0, the picture written), not a failed line search."""
    from nstcore import cli

    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    code = cli.main(["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "3",
                     "--style-weight", "0", "--tv-weight", "0", "--optimizer", optimizer,
                     "--start-noise", "0", "--weights", weights_path, "--report", str(report), "-q"])
    assert code == 0, capsys.readouterr().err
    assert out.is_file()
    status = json.loads(report.read_text())["status"]
    assert status == ("converged" if optimizer == "lbfgs" else "finished")
