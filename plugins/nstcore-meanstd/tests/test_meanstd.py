"""The meanstd plugin honours the loss contract, is found by nstcore, and stylises an image."""
import json

import numpy as np
import pytest
import tensorflow as tf

from nstcore import cli
from nstcore.run import asset
from nstcore.testing import check_loss

# `make` installs this plugin (editable), as it installs nstcore: a broken install fails here
from nstcore_meanstd.loss import MeanStdStyleLoss, channel_moments


def test_contract():
    ran = check_loss(MeanStdStyleLoss, name="meanstd")
    assert any(line.startswith("tiled (16-px tiles") for line in ran), ran


def test_moments_are_per_channel_mean_and_std():
    x = tf.random.stateless_normal([1, 6, 5, 3], seed=[5, 6])
    mean, std = channel_moments(x)
    flat = x.numpy().reshape(-1, 3)
    np.testing.assert_allclose(mean.numpy()[0], flat.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std.numpy()[0], np.sqrt(flat.var(0) + 1e-5), rtol=1e-4)


def test_listed_and_stylises_with_the_builtins(nstcore_plugins, tmp_path, capsys):
    component = nstcore_plugins.registry.get("loss", "meanstd")
    assert component.plugin.distribution == "nstcore-meanstd"  # found through the entry point
    assert cli.main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert any(l.split()[:4] == ["loss", "meanstd", "meanstd", "nstcore-meanstd"] for l in listing.splitlines())
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    code = cli.main(["run", str(asset("astronaut.png")), str(asset("starry_night.jpg")), "-o", str(out),
                     "--size", "48", "--steps", "8", "--optimizer", "lbfgs",
                     "--losses", "content,meanstd,tv", "--report", str(report), "-q"])
    assert code == 0, capsys.readouterr().err
    rows = json.loads(report.read_text())["losses"]
    assert rows[-1]["meanstd"] < 0.7 * rows[0]["meanstd"]  # the style statistics moved toward the painting
    assert out.is_file()


def test_declared_option_is_checked_and_reaches_the_loss(nstcore_plugins, tmp_path, capsys):
    args = ["run", str(asset("astronaut.png")), str(asset("starry_night.jpg")), "-o",
            str(tmp_path / "o.png"), "--size", "32", "--steps", "1", "-q",
            "--losses", "content,meanstd"]
    assert cli.main(args + ["--loss-option", "meanstd.epsilon=0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "nstcore: error: loss 'meanstd' from plugin 'meanstd' (nstcore-meanstd 0.1.0) option"
        " epsilon: must be a finite number > 0, got '0'")
    assert not (tmp_path / "o.png").exists()
    report = tmp_path / "r.json"
    assert cli.main(args + ["--loss-option", "meanstd.epsilon=0.5", "--report", str(report)]) == 0
    (entry,) = [e for e in json.loads(report.read_text())["plugins"]["losses"] if e["name"] == "meanstd"]
    assert entry["options"] == {"epsilon": 0.5}
    loss = MeanStdStyleLoss(epsilon=0.5)
    x = tf.zeros([1, 4, 4, 2])
    assert float(channel_moments(x, loss.epsilon)[1][0, 0]) == pytest.approx(0.5 ** 0.5)
