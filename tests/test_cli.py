"""`nstcore run` end to end at tiny size, and its answers to bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nstcore import cli


def exit_code(args):
    """What the command returns, whether it returns or exits (argparse exits on usage errors)."""
    try:
        return cli.main(args)
    except SystemExit as exc:
        return exc.code


def _run(args, capsys):
    code = exit_code(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_writes_the_png_and_a_complete_report(image_files, weights_path, tmp_path, capsys):
    content, style = image_files
    out, report = tmp_path / "out.png", tmp_path / "run.json"
    code, stdout, stderr = _run(["run", str(content), str(style), "-o", str(out), "--size", "48",
                                 "--steps", "3", "--optimizer", "lbfgs", "--report", str(report),
                                 "--seed", "7", "--save-every", "2"], capsys)
    assert code == 0, stderr
    assert f"wrote {out}" in stdout
    image = Image.open(out)
    assert image.format == "PNG" and image.mode == "RGB" and max(image.size) == 48
    assert (tmp_path / "out_step00002.png").is_file()  # --save-every
    assert [l.split()[0] for l in stderr.splitlines() if l.startswith("step")] == ["step"] * 3
    data = json.loads(report.read_text())
    assert data["status"] == "finished" and data["steps_done"] == 3
    settings = data["settings"]
    assert settings["optimizer"] == "lbfgs" and settings["size"] == 48 and settings["seed"] == 7
    assert settings["losses"] == ["content", "gram", "tv"]
    assert len(data["losses"]) == 3 and {"total", "content", "gram", "tv"} <= set(data["losses"][0])
    assert data["loss_evaluations"] >= 3
    timings = data["timings"]
    assert timings["first_step_seconds"] > 0 and timings["median_step_seconds"] > 0
    assert len(timings["step_seconds"]) == 3
    import tensorflow as tf

    # auto: the first GPU if the machine has one, else the CPU (asked of TensorFlow directly)
    expected = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    assert data["device"].endswith(f"/device:{expected}"), data["device"]
    assert data["versions"]["tensorflow"].startswith("2.")
    assert data["weights"]["sha256"] and data["weights"]["path"] == weights_path
    # the output is the stylised image, not the content image
    original = np.asarray(Image.open(content).resize(image.size), dtype=np.float32)
    assert np.abs(np.asarray(image, dtype=np.float32) - original).mean() > 1.0


@pytest.mark.parametrize("case", ["missing", "not-an-image", "unknown-optimizer", "steps-0"])
def test_bad_input_is_one_line_nonzero_and_leaves_no_output(case, image_files, tmp_path, capsys):
    content, style = image_files
    out = tmp_path / "out.png"
    args = ["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "1"]
    expected = {"missing": "no such file", "not-an-image": "not an image",
                "unknown-optimizer": "unknown solver 'sgd' (known: adam, lbfgs)",
                "steps-0": "--steps: must be a whole number >= 1, got '0'"}[case]
    if case == "missing":
        args[1] = str(tmp_path / "nope.jpg")
    elif case == "not-an-image":
        fake = tmp_path / "fake.png"
        fake.write_text("this is text, not a PNG\n")
        args[2] = str(fake)
    elif case == "unknown-optimizer":
        args += ["--optimizer", "sgd"]
    else:
        args[args.index("--steps") + 1] = "0"
    code, _, err = _run(args, capsys)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nstcore: error:") and expected in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in [content, style, *(tmp_path.glob("fake.png"))])


def test_help_and_plugins_do_not_import_tensorflow():
    code = ("import sys; from nstcore import cli\n"
            "for args in (['--help'], ['plugins'], ['run', '--help']):\n"
            "    try:\n        cli.main(args)\n    except SystemExit:\n        pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage: nstcore" in proc.stdout and "--optimizer" in proc.stdout


def test_demo_is_run_with_its_defaults_on_the_bundled_images(tmp_path, weights_path, capsys):
    """No settings of its own (an earlier demo turned on padding the run did not have): the
    same settings and the same picture as `run` on the astronaut and The Starry Night."""
    from nstcore.run import asset

    small = ["--size", "32", "--steps", "2", "-q"]
    out, report = tmp_path / "demo.png", tmp_path / "demo.json"
    code, stdout, stderr = _run(["demo", "-o", str(out), "--report", str(report), *small], capsys)
    assert code == 0, stderr
    same, same_report = tmp_path / "run.png", tmp_path / "run.json"
    code, _, stderr = _run(["run", str(asset("astronaut.png")), str(asset("starry_night.jpg")),
                            "-o", str(same), "--report", str(same_report), *small], capsys)
    assert code == 0, stderr
    demo, run = json.loads(report.read_text()), json.loads(same_report.read_text())
    assert demo["settings"] == run["settings"] and demo["extractor"] == run["extractor"]
    assert [l["total"] for l in demo["losses"]] == pytest.approx([l["total"] for l in run["losses"]],
                                                                 rel=1e-5)
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (out, same))
    assert a.shape == (32, 32, 3) and np.abs(a - b).max() <= 1
