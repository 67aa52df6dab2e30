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
    assert (tmp_path / "brightness-jax.png").is_file()  # the guide's loss runs on JAX as written
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


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_python_blocks_of_the_front_page_and_getting_started_run(page, tmp_path, user_env,
                                                                        weights_path):
    """Run as written, in a folder holding the files they name (the bundled images)."""
    from PIL import Image

    from conftest import CONTENT, STYLE

    Image.open(CONTENT).convert("RGB").save(tmp_path / "photo.jpg")
    for name in ("painting.jpg", "a.jpg"):
        Image.open(STYLE).convert("RGB").save(tmp_path / name)
    Image.open(STYLE).convert("RGB").rotate(90, expand=True).save(tmp_path / "b.jpg")
    text = (ROOT / page).read_text()
    found = [body for lang, _, body in BLOCK.findall(text) if lang == "python"
             and "hookimpl" not in body]
    assert found, f"{page} has no Python example"
    for body in found:
        proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=user_env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_results_tables_come_from_the_files_and_bad_references_fail(tmp_path):
    """The docs' figures are rendered from result files; a missing file or view stops the build."""
    import json

    from nstcore_benchmarks.render import RenderError, render

    row = {"content": "coffee.png", "style": "starry_night.jpg", "size": 256, "exit": 0,
           "command": "nstcore run coffee.png starry_night.jpg -o out.png --size 256",
           "wall_seconds": 61.5, "peak_rss_gib": 1.234, "tutorial_step_seconds": 1.5,
           "cost_in_tutorial_steps": 41.0, "extra_edge_steps": {"top": 1.25, "left": -0.5,
                                                                 "bottom": 2.0, "right": 0.0},
           "interior_noise": {"median": 0.1, "p90": 4.0, "p99": 9.0, "above_3": 0.2},
           "scales": [{"size": 256, "steps": 30, "setup_seconds": 3.0, "first_step_seconds": 1.2,
                       "median_step_seconds": 1.0}]}
    (tmp_path / "r.json").write_text(json.dumps({"benchmark": "defaults", "cpu": "Test CPU",
                                                 "cpu_flags": ["avx2"], "date": "2026-12-07",
                                                 "rows": [row]}))
    cost = render("r.json", "cost", tmp_path)
    assert "*Measured on Test CPU (avx2), 2026-12-07.*" in cost
    assert "| 62 | 1.5 | 41 | 1.23 |" in cost and "loss at the end" not in cost
    edges = render("r.json", "edges", tmp_path)
    assert "| coffee.png x starry_night.jpg | +1.2 | -0.5 | +2.0 | +0.0 | 2.0 | +0.1 / 4.0 | 20% |" in edges
    assert "| 256 | 30 | 3 | 1.2 | 1 | 1.20 |" in render("r.json", "scales", tmp_path)
    assert "rank" not in edges  # files from before ranks were measured keep their columns
    row["edge_rank"] = {"top": 0.5, "left": 1.0, "bottom": 0.25, "right": 0.0}
    (tmp_path / "r2.json").write_text(json.dumps({"benchmark": "defaults", "cpu": "Test CPU",
                                                  "date": "2026-12-07", "rows": [row]}))
    assert ("Sides above 3/255: 0 of 4; texture alone would put about 0.8 there" in edges
            and "(bands)" not in edges)
    ranked = render("r2.json", "edges", tmp_path)
    assert "| 20% | 0.50 / 1.00 / 0.25 / 0.00 |" in ranked
    assert "lines inside their picture (bands): 1." in ranked
    row["final_losses"] = {"total": 1.46e7, "gram": 4.2e6, "content": 7.9e6, "tv": 2.5e6}
    (tmp_path / "r4.json").write_text(json.dumps({"benchmark": "defaults", "cpu": "Test CPU",
                                                  "date": "2026-12-07", "rows": [row]}))
    assert "| 1.23 | 1.46e+07 / 4.2e+06 / 7.9e+06 |" in render("r4.json", "cost", tmp_path)
    (tmp_path / "r3.json").write_text(json.dumps({"benchmark": "defaults", "cpu": "Test CPU",
                                                  "date": "2026-12-07",
                                                  "rows": [dict(row, flip="v")]}))
    assert "| coffee.png x starry_night.jpg (run upside down) | +1.2 |" in render("r3.json", "edges", tmp_path)
    (tmp_path / "r5.json").write_text(json.dumps({"benchmark": "surround", "cpu": "Test CPU",
                                                  "date": "2026-12-07",
                                                  "rows": [dict(row, margin_start="mirror"),
                                                           dict(row, margin_start="photo",
                                                                edge_rank={"top": 0.5})]}))
    surround = render("r5.json", None, tmp_path)
    assert "| coffee.png x starry_night.jpg, margin from the photo around it | +1.2 |" in surround
    assert ("Mirrored margin: sides above 3/255: 0 of 4;" in surround
            and "(bands): 1. Margin from the photo around it: sides above 3/255: 0 of 4;" in surround
            and surround.rstrip().endswith("(bands): 0."))
    (tmp_path / "r6.json").write_text(json.dumps({"benchmark": "surround", "cpu": "Test CPU",
                                                  "date": "2026-12-08",
                                                  "rows": [dict(row, margin_start="mirror",
                                                                start_noise=0.1)]}))
    noisy = render("r6.json", None, tmp_path)
    assert "| coffee.png x starry_night.jpg, mirrored margin + noise 0.1 | +1.2 |" in noisy
    assert "Mirrored margin + noise 0.1: sides above 3/255: 0 of 4;" in noisy
    schedule = {"sizes": [128, 512], "steps": [30, 20], "wall_seconds": 180.4,
                "cost_in_tutorial_steps": 48.04, "final_total": 1.76e7, "final_gram": 5.27e6}
    (tmp_path / "s.json").write_text(json.dumps({"benchmark": "schedules", "cpu": "Test CPU",
                                                 "date": "2026-12-07", "rows": [schedule]}))
    assert "| 128, 512 | 30, 20 | 180 | 48.0 | 1.76e+07 | 5.27e+06 |" in render("s.json", None, tmp_path)
    with pytest.raises(RenderError, match="no view 'speed'"):
        render("r.json", "speed", tmp_path)
    with pytest.raises(RenderError, match="no result file missing.json"):
        render("missing.json", None, tmp_path)
    with pytest.raises(RenderError, match="no result file"):
        render("../r.json", None, tmp_path / "sub")


def test_every_result_file_the_docs_name_is_committed_and_renders():
    from nstcore_benchmarks.render import render

    named = re.findall(r"^<!-- results: (\S+)(?: view=(\w+))? -->$",
                       "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md")), re.M)
    assert named
    for name, view in named:
        assert "Measured on" in render(name, view or None)


def test_the_cli_reference_lists_every_run_option_from_the_parser():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from hooks import cli_reference
    finally:
        sys.path.pop(0)
    from nstcore.settings import PRESETS, RUN_OPTIONS

    text = cli_reference("run")
    for option in RUN_OPTIONS:
        flag = "--" + option.name.replace("_", "-")
        assert f"`{flag}`" in text, flag
    for preset in PRESETS:
        assert preset in text
    with pytest.raises(ValueError, match="no nstcore command 'nosuch'"):
        cli_reference("nosuch")


def test_the_front_page_is_short_and_its_links_and_pictures_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
