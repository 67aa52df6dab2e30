"""The same objective on TensorFlow, JAX and PyTorch (Keras 3): one backend per process, so each
backend runs tests/backend_probe.py in a process of its own and the numbers are compared here."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import CONTENT, ROOT, STYLE

PROBE = str(ROOT / "tests" / "backend_probe.py")
OTHERS = ("jax", "torch")


def env(**extra: str) -> dict[str, str]:
    found = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    found.pop("NSTCORE_BACKEND", None)
    found.pop("KERAS_BACKEND", None)
    return {**found, **extra}


@pytest.fixture(scope="module")
def probes(weights_path):
    """Each backend's numbers: the objective and gradient at the photo, 10 Adam steps, the
    example plugins, 5 L-BFGS-B steps, a masked two-scale run with a margin."""
    found = {}
    for backend in ("tensorflow", *OTHERS):
        done = subprocess.run([sys.executable, PROBE, backend, "gradient,adam,plugins,lbfgs,masked,kit"],
                              capture_output=True, text=True, env=env(), timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        found[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("backend", OTHERS)
def test_same_objective_and_gradient(probes, backend):
    ours, reference = probes[backend]["gradient"], probes["tensorflow"]["gradient"]
    assert relative(ours["total"], reference["total"]) < 1e-6
    gradient, expected = np.array(ours["gradient"]), np.array(reference["gradient"])
    # float32 convolutions summed in another order: 1e-4 of the largest component
    assert np.abs(gradient - expected).max() < 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("what", ["adam", "plugins"])
def test_ten_adam_steps_match_tensorflow(probes, backend, what):
    ours, reference = probes[backend][what]["losses"], probes["tensorflow"][what]["losses"]
    assert len(ours) == len(reference) == 10
    for mine, theirs in zip(ours, reference):
        assert relative(mine["total"], theirs["total"]) < 2e-4, (mine, theirs)
    assert probes[backend][what]["stopped"] is None


@pytest.mark.parametrize("backend", OTHERS)
def test_lbfgs_and_masked_pyramid_match_tensorflow(probes, backend):
    for what in ("lbfgs", "masked"):
        ours, reference = probes[backend][what]["losses"], probes["tensorflow"][what]["losses"]
        assert len(ours) == len(reference)
        for mine, theirs in zip(ours, reference):
            assert relative(mine["total"], theirs["total"]) < 1e-3, (what, mine, theirs)
    # black in the mask keeps the content exactly, on every backend
    assert probes[backend]["masked"]["left_unchanged"] < 1e-6


@pytest.mark.parametrize("backend", OTHERS)
def test_the_contract_kit_runs_on_each_backend(probes, backend):
    """check_loss, check_solver and check_extractor pass for the built-in and example plugins
    on every backend; the tiled check says it needs TensorFlow, where it ran."""
    ours, reference = probes[backend]["kit"], probes["tensorflow"]["kit"]
    assert sorted(ours) == sorted(reference) == ["Adam", "ContentLoss", "GaussianW2StyleLoss",
                                                 "GramStyleLoss", "LBFGS", "MeanStdStyleLoss",
                                                 "TotalVariationLoss"]
    for name in ("ContentLoss", "GramStyleLoss", "MeanStdStyleLoss", "GaussianW2StyleLoss"):
        assert ours[name][-1] == (f"tiled: SKIPPED on {backend}: exact tiling runs on the"
                                  " tensorflow backend only")
        assert reference[name][-1].startswith("tiled (16-px tiles")
        assert any(line.startswith("gradient: autodiff matches") for line in ours[name])
    assert any(line.startswith(f"eager call on {backend}") for line in ours["GramStyleLoss"])
    traced = {"jax": "traced call (jax.jit)", "torch": "traced call: none on torch"}[backend]
    assert any(line.startswith(traced) for line in ours["GramStyleLoss"])


@pytest.mark.parametrize("backend", OTHERS)
def test_other_backends_never_import_tensorflow(probes, backend):
    assert probes[backend]["tensorflow_imported"] is False
    assert probes["tensorflow"]["tensorflow_imported"] is True


@pytest.mark.parametrize("backend", OTHERS)
def test_cli_run_on_backend(tmp_path, image_files, weights_path, backend):
    """``nstcore run --backend B`` writes the picture and says the backend in its report,
    without importing TensorFlow (the run's own process is checked)."""
    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "report.json"
    code = ("import sys; from nstcore.cli import main; status = main(sys.argv[1:]);"
            " assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code, "run", str(content), str(style), "-o", str(out),
                           "--size", "48", "--scales", "1", "--steps", "2", "--backend", backend,
                           "--report", str(report)],
                          capture_output=True, text=True, env=env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.exists()
    facts = json.loads(report.read_text())
    assert facts["backend"]["name"] == backend
    assert facts["backend"]["version"]


def test_tensorflow_only_plugin_refused_on_jax(tmp_path, image_files):
    """A loss registered without ``backends`` is TensorFlow's: a JAX run is refused in one line
    naming the loss, its plugin and the backend, before any image is read or weights loaded."""
    (tmp_path / "tfonly_plugin.py").write_text(
        "import nstcore\n"
        "class TfLoss:\n"
        "    role = 'style'\n"
        "@nstcore.hookimpl\n"
        "def register_losses(register):\n"
        "    register('tfloss', TfLoss, description='written with tf.*')\n")
    content, style = image_files
    out = tmp_path / "out.png"
    done = subprocess.run([sys.executable, "-m", "nstcore.cli", "run", str(content), str(style),
                           "-o", str(out), "--losses", "content,tfloss", "--backend", "jax"],
                          capture_output=True, text=True, timeout=120,
                          env=env(NSTCORE_PLUGINS="tfonly_plugin", PYTHONPATH=str(tmp_path)))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "loss 'tfloss'" in lines[0] and "runs on tensorflow, not on the jax backend" in lines[0]
    assert not out.exists()


def test_unknown_backend_is_one_line(tmp_path, image_files):
    content, style = image_files
    done = subprocess.run([sys.executable, "-m", "nstcore.cli", "run", str(content), str(style),
                           "-o", str(tmp_path / "o.png")],
                          capture_output=True, text=True, timeout=120,
                          env=env(NSTCORE_BACKEND="jaxx"))
    assert done.returncode == 2
    assert done.stderr.strip() == ("nstcore: error: unknown backend 'jaxx' (choose from tensorflow,"
                                   " jax, torch); did you mean 'jax'?")


def test_backend_is_chosen_once_per_process():
    from nstcore import backends
    from nstcore.errors import InputError

    assert backends.current() == "tensorflow"  # the suite's own process
    with pytest.raises(InputError, match="chosen once per process"):
        backends.choose("jax")


def test_plugins_lists_backends():
    done = subprocess.run([sys.executable, "-m", "nstcore.cli", "plugins"], capture_output=True,
                          text=True, env=env(), timeout=120)
    assert done.returncode == 0
    header, *rows = done.stdout.splitlines()
    assert "BACKENDS" in header
    gram = next(row for row in rows if row.split()[:2] == ["loss", "gram"])
    assert "tensorflow,jax,torch" in gram
