"""The core/plugin boundary: the core imports no plugin, a second extractor needs no core
change, hooks run through pluggy, and the plugin-author rough edges give clear messages."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nstcore import cli, hookimpl
from nstcore.errors import PluginError
from nstcore.plugins import get_plugin_manager

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _plugin_modules() -> set[str]:
    """Top-level import names of every package under plugins/."""
    names = set()
    for path in (ROOT / "plugins").iterdir():
        if (path / "__init__.py").is_file():
            names.add(path.name)
        elif path.is_dir():
            names.update(p.parent.name for p in path.glob("*/__init__.py"))
    return names


def test_the_core_imports_no_plugin():
    plugin_modules = _plugin_modules()
    assert {"nstcore_builtins", "nstcore_meanstd", "nstcore_wasserstein"} <= plugin_modules
    offenders = []
    for source in sorted((ROOT / "nstcore").rglob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.split(".")[0].split(":")[0] in plugin_modules else []
            offenders += [f"{source.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0].split(":")[0] in plugin_modules]
    assert offenders == []


def _nstcore(args, tmp_path, drop_env=(), **env_extra):
    env = dict(os.environ, NSTCORE_PLUGINS="tinynet_plugin", **env_extra)
    for name in drop_env:
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "nstcore.cli", *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)


def test_a_second_extractor_plugin_runs_end_to_end_with_its_own_weights_and_command(image_files,
                                                                                    tmp_path):
    content, style = image_files
    made = _nstcore(["tinynet-init", "tiny.npz", "--channels", "6"], tmp_path)
    assert made.returncode == 0 and made.stdout.strip() == "wrote tiny.npz", made.stderr
    listing = _nstcore(["plugins", "--options", "tinynet"], tmp_path)
    assert "weights_file (--tinynet-weights)" in listing.stdout and "pool" in listing.stdout
    run = _nstcore(["run", str(content), str(style), "-o", "out.png", "--extractor", "tinynet",
                    "--tinynet-weights", "tiny.npz", "--extractor-option", "pool=false",
                    "--content-layers", "edge2", "--style-layers", "edge1,edge2", "--size", "32",
                    "--steps", "4", "--optimizer", "lbfgs", "--report", "r.json", "-q"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no TensorFlow start-up noise either
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["plugins"]["extractor"] == {"name": "tinynet",
                                              "plugin": "'tinynet_plugin' (NSTCORE_PLUGINS)",
                                              "options": {"weights_file": "tiny.npz", "pool": False}}
    assert report["extractor"] == {"network": "tinynet", "pool": False}
    totals = [row["total"] for row in report["losses"]]
    assert len(totals) == 4 and totals[-1] < totals[0]
    assert (tmp_path / "out.png").is_file()
    # VGG19's shorthand belongs to VGG19: with another extractor it is refused, naming the owner
    wrong = _nstcore(["run", str(content), str(style), "-o", "o2.png", "--extractor", "tinynet",
                      "--weights", "x.h5"], tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.strip() == (
        "nstcore: error: --weights is an option of extractor 'vgg19', which this run does not use")
    assert not (tmp_path / "o2.png").exists()


class _Order:
    def __init__(self, log, label, **marks):
        self.log, self.label = log, label
        self.on_run_start = hookimpl(**marks)(self._on_run_start) if marks else hookimpl(self._on_run_start)

    def _on_run_start(self, settings):
        self.log.append(self.label)


def test_hooks_follow_pluggy_order_and_wrappers():
    log = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def on_run_start(self, settings):
            log.append("wrapper before")
            result = yield
            log.append(f"wrapper after {len(result)} results")
            return result

    class First:
        @hookimpl(tryfirst=True)
        def on_run_start(self, settings):
            log.append("tryfirst")

    class Plain:
        @hookimpl
        def on_run_start(self, settings):
            log.append("plain")

    class Last:
        @hookimpl(trylast=True)
        def on_run_start(self, settings):
            log.append("trylast")
            return "last"

    manager = get_plugin_manager()
    for name, plugin in (("last", Last()), ("first", First()), ("plain", Plain()), ("wrap", Wrapper())):
        manager.register(plugin, name)
    manager.call("on_run_start", settings={})
    assert log == ["wrapper before", "tryfirst", "plain", "trylast", "wrapper after 1 results"]


def test_a_failing_lifecycle_hook_names_its_plugin():
    class Broken:
        @hookimpl
        def on_run_start(self, settings):
            raise ValueError("cannot start")

    manager = get_plugin_manager()
    manager.register(Broken(), "broken-start", distribution="brokendist", version="0.2")
    with pytest.raises(PluginError) as caught:
        manager.call("on_run_start", settings={})
    assert str(caught.value) == ("plugin 'broken-start' (brokendist 0.2) failed in on_run_start:"
                                 " ValueError: cannot start")


def test_trace_env_prints_every_hook_call(tmp_path):
    proc = _nstcore(["plugins"], tmp_path, NSTCORE_TRACE_PLUGINS="1")
    assert proc.returncode == 0
    lines = proc.stderr.splitlines()
    assert "nstcore: trace: register_losses(register) -> losses" in lines
    assert "nstcore: trace: register_extractors(register) -> tinynet_plugin, extractors" in lines
    assert "nstcore: trace: register_commands(subparsers) -> tinynet_plugin, commands" in lines
    assert sum(l.startswith("nstcore: trace: register_solvers returned in ") for l in lines) == 1
    quiet = _nstcore(["plugins"], tmp_path)
    assert "trace" not in quiet.stderr


# -- rough edges -------------------------------------------------------------------------------
def _register_loss(name, factory, plugin="author-plugin", dist="authordist"):
    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register(name, factory)

    get_plugin_manager().register(Plugin(), plugin, distribution=dist, version="0.1")


def test_a_misspelt_role_is_refused_naming_the_plugin(image_files, tmp_path, capsys):
    from nstcore.loss import Loss

    class Misspelt(Loss):
        role = "Style"

        def __call__(self, features, image):
            return 0.0

    _register_loss("mis", Misspelt)
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"),
                     "--losses", "content,mis", "--size", "32", "--steps", "1"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "nstcore: error: loss 'mis' from plugin 'author-plugin' (authordist 0.1) has role 'Style';"
        " a loss's role must be one of content, style, regularizer")
    assert not (tmp_path / "o.png").exists()


def test_a_name_clash_keeps_listing_working_and_fails_only_when_used(image_files, tmp_path, capsys):
    _register_loss("gram", "somewhere:Else", plugin="dupe", dist="dupedist")
    assert cli.main(["plugins"]) == 0
    rows = [l.split() for l in capsys.readouterr().out.splitlines() if l.split()[:2] == ["loss", "gram"]]
    assert len(rows) == 2 and {r[3] for r in rows} == {"nstcore", "dupedist"}
    assert all("NAME CLASH" in " ".join(r) for r in rows)
    content, style = image_files
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "1", "--losses", "content,tv"]) == 0  # gram not used: fine
    capsys.readouterr()
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o2.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        "nstcore: error: loss name 'gram' is registered by plugin 'dupe' (dupedist 0.1) and by"
        " plugin 'losses' (nstcore 0.1.0); rename one of them (register it under another name) or"
        " disable one (NSTCORE_DISABLE_PLUGINS=dupe)")


def test_an_env_module_plugin_is_labelled_by_where_it_came_from(tmp_path):
    proc = _nstcore(["run", "a.png", "b.png", "--extractor", "tinynet", "--extractor-option",
                     "wieghts_file=x"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "nstcore: error: extractor 'tinynet' from plugin 'tinynet_plugin' (NSTCORE_PLUGINS) has no"
        " option 'wieghts_file'; did you mean 'weights_file'? (options: pool, weights_file)")


def test_help_says_each_loss_has_its_own_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--content-weight X weight of content losses (default: each loss's own; the"
                 " built-in content loss: 1e4)",
                 "--style-weight X weight of style losses (default: each loss's own; the built-in"
                 " gram loss: 1e-2)",
                 "--tv-weight X weight of regularisers (default: each loss's own; the built-in tv"
                 " loss: 30)"):
        assert flag in text


def test_dry_run_prints_each_term_to_compare_and_writes_nothing(image_files, tmp_path, capsys,
                                                                 weights_path):
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--dry-run", "--init", "noise", "--seed", "1", "--weights", weights_path])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["LOSS", "PLUGIN", "ROLE", "UNWEIGHTED", "WEIGHT", "WEIGHTED"]
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    assert set(rows) == {"content", "gram", "tv"}
    for name, weight in (("content", 1e4), ("gram", 1e-2), ("tv", 30.0)):
        value, got_weight, weighted = map(float, rows[name][-3:])
        assert got_weight == weight and value > 0
        assert weighted == pytest.approx(value * weight, rel=1e-3)
    assert not (tmp_path / "o.png").exists()


def test_tensorflow_start_up_noise_is_hidden(image_files, tmp_path):
    content, style = image_files
    proc = _nstcore(["run", str(content), str(style), "-o", "o.png", "--size", "32", "--steps", "1",
                     "-q"], tmp_path, drop_env=("TF_CPP_MIN_LOG_LEVEL",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_the_minimum_image_side_comes_from_the_extractor():
    from nstcore.extractor import FeatureExtractor
    from nstcore_builtins.vgg19 import VGG19Extractor

    assert VGG19Extractor.min_side(["block1_conv1", "block2_conv2"]) == 2
    assert VGG19Extractor.min_side(["block3_conv1"]) == 4
    assert VGG19Extractor.min_side(["block1_conv1", "block5_conv2"]) == 16
    assert FeatureExtractor.min_side(["anything"]) == 1  # a network without pooling


def test_a_shallow_run_accepts_an_image_too_thin_for_block5(tmp_path, capsys, weights_path):
    from PIL import Image

    thin = tmp_path / "thin.png"
    Image.new("RGB", (200, 24), (120, 80, 40)).save(thin)  # at 64 px: 64x7
    args = ["run", str(thin), str(thin), "-o", str(tmp_path / "o.png"), "--size", "64", "--steps", "1",
            "-q", "--weights", weights_path]
    assert cli.main(args) == 2  # block5_conv2 needs 16 px
    assert capsys.readouterr().err.strip() == (
        "nstcore: error: content image is 200x24; at 64 px its short side is 7 px, below the 16 px"
        " extractor 'vgg19' needs (use a larger --size)")
    assert cli.main(args + ["--content-layers", "block1_conv2", "--style-layers", "block1_conv1,block2_conv1"]) == 0
