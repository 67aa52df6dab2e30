"""No run loses its work: Ctrl-C, non-finite losses, atomic writes, failing plugins, odd images."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from nstcore import cli, hookimpl, imageio
from nstcore.errors import InputError
from nstcore.loss import Loss
from nstcore.plugins import get_plugin_manager

TESTS = Path(__file__).resolve().parent


# -- during a run -------------------------------------------------------------------------------
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_kill_saves_the_current_image_and_report(sig, code, image_files, tmp_path,
                                                           weights_path):
    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # a shell's background job starts with SIGINT ignored, and a Python child would inherit that:
    # give the child the default disposition, as an interactive terminal would
    proc = subprocess.Popen([sys.executable, "-m", "nstcore.cli", "run", str(content), str(style),
                             "-o", str(out), "--size", "32", "--steps", "100000", "--report",
                             str(report), "--weights", weights_path],
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    deadline = time.time() + 120
    for line in proc.stderr:  # wait until a few steps have run
        seen.append(line)
        if line.startswith("step 3/") or time.time() > deadline:
            break
    proc.send_signal(sig)
    try:
        _, rest = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the run did not stop on signal {sig}: " + "".join(seen))
    assert proc.returncode == code, "".join(seen) + rest
    assert "interrupted after" in rest and f"saved the current image to {out}" in rest
    assert "Traceback" not in rest
    assert Image.open(out).size == (32, 32)
    data = json.loads(report.read_text())
    assert data["status"] == "interrupted" and data["steps_done"] >= 3


class NaNAfterThreeCalls(Loss):
    """A loss that turns NaN on its fourth evaluation (as a diverging plugin might)."""

    role = "regularizer"
    default_weight = 1.0

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        import tensorflow as tf

        self.calls = tf.Variable(0.0)

    def __call__(self, features, image):
        import tensorflow as tf

        self.calls.assign_add(1.0)
        return tf.where(self.calls > 3.0, tf.constant(float("nan")), 0.0) + 0.0 * tf.reduce_sum(image)


class NanPlugin:
    @hookimpl
    def register_losses(self, register):
        register("nanloss", NaNAfterThreeCalls)


class ImageRecorder:
    def __init__(self):
        self.images = {}

    @hookimpl
    def on_step(self, step):
        self.images[step.step] = np.asarray(step.image)[0].copy()


def test_nonfinite_loss_stops_with_a_message_and_keeps_the_last_finite_image(
        image_files, tmp_path, capsys, weights_path):
    get_plugin_manager().register(NanPlugin(), "nan-plugin")
    recorder = ImageRecorder()
    get_plugin_manager().register(recorder, "recorder")
    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    code = cli.main(["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "10",
                     "--losses", "content,gram,nanloss", "--report", str(report), "-q",
                     "--weights", weights_path, "--optimizer", "adam"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and "loss became nan at step 4" in err[0] and str(out) in err[0]
    from nstcore.imageio import to_uint8

    image = np.asarray(Image.open(out))
    assert sorted(recorder.images) == [1, 2, 3]  # step 4 was not passed on: its loss was NaN
    assert np.isfinite(recorder.images[3]).all()
    np.testing.assert_array_equal(image, to_uint8(recorder.images[3]))  # the last finite image
    data = json.loads(report.read_text())
    assert data["status"] == "nonfinite" and data["steps_done"] == 4
    assert all(np.isfinite(row["total"]) for row in data["losses"][:3])


def test_lbfgs_stops_on_a_nonfinite_loss_like_adam(image_files, tmp_path, capsys, weights_path):
    """Its line search cannot recover from NaN: the run stops as nonfinite (exit 3), not as a
    failed solver, and keeps the last finite picture."""
    get_plugin_manager().register(NanPlugin(), "nan-plugin")
    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "r.json"
    code = cli.main(["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "10",
                     "--losses", "content,gram,nanloss", "--report", str(report), "-q",
                     "--weights", weights_path, "--optimizer", "lbfgs"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1 and "loss became nan at step" in err[0]
    data = json.loads(report.read_text())
    assert data["status"] == "nonfinite" and np.isfinite(data["losses"][0]["total"])
    assert out.exists()


class RaisesInsideLoss(Loss):
    role = "style"

    def __call__(self, features, image):
        raise ValueError("my loss is broken")


class RaisingPlugin:
    @hookimpl
    def register_losses(self, register):
        register("broken", RaisesInsideLoss)


def test_plugin_raising_inside_its_loss_is_named_and_builtins_still_work(
        image_files, tmp_path, capsys, weights_path):
    get_plugin_manager().register(RaisingPlugin(), "raising-plugin", distribution="raisingdist",
                                  version="0.3")
    content, style = image_files
    out = tmp_path / "out.png"
    base = ["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1", "-q",
            "--weights", weights_path]
    code = cli.main(base + ["--losses", "content,broken"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "loss 'broken'" in err[0] and "raising-plugin" in err[0] and "raisingdist 0.3" in err[0]
    assert "my loss is broken" in err[0]
    assert not out.exists()
    assert cli.main(base) == 0 and out.exists()


def test_a_loss_returning_a_vector_is_refused_with_what_to_fix(image_files, tmp_path, capsys,
                                                                weights_path):
    class VectorLoss(Loss):
        role = "regularizer"

        def __call__(self, features, image):
            import tensorflow as tf

            return tf.image.total_variation(image)  # shape [1], not a scalar

    class VectorPlugin:
        @hookimpl
        def register_losses(self, register):
            register("vector", VectorLoss)

    get_plugin_manager().register(VectorPlugin(), "vector-plugin")
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "1", "-q", "--losses", "content,vector", "--weights", weights_path])
    err = capsys.readouterr().err
    assert code != 0 and "returned shape [1], not a scalar" in err


def test_save_is_atomic_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old result")

    def exploding_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        imageio.save_image(target, np.zeros((4, 4, 3), np.float32))
    assert target.read_bytes() == b"old result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# -- image modes ------------------------------------------------------------------------------
def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def test_image_modes_are_converted_not_rejected(tmp_path):
    gradient = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (24, 1))
    rgb = Image.fromarray(np.stack([gradient, gradient[::-1], np.full_like(gradient, 80)], axis=2))
    cases = {
        "L": _save(rgb.convert("L"), tmp_path / "gray.png"),
        "LA": _save(rgb.convert("LA"), tmp_path / "gray_alpha.png"),
        "RGBA": _save(rgb.convert("RGBA"), tmp_path / "rgba.png"),
        "P": _save(rgb.convert("P"), tmp_path / "palette.png"),
        "CMYK": _save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg"),
        "I;16": _save(Image.fromarray((gradient.astype(np.uint16) * 257)), tmp_path / "sixteen.png"),
    }
    for mode, path in cases.items():
        array = imageio.load_image(path)
        assert array.shape == (24, 32, 3) and array.dtype == np.float32, mode
        assert 0.0 <= array.min() and array.max() <= 1.0, mode
    sixteen = imageio.load_image(cases["I;16"])
    np.testing.assert_allclose(sixteen[0, :, 0], gradient[0] / 255.0, atol=1e-6)  # full range kept


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red...
    rgba[:, :4, 3] = 0  # ...fully transparent on the left half
    rgba[:, 4:, 3] = 255
    array = imageio.load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    np.testing.assert_allclose(array[0, 0], [1, 1, 1])  # transparent -> white paper
    np.testing.assert_allclose(array[0, 7], [1, 0, 0])


def test_exif_orientation_is_respected(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    array = imageio.load_image(path)
    assert array.shape == (40, 20, 3)  # displayed upright: portrait
    assert array[2, 10, 2] > 0.8 and array[-3, 10, 0] > 0.8  # blue now on top


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    array = imageio.load_image(path)
    assert array[8, 8, 0] > 0.9 and array[8, 8, 1] < 0.1


# -- property: the loader either loads RGB floats in [0, 1] or raises InputError --------------
def _check_loader(path: Path) -> None:
    try:
        array = imageio.load_image(path)
    except InputError:
        return
    assert array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.float32
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_loader_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.png"
    path.write_bytes(data)
    _check_loader(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 24), height=st.integers(1, 24),
       mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "1"]),
       fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"]),
       seed=st.integers(0, 2**16), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_loader_on_random_small_images(tmp_path, width, height, mode, fmt, seed, cut):
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    img = rgb.convert(mode) if mode != "I;16" else Image.fromarray(
        rng.integers(0, 65536, (height, width), dtype=np.uint16))
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # that mode cannot be written in that format
    data = buf.getvalue() if cut is None else buf.getvalue()[:cut]
    path = tmp_path / f"img.{fmt.lower()}"
    path.write_bytes(data)
    _check_loader(path)
