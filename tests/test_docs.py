"""docs/writing-a-plugin.md, executed block by block in an empty folder, as a new user would."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "writing-a-plugin.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks():
    return [(lang, info.strip(), body) for lang, info, body in BLOCK.findall(DOC.read_text())]


@pytest.fixture
def user_env(tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["NSTCORE_DISABLE_PLUGIN_AUTOLOAD"] = "0"  # a user's environment autoloads plugins
    for key in ("NSTCORE_PLUGINS", "NSTCORE_DISABLE_PLUGINS", "PYTHONPATH"):
        env.pop(key, None)
    yield env
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "nstcore-brightness"],
                   capture_output=True)


def test_every_block_of_the_plugin_tutorial_runs(tmp_path, user_env, weights_path):
    outputs = []
    expected_text = None
    for lang, info, body in blocks():
        if lang == "python" and info.startswith("file="):
            path = tmp_path / info.split("=", 1)[1]
            assert path.parent.is_dir(), f"{path.parent} should exist by now"
            path.write_text(body)
        elif lang == "python" and "@nstcore.hookimpl" in body and "register(" in body and \
                "nstcore_brightness" in body:
            # the hook module the template wrote must say what the doc says it says
            written = (tmp_path / "nstcore-brightness/nstcore_brightness/__init__.py").read_text()
            assert 'register("brightness", "nstcore_brightness.loss:BrightnessLoss"' in written
        elif lang == "python":
            proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=user_env,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            outputs.append(proc.stdout)
        elif lang == "sh":
            for command in filter(None, body.strip().splitlines()):
                proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=user_env,
                                      capture_output=True, text=True, timeout=600)
                assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
                outputs.append(proc.stdout)
        elif lang == "text":
            expected_text = body
            assert outputs[-1] == expected_text, "the printed messages differ from the doc"
    joined = "\n".join(outputs)
    assert expected_text is not None
    # the new loss is listed with its distribution, used by runs, and its tests passed
    assert re.search(r"loss\s+brightness\s+brightness\s+nstcore-brightness\s+0\.1\.0", joined)
    assert (tmp_path / "brightness.png").is_file() and (tmp_path / "mixed.png").is_file()
    assert "passed" in joined
    assert (tmp_path / "steps.csv").read_text().count("\n") == 3
    assert "register_losses" in joined  # plugins --hooks
    # the doc's test command works from a folder that holds a clone named nstcore/
    (tmp_path / "nstcore" / "nstcore").mkdir(parents=True)
    (tmp_path / "nstcore" / "README.md").write_text("a clone of nstcore\n")
    (command,) = [c for lang, _, body in blocks() if lang == "sh"
                  for c in body.splitlines() if c.startswith("pytest ")]
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=user_env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "passed" in proc.stdout, proc.stdout + proc.stderr
