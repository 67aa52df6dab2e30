"""nstcore batch: folders x styles, manifests, resuming, failures, frames, and the Ray executor."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nstcore import cli

from conftest import CONTENT, STYLE

TESTS = Path(__file__).resolve().parent
FAST = ["--size", "32", "--scales", "1", "--steps", "2", "-q"]


@pytest.fixture
def folder(tmp_path):
    """Two content images and a corrupt one, and two style images."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo = Image.open(CONTENT).convert("RGB")
    photo.resize((40, 40)).save(inputs / "one.png")
    photo.rotate(90).resize((40, 32)).save(inputs / "two.jpg")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    styles = [tmp_path / "starry.jpg", tmp_path / "flipped.png"]
    painting = Image.open(STYLE).convert("RGB").resize((48, 40))
    painting.save(styles[0])
    painting.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(styles[1])
    return inputs, styles


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(*args, **env) -> subprocess.CompletedProcess:
    """``nstcore batch`` in its own process (kills, exit codes, a clean plugin state)."""
    environment = dict(os.environ, PYTHONPATH=str(TESTS), **env)
    return subprocess.run([sys.executable, "-m", "nstcore.cli", "batch", *map(str, args)],
                          capture_output=True, text=True, env=environment, timeout=600)


def test_folder_times_styles_writes_every_pair_and_records_the_broken_one(folder, tmp_path, weights_path, capsys):
    inputs, styles = folder
    out = tmp_path / "out"
    code = cli.main(["batch", str(inputs), *map(str, styles), "--out-dir", str(out),
                     "--weights", weights_path, *FAST])
    assert code == 1  # one input is broken: the batch goes on and says so in its status
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["one__flipped.png", "one__starry.png", "two__flipped.png", "two__starry.png"]
    for name in names:
        report = json.loads((out / name).with_suffix(".json").read_text())
        assert report["status"] == "finished" and report["steps_done"] == 2
        assert Image.open(out / name).size == ((32, 32) if name.startswith("one") else (32, 25))
    lines = records(out / "results.jsonl")
    assert sorted(r["status"] for r in lines) == ["done"] * 4 + ["failed"] * 2
    failed = [r for r in lines if r["status"] == "failed"]
    assert all("broken.png" in r["error"] and "\n" not in r["error"] for r in failed)
    done = [r for r in lines if r["status"] == "done"]
    assert all(r["losses"]["total"] > 0 and r["seconds"] > 0 and r["device"] for r in done)
    assert "4 done, 2 failed, 0 skipped" in capsys.readouterr().out


def test_rerun_skips_finished_jobs_and_force_redoes_them(folder, tmp_path, weights_path, capsys):
    inputs, styles = folder
    (inputs / "broken.png").unlink()
    out = tmp_path / "out"
    args = ["batch", str(inputs), str(styles[0]), "--out-dir", str(out), "--weights", weights_path, *FAST]
    assert cli.main(args) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert cli.main(args) == 0
    assert "0 done, 0 failed, 2 skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps
    assert cli.main(args + ["--steps", "3"]) == 0  # a changed option is a different job
    assert "2 done, 0 failed, 0 skipped" in capsys.readouterr().out
    assert cli.main(args + ["--steps", "3", "--force"]) == 0
    assert "2 done, 0 failed, 0 skipped" in capsys.readouterr().out


def test_manifests_csv_and_jsonl_with_options_per_row(folder, tmp_path, weights_path, capsys):
    inputs, styles = folder
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("content,style,output,steps,preserve_color\n"
                        f"in/one.png,{styles[0].name},first.png,3,luminance\n"
                        f"in/two.jpg,,,,\n"
                        f",{styles[0].name},,,\n")
    out = tmp_path / "out"
    code = cli.main(["batch", str(manifest), str(styles[1]), "--out-dir", str(out),
                     "--weights", weights_path, *FAST])
    assert code == 1  # the row without a content is refused and recorded
    first = json.loads((out / "first.json").read_text())
    assert first["steps_done"] == 3 and first["settings"]["preserve_color"] == "luminance"
    second = json.loads((out / "two__flipped.json").read_text())  # the STYLE argument filled in
    assert second["steps_done"] == 2 and second["inputs"]["styles"] == [str(styles[1])]
    lines = records(out / "results.jsonl")
    assert [r["status"] for r in lines].count("failed") == 1
    assert "jobs.csv row 4: no 'content'" in next(r["error"] for r in lines if r["status"] == "failed")
    jsonl = tmp_path / "jobs.jsonl"
    jsonl.write_text(json.dumps({"content": "in/one.png", "styles": [styles[0].name, styles[1].name],
                                 "style_blend": "0.8,0.2", "output": "blend.tif", "bit_depth": 16}) + "\n")
    assert cli.main(["batch", str(jsonl), "--out-dir", str(out), "--weights", weights_path, *FAST]) == 0
    import tifffile

    assert tifffile.imread(out / "blend.tif").dtype == np.uint16
    assert json.loads((out / "blend.json").read_text())["settings"]["style_blend"] == "0.8,0.2"


def test_a_job_killed_halfway_is_redone_and_nothing_else(folder, tmp_path, weights_path):
    inputs, styles = folder
    (inputs / "broken.png").unlink()
    out = tmp_path / "out"
    args = [inputs, *styles, "--out-dir", out, "--weights", weights_path, *FAST]
    killed = batch(*args, NSTCORE_PLUGINS="killer_plugin", NSTCORE_TEST_KILL_COUNTER=str(tmp_path / "runs"),
                   NSTCORE_TEST_KILL_AT="3")
    assert killed.returncode == -9, killed.stderr
    assert [r["status"] for r in records(out / "results.jsonl")] == ["done", "done"]
    assert not list(out.glob(".*.part"))  # the killed job left no half-written file
    assert len(list(out.glob("*.png"))) == 2
    resumed = batch(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 done, 0 failed, 2 skipped" in resumed.stdout
    assert len(list(out.glob("*.png"))) == 4
    assert [r["status"] for r in records(out / "results.jsonl")] == ["done"] * 4


def test_frames_start_from_the_previous_stylised_frame(tmp_path, weights_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    photo = Image.open(CONTENT).convert("RGB").resize((40, 40))
    for index in (1, 2, 10):  # natural order: 10 comes after 2
        photo.save(frames / f"frame{index}.png")
    out = tmp_path / "out"
    assert cli.main(["batch", str(frames), str(STYLE), "--frames", "--out-dir", str(out),
                     "--weights", weights_path, "--size", "32", "--scales", "1", "--steps", "4", "-q"]) == 0
    lines = records(out / "results.jsonl")
    assert [Path(r["output"]).name for r in lines] == ["frame1.png", "frame2.png", "frame10.png"]
    assert lines[0]["init"] is None
    assert lines[1]["init"] == lines[0]["output"] and lines[2]["init"] == lines[1]["output"]
    # the same picture again, started from its stylised self: the objective starts far lower
    assert lines[1]["first_total"] < 0.7 * lines[0]["first_total"]


@pytest.mark.parametrize("args,message", [
    (["--executor", "nope"], "unknown executor 'nope'"),
    (["--ray-address", "auto"], "--ray-address is not an option of executor 'local'"),
    (["--format", "jpg", "--bit-depth", "16"], "--bit-depth 16 needs a .png or .tif"),
    (["--steps", "0"], "--steps"),
])
def test_bad_batch_flags_are_one_line(folder, tmp_path, capsys, args, message):
    inputs, styles = folder
    out = tmp_path / "out"
    try:
        code = cli.main(["batch", str(inputs), str(styles[0]), "--out-dir", str(out), *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code not in (0, None) and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(out.glob("*.png")) if out.exists() else True


def test_ray_executor_without_ray_says_how_to_install(folder, tmp_path, capsys, monkeypatch):
    inputs, styles = folder
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = cli.main(["batch", str(inputs), str(styles[0]), "--out-dir", str(tmp_path / "out"),
                     "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == 'nstcore: error: the ray executor needs Ray: pip install "nstcore[ray]"'


def test_ray_executor_gives_the_local_images_and_survives_a_lost_worker(folder, tmp_path, weights_path):
    pytest.importorskip("ray")
    inputs, styles = folder
    (inputs / "broken.png").unlink()
    common = [inputs, styles[0], "--weights", weights_path, "--seed", "0", *FAST]
    local = batch(*common, "--out-dir", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    ray_run = batch(*common, "--out-dir", tmp_path / "ray", "--executor", "ray", "--retries", "1",
                    NSTCORE_PLUGINS="killer_plugin", NSTCORE_TEST_KILL_COUNTER=str(tmp_path / "runs"),
                    NSTCORE_TEST_KILL_AT="1")
    assert ray_run.returncode == 0, ray_run.stderr
    assert "2 done, 0 failed" in ray_run.stdout and "on ray (workers 1" in ray_run.stdout
    lines = records(tmp_path / "ray" / "results.jsonl")
    assert sorted(r["attempt"] for r in lines) == [1, 2]  # the first job's worker was killed once
    for name in ("one__starry.png", "two__starry.png"):
        a = np.asarray(Image.open(tmp_path / "local" / name), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "ray" / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, name


def test_a_batch_traces_the_adam_step_once_and_gives_the_separate_runs_images(weights_path):
    """Job 2 reuses job 1's traced step (targets held in place) and still gets its own picture."""
    import nstcore
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    photo = np.asarray(Image.open(CONTENT).convert("RGB").resize((40, 40)), np.float32) / 255
    second = photo[::-1, :, ::-1].copy()  # another picture of the same shape
    painting = np.asarray(Image.open(STYLE).convert("RGB").resize((48, 40)), np.float32) / 255
    options = dict(size=32, scales="1", steps=3, weights=weights_path, optimizer="adam")
    engines: dict = {}
    batched = []
    for content in (photo, second):
        prepared = prepare_run(Settings(**options), content, painting, engines=engines)
        batched.append(prepared.execute())
    solver = next(iter(engines.values())).solver
    assert len(solver._traced) == 1
    assert next(iter(solver._traced.values())).experimental_get_tracing_count() == 1
    for content, result in zip((photo, second), batched):
        alone = nstcore.stylize(content, painting, **options)
        np.testing.assert_allclose(result.image, alone.image, atol=1e-6)
        assert [r["total"] for r in result.losses] == pytest.approx([r["total"] for r in alone.losses], rel=1e-6)


def test_a_batch_traces_the_lbfgs_loss_once_and_gives_the_separate_runs_images(weights_path):
    """The default solver too: job 2 reuses job 1's traced loss and gradient."""
    import nstcore
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    photo = np.asarray(Image.open(CONTENT).convert("RGB").resize((40, 40)), np.float32) / 255
    second = photo[::-1, :, ::-1].copy()
    painting = np.asarray(Image.open(STYLE).convert("RGB").resize((48, 40)), np.float32) / 255
    options = dict(size=32, scales="1", steps=3, weights=weights_path, optimizer="lbfgs",
                   precision="float32")
    engines: dict = {}
    batched = []
    for content in (photo, second):
        prepared = prepare_run(Settings(**options), content, painting, engines=engines)
        batched.append(prepared.execute())
    solver = next(iter(engines.values())).solver
    assert len(solver._traced) == 1
    assert next(iter(solver._traced.values())).value_and_gradient.experimental_get_tracing_count() == 1
    for content, result in zip((photo, second), batched):
        alone = nstcore.stylize(content, painting, **options)
        np.testing.assert_allclose(result.image, alone.image, atol=1e-6)
        assert [r["total"] for r in result.losses] == pytest.approx([r["total"] for r in alone.losses], rel=1e-6)


def test_adam_keeps_traced_steps_only_for_reusable_objectives_and_within_its_pixel_budget():
    import tensorflow as tf

    from nstcore.testing import QuadraticObjective
    from nstcore_builtins import adam

    solver = adam.Adam()
    solver.start(QuadraticObjective(np.full((1, 8, 8, 3), 0.5, np.float32)), tf.zeros((1, 8, 8, 3)))
    assert solver._traced == {}  # a per-scale wrapper (tiled, masked) is new each time: not kept

    class Reusable(QuadraticObjective):
        reusable = True

    objective = Reusable(np.full((1, 8, 8, 3), 0.5, np.float32))
    first = solver.start(objective, tf.zeros((1, 8, 8, 3)))
    first.step()
    again = solver.start(objective, tf.ones((1, 8, 8, 3)))
    assert again._step is first._step and again.evaluations == 0  # the traced step, reused
    np.testing.assert_array_equal(again.image().numpy(), np.ones((1, 8, 8, 3)))
    assert float(again.t) == 0.0 and not np.any(again.m.numpy())  # a fresh Adam, not the last run's
    old = adam.CACHED_PIXELS
    adam.CACHED_PIXELS = 100
    try:
        solver.start(objective, tf.zeros((1, 10, 10, 3)))
        assert len(solver._traced) == 1  # the 8x8 entry made room for the 10x10 one
    finally:
        adam.CACHED_PIXELS = old
