"""Every bad input: one line on stderr, a non-zero exit, and no file created or changed."""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from nstcore import cli

SENTINEL = b"the user's previous output, which must survive"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) \
        + chunk(b"IEND", b"")


def _encoded(fmt: str, size=(40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buf, format=fmt)
    return buf.getvalue()


# name -> (how to break the command, expected words in the one-line error)
# A builder gets (args, tmp_path, monkeypatch) and returns the args to run.
def _content(make):
    def build(args, tmp, mp):
        args[1] = str(make(tmp))
        return args
    return build


def _write(name, data):
    def make(tmp):
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def _extra(*flags):
    def build(args, tmp, mp):
        return args + list(flags)
    return build


def _replace(flag, value):
    def build(args, tmp, mp):
        args = list(args)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
        return args
    return build


def _output(make):
    def build(args, tmp, mp):
        args = list(args)
        args[args.index("-o") + 1] = str(make(tmp))
        return args
    return build


def _env(name, value, then=None):
    def build(args, tmp, mp):
        mp.setenv(name, value)
        return then(args, tmp, mp) if then else args
    return build


def _mkdir(tmp):
    (tmp / "adir").mkdir(exist_ok=True)
    (tmp / "looks-like.png").mkdir(exist_ok=True)
    return tmp / "adir"


CASES = {
    "content missing": (_content(lambda t: t / "missing.jpg"), "no such file"),
    "style missing": (lambda a, t, m: a[:2] + [str(t / "nope.png")] + a[3:], "no such file"),
    "content is a directory": (_content(_mkdir), "is a directory"),
    "empty file": (_content(_write("empty.png", b"")), "file is empty"),
    "truncated PNG": (_content(_write("cut.png", _encoded("PNG", (64, 64))[:60])), "cannot decode"),
    "truncated JPEG": (_content(_write("cut.jpg", _encoded("JPEG", (64, 64))[:300])), "cannot decode"),
    "text file named .png": (_content(_write("notes.png", b"hello, not an image\n")), "not an image"),
    "unsupported format (SVG)": (_content(_write("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>")),
                                 "not an image"),
    "above the pixel limit": (_env("NSTCORE_MAX_PIXELS", "1000"), "above the limit of 1,000"),
    "decompression bomb header": (_content(_write("bomb.png", _png_header_only(50000, 50000))),
                                  "above the limit"),
    "1x1 image": (_content(_write("dot.png", _encoded("PNG", (1, 1)))), "at least 2 pixels"),
    "1 px tall image": (_content(_write("line.png", _encoded("PNG", (300, 1)))), "at least 2 pixels"),
    "short side below 16 px after resize": (_content(_write("thin.png", _encoded("PNG", (400, 20)))),
                                            "below the 16 px"),
    "size 0": (_replace("--size", "0"), "--size: must be a whole number >= 16, got '0'"),
    "size negative": (_replace("--size", "-5"), "--size: must be a whole number >= 16, got '-5'"),
    "size not a number": (_replace("--size", "big"), "--size: must be a whole number"),
    "size below 16": (_replace("--size", "8"), "--size: must be a whole number >= 16, got '8'"),
    "steps negative": (_replace("--steps", "-1"), "--steps: must be a whole number >= 1, got '-1'"),
    "steps fractional": (_replace("--steps", "1.5"), "--steps: must be a whole number"),
    "steps NaN": (_replace("--steps", "nan"), "--steps: must be a whole number"),
    "content weight negative": (_extra("--content-weight", "-1"), "--content-weight: must be a finite"),
    "style weight NaN": (_extra("--style-weight", "nan"), "--style-weight: must be a finite"),
    "tv weight infinite": (_extra("--tv-weight", "inf"), "--tv-weight: must be a finite"),
    "style weight not a number": (_extra("--style-weight", "lots"), "--style-weight: must be a finite number >= 0, got 'lots'"),
    "per-loss weight negative": (_extra("--weight", "gram=-2"), "--weight gram: must be a finite"),
    "per-loss weight for an unselected loss": (_extra("--weight", "nosuch=1"), "not in --losses"),
    "unknown optimizer": (_extra("--optimizer", "sgd"), "unknown solver 'sgd' (known: adam, lbfgs)"),
    "unknown loss": (_extra("--losses", "content,nosuch"), "unknown loss 'nosuch' (known: content, gram, tv)"),
    "unknown extractor": (_extra("--extractor", "resnet"), "unknown extractor 'resnet' (known: vgg19)"),
    "unknown style layer": (_extra("--style-layers", "block9_conv1"),
                            "unknown layer block9_conv1 asked for by loss 'gram' from plugin 'losses' (nstcore 0.1.0) (layers: block1_conv1"),
    "unknown content layer": (_extra("--content-layers", "conv5"), "unknown layer conv5 asked for by loss 'content'"),
    "misspelt style layer": (_extra("--style-layers", "block1_cnv1"), "did you mean 'block1_conv1'?"),
    "output folder missing": (_output(lambda t: t / "no" / "such" / "out.png"), "does not exist"),
    "output folder read-only": (_output(lambda t: Path("/proc/nstcore-out.png")), "not writable"),
    "output equals the content input": (_output(lambda t: t / "content.png"), "same file as input"),
    "output format unsupported": (_output(lambda t: t / "out.xyz"), "unsupported output format"),
    "output path is a directory": (_output(lambda t: _mkdir(t).with_name("looks-like.png")), "is a directory"),
    "weights file missing": (_extra("--weights", "/nonexistent/vgg.h5"), "does not exist"),
    "weights file corrupt": (lambda a, t, m: a + ["--weights", str(_write("bad.weights.h5", b"\x89HDF junk" * 50)(t))],
                             "cannot load VGG19 weights"),
    "weights file truncated": (lambda a, t, m: a + ["--weights", str(_truncated_weights(t))],
                               "cannot load VGG19 weights"),
    "weights file not h5": (lambda a, t, m: a + ["--weights", str(_write("vgg.pth", b"x")(t))],
                            "not a Keras weights file"),
    "report folder missing": (_extra("--report", "/nonexistent/dir/r.json"), "does not exist"),
    "report not json": (_extra("--report", "report.txt"), "--report report.txt: unsupported report format '.txt' (use one of .json)"),
    "seed negative": (_extra("--seed", "-1"), "--seed: must be a whole number >= 0, got '-1'"),
    "save-every zero": (_extra("--save-every", "0"), "--save-every: must be at least 1"),
    "init unknown": (_extra("--init", "zeros"), "--init must be content, noise, style or an image file; zeros: no such file"),
    "pixel limit not a number": (_env("NSTCORE_MAX_PIXELS", "lots"), "NSTCORE_MAX_PIXELS must be a whole number"),
    "memory estimate above the limit": (_extra("--memory-limit", "0.1"), "needs about"),
    "size far beyond the machine's memory": (_replace("--size", "30000"), "but available memory is"),
}


def _truncated_weights(tmp):
    from nstcore_builtins.weights import resolve

    data = Path(resolve().path).read_bytes()
    path = tmp / "cut.weights.h5"
    path.write_bytes(data[: len(data) // 3])
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, image_files, tmp_path, monkeypatch, capsys, weights_path):
    build, expected = CASES[case]
    content, style = image_files
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)  # a previous result that must survive the failed run
    args = ["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1", "-q"]
    args = build(args, tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse usage errors exit
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1, err
    assert lines[0].startswith("nstcore: error: ") and expected in lines[0], lines[0]
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed
    assert out.read_bytes() == SENTINEL


def test_gpu_request_without_a_gpu_is_a_clear_error(image_files, tmp_path, capsys):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    content, style = image_files
    out = tmp_path / "o.png"
    code = cli.main(["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1",
                     "--device", "gpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "sees no GPU" in err[0]
    assert not out.exists()
