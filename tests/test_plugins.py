"""Plugins: registration, listing, use in a run, isolation of broken ones, conflicts."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import plugin_for_tests
from nstcore import cli, hookimpl
from nstcore.errors import InputError
from nstcore.plugins import get_plugin_manager

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _subprocess(args, env_extra=None, tmp_path=None):
    import os

    env = dict(os.environ, **(env_extra or {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "nstcore.cli", *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_builtins_are_listed_with_kind_name_distribution_and_version(capsys):
    assert cli.main(["plugins"]) == 0
    out = capsys.readouterr().out
    for kind, name in [("extractor", "vgg19"), ("loss", "content"), ("loss", "gram"),
                       ("loss", "tv"), ("solver", "adam"), ("solver", "lbfgs")]:
        line = next(l for l in out.splitlines() if l.split()[:2] == [kind, name])
        assert "nstcore" in line and "0.1.0" in line


def test_plugin_registered_in_a_test_is_listed_and_used_by_run(image_files, weights_path, capsys,
                                                                 tmp_path):
    get_plugin_manager().register(plugin_for_tests, "meancolour-plugin", distribution="tests",
                                  version="9.9")
    assert cli.main(["plugins", "--hooks"]) == 0
    out = capsys.readouterr().out
    assert any(l.split()[:5] == ["loss", "meancolour", "meancolour-plugin", "tests", "9.9"]
               for l in out.splitlines())
    assert "on_step, register_losses" in out
    content, style = image_files
    plugin_for_tests.steps_seen.clear()
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "2", "--losses", "content,meancolour", "--report",
                     str(tmp_path / "r.json"), "-q", "--weights", weights_path])
    assert code == 0
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["losses"][0]) == {"step", "total", "content", "meancolour"}
    assert report["losses"][0]["meancolour"] > 0
    assert [s for s, _ in plugin_for_tests.steps_seen] == [1, 2]  # the lifecycle hook ran


def test_env_module_plugin_is_loaded_in_a_fresh_process_without_tensorflow(tmp_path):
    import os

    code = ("import sys; from nstcore import cli; code = cli.main(['plugins']);"
            " assert 'tensorflow' not in sys.modules, 'tensorflow was imported'; sys.exit(code)")
    env = dict(os.environ, NSTCORE_PLUGINS="lazy_plugin_for_tests")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lazy_plugin_for_tests" in proc.stdout and "shout" in proc.stdout
    assert proc.stderr == ""


def test_broken_plugins_warn_in_one_line_and_the_rest_still_work(monkeypatch, capsys):
    monkeypatch.setenv("NSTCORE_PLUGINS", "no_such_module_xyz,plugin_for_tests")

    class RaisesOnRegister:
        @hookimpl
        def register_losses(self, register):
            raise RuntimeError("boom in registration")

    manager = get_plugin_manager()
    manager.register(RaisesOnRegister(), "broken-register", distribution="brokendist", version="1")
    names = manager.registry.names("loss")
    err = capsys.readouterr().err.strip().splitlines()
    assert "meancolour" in names and "gram" in names
    assert len(err) == 2
    assert "no_such_module_xyz" in err[0] and "ModuleNotFoundError" in err[0]
    assert "broken-register" in err[1] and "brokendist" in err[1] and "boom in registration" in err[1]


def test_a_plugin_can_be_disabled_by_name(monkeypatch):
    monkeypatch.setenv("NSTCORE_DISABLE_PLUGINS", "solvers")
    registry = get_plugin_manager().registry
    assert registry.names("solver") == []
    assert "gram" in registry.names("loss")
    with pytest.raises(InputError, match="unknown solver 'adam'"):
        registry.get("solver", "adam")


def _installed(site, dist, version, entry_point, module, hooks=None):
    """A distribution ``dist`` in the folder ``site`` whose ``nstcore`` entry point
    ``entry_point`` names ``module``; with ``hooks``, that module is written too."""
    if hooks is not None:
        (site / module).mkdir(parents=True)
        (site / module / "__init__.py").write_text("import nstcore\n" + textwrap.dedent(hooks))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[nstcore]\n{entry_point} = {module}\n")


def test_entry_point_plugins_load_and_autoload_can_be_turned_off(tmp_path):
    site = tmp_path / "site"
    _installed(site, "epgood", "1.2", "epgood", "epplugin_good", """
        @nstcore.hookimpl
        def register_solvers(register):
            register("noop", "epplugin_good:make")
    """)
    _installed(site, "epbroken", "1.2", "epbroken", "epplugin_missing")
    env = {"PYTHONPATH": str(site), "NSTCORE_DISABLE_PLUGIN_AUTOLOAD": "0"}
    proc = _subprocess(["plugins"], env, tmp_path)
    assert proc.returncode == 0
    assert any(l.split()[:5] == ["solver", "noop", "epgood", "epgood", "1.2"] for l in proc.stdout.splitlines())
    assert proc.stderr.count("\n") == 1 and "epbroken" in proc.stderr and "skipped" in proc.stderr
    proc = _subprocess(["plugins"], dict(env, NSTCORE_DISABLE_PLUGIN_AUTOLOAD="1"), tmp_path)
    assert proc.returncode == 0 and "noop" not in proc.stdout and proc.stderr == ""
    assert "adam" in proc.stdout


def test_an_entry_point_named_like_a_builtin_one_still_loads(tmp_path):
    """A package whose entry point is called "losses", as nstcore's own is, is not skipped."""
    site = tmp_path / "site"
    _installed(site, "nstcore-moments", "0.1", "losses", "epplugin_moments", """
        @nstcore.hookimpl
        def register_losses(register):
            register("moments", "nstcore_builtins.gram:GramStyleLoss")
    """)
    proc = _subprocess(["plugins"], {"PYTHONPATH": str(site), "NSTCORE_DISABLE_PLUGIN_AUTOLOAD": "0"},
                       tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[:4] for line in proc.stdout.splitlines()]
    assert ["loss", "moments", "nstcore-moments:losses", "nstcore-moments"] in rows, proc.stdout
    assert ["loss", "gram", "losses", "nstcore"] in rows, proc.stdout


@pytest.mark.parametrize("loss,expected", [
    ("numpymoments", "nstcore: error: loss 'numpymoments' from plugin 'mistakes' (tests 1.0) failed:"
                     " AttributeError: 'SymbolicTensor' object has no attribute 'numpy'; a loss runs"
                     " traced (tf.function, jax.jit): no .numpy(), no Python if/for on tensor values"),
    ("tuplehold", "nstcore: error: loss 'tuplehold' from plugin 'mistakes' (tests 1.0): hold() keeps"
                  " one tensor per name, but 'target' is a tuple of 2: hold each under its own name"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_an_authors_mistake_is_one_line_naming_the_plugin_in_a_dry_run_as_in_a_run(
        loss, expected, dry_run, image_files, tmp_path, capsys, weights_path):
    """--dry-run evaluates the objective as a run's step does (traced, with its gradient), so
    what fails in a run fails there too; TensorFlow's "in user code" trace is not repeated."""
    import mistakes_plugin

    from nstcore import cli

    get_plugin_manager().register(mistakes_plugin, "mistakes", distribution="tests", version="1.0")
    content, style = image_files
    out = tmp_path / "out.png"
    args = ["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "2",
            "--losses", f"content,{loss}"] + (["--dry-run"] if dry_run else [])
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected), err
    assert "in user code" not in err[0] and not out.exists()
