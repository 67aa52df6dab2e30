"""The w2gauss plugin honours the loss contract, is exact on known cases, and stylises an image."""
import json

import numpy as np
import pytest
import tensorflow as tf

from nstcore import cli
from nstcore.run import asset
from nstcore.testing import check_loss

# `make` installs this plugin (editable), as it installs nstcore: a broken install fails here
from nstcore_wasserstein.loss import GaussianW2StyleLoss, mean_and_covariance, psd_sqrt, w2_squared


def test_contract():
    ran = check_loss(GaussianW2StyleLoss, name="w2gauss")
    assert any(line.startswith("tiled (16-px tiles") for line in ran), ran


def test_w2_is_zero_for_identical_and_exact_for_diagonal_gaussians():
    x = tf.random.stateless_normal([1, 8, 8, 3], seed=[1, 1])
    mean, cov = mean_and_covariance(x)
    assert abs(float(w2_squared(mean, cov, mean, cov, psd_sqrt(cov)))) < 1e-3
    m1, m2 = tf.constant([0.0, 1.0]), tf.constant([2.0, 1.0])
    s1, s2 = tf.linalg.diag([1.0, 4.0]), tf.linalg.diag([9.0, 1.0])
    # diagonal case: |m1-m2|^2 + sum (sqrt(a) - sqrt(b))^2 = 4 + (1-3)^2 + (2-1)^2 = 9
    np.testing.assert_allclose(float(w2_squared(m1, s1, m2, s2, psd_sqrt(s2))), 9.0, rtol=1e-5)


def test_listed_and_stylises_combined_with_the_builtins(nstcore_plugins, tmp_path, capsys):
    component = nstcore_plugins.registry.get("loss", "w2gauss")
    assert component.plugin.distribution == "nstcore-wasserstein"  # found through the entry point
    assert cli.main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert any(l.split()[:4] == ["loss", "w2gauss", "wasserstein", "nstcore-wasserstein"]
               for l in listing.splitlines())
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    code = cli.main(["run", str(asset("astronaut.png")), str(asset("starry_night.jpg")), "-o", str(out),
                     "--size", "48", "--steps", "8", "--optimizer", "lbfgs",
                     "--losses", "content,gram,w2gauss,tv", "--report", str(report), "-q"])
    assert code == 0, capsys.readouterr().err
    rows = json.loads(report.read_text())["losses"]
    assert rows[-1]["w2gauss"] < 0.95 * rows[0]["w2gauss"]  # moving toward the painting's statistics
    assert out.is_file()


def test_declared_option_is_checked_and_reaches_the_loss(nstcore_plugins, tmp_path, capsys):
    args = ["run", str(asset("astronaut.png")), str(asset("starry_night.jpg")), "-o",
            str(tmp_path / "o.png"), "--size", "32", "--steps", "1", "-q",
            "--losses", "content,w2gauss"]
    assert cli.main(args + ["--loss-option", "w2gauss.ridge=2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "nstcore: error: loss 'w2gauss' from plugin 'wasserstein' (nstcore-wasserstein 0.1.0) option"
        " ridge: must be a finite number >= 0 and <= 1, got '2'")
    assert not (tmp_path / "o.png").exists()
    report = tmp_path / "r.json"
    assert cli.main(args + ["--loss-option", "w2gauss.ridge=0.1", "--report", str(report)]) == 0
    (entry,) = [e for e in json.loads(report.read_text())["plugins"]["losses"] if e["name"] == "w2gauss"]
    assert entry["options"] == {"ridge": 0.1}
