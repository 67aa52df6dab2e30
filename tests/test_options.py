"""Plugin options are declared, converted and checked before any image is read; a solver that
stops early says why; a plugin failing in its constructor is named."""
from __future__ import annotations

import json

import numpy as np
import pytest

import nstcore
from nstcore.testing import QuadraticObjective
from nstcore import cli, hookimpl
from nstcore.errors import InputError
from nstcore.options import Option
from nstcore.plugins import get_plugin_manager
from nstcore.solver import Solver, SolverStopped, Stepper

ADAM = "solver 'adam' from plugin 'solvers' (nstcore 0.1.0)"
LBFGS = "solver 'lbfgs' from plugin 'solvers' (nstcore 0.1.0)"

ROWS = {
    "learning_rate=abc": (["--optimizer", "adam", "--solver-option", "learning_rate=abc"],
                          f"{ADAM} option learning_rate: must be a finite number > 0, got 'abc'"),
    "learning_rate=-1": (["--optimizer", "adam", "--solver-option", "learning_rate=-1"],
                         f"{ADAM} option learning_rate: must be a finite number > 0, got '-1'"),
    "learning_rate=nan": (["--optimizer", "adam", "--solver-option", "learning_rate=nan"],
                          f"{ADAM} option learning_rate: must be a finite number > 0, got 'nan'"),
    "num_correction_pairs=-3": (["--optimizer", "lbfgs", "--solver-option", "num_correction_pairs=-3"],
                                f"{LBFGS} option num_correction_pairs: must be a whole number >= 1,"
                                " got '-3'"),
    "max_line_search_iterations=0": (["--optimizer", "lbfgs", "--steps", "3", "--solver-option",
                                      "max_line_search_iterations=0"],
                                     f"{LBFGS} option max_line_search_iterations: must be a whole"
                                     " number >= 1, got '0'"),
    "beta_1=1": (["--optimizer", "adam", "--solver-option", "beta_1=1"],
                 f"{ADAM} option beta_1: must be a finite number >= 0 and < 1, got '1'"),
    "unknown key": (["--optimizer", "adam", "--solver-option", "learnig_rate=0.1"],
                    f"{ADAM} has no option 'learnig_rate'; did you mean 'learning_rate'? (options:"
                    " beta_1, beta_2, epsilon, jit_compile, learning_rate)"),
    "extractor option": (["--extractor-option", "precision=float16"],
                         "extractor 'vgg19' from plugin 'extractors' (nstcore 0.1.0) option"
                         " precision: must be one of float32, bfloat16, auto, got 'float16'"),
    "loss option on a loss without options": (["--loss-option", "gram.scale=2"],
                                              "loss 'gram' from plugin 'losses' (nstcore 0.1.0) has"
                                              " no option 'scale' (options: none)"),
    "loss option for an unselected loss": (["--loss-option", "meanstd.epsilon=1"],
                                           "--loss-option names loss 'meanstd', which is not in"
                                           " --losses (content, gram, tv)"),
    "loss option without a dot": (["--loss-option", "epsilon=1"],
                                  "--loss-option must look like LOSS.KEY=VALUE, got 'epsilon=1'"),
    "xla is not a value flag": (["--xla", "--optimizer", "lbfgs", "--solver-option", "jit_compile=maybe"],
                                f"{LBFGS} option jit_compile: must be true or false, got 'maybe'"),
}


@pytest.mark.parametrize("case", sorted(ROWS))
def test_bad_plugin_option_is_one_line_exit_2_and_nothing_written(case, image_files, tmp_path, capsys):
    extra, message = ROWS[case]
    content, style = image_files
    before = sorted(p.name for p in tmp_path.iterdir())
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "2", "-q", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"nstcore: error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_options_are_checked_before_any_image_is_read(tmp_path):
    with pytest.raises(InputError, match="option learning_rate: must be a finite number > 0"):
        nstcore.stylize(tmp_path / "missing.png", tmp_path / "missing2.png", optimizer="adam",
                        solver_options={"learning_rate": -1.0})
    with pytest.raises(InputError, match="has no option 'learnig_rate'; did you mean 'learning_rate'"):
        nstcore.stylize(tmp_path / "missing.png", tmp_path / "missing2.png", optimizer="adam",
                        solver_options={"learnig_rate": 0.1})
    with pytest.raises(InputError, match=r"unknown option 'stpes'; did you mean 'steps'\?"):
        nstcore.stylize(tmp_path / "missing.png", tmp_path / "missing2.png", stpes=3)


def test_declared_values_reach_the_plugin_and_the_report(image_files, tmp_path, weights_path):
    content, style = image_files
    report = tmp_path / "r.json"
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "2", "-q", "--weights", weights_path, "--report", str(report),
                     "--optimizer", "adam", "--solver-option", "learning_rate=0.05",
                     "--solver-option", "beta_1=0.9"]) == 0
    plugins = json.loads(report.read_text())["plugins"]
    assert plugins["solver"]["options"] == {"learning_rate": 0.05, "beta_1": 0.9, "beta_2": 0.999,
                                            "epsilon": 0.1, "jit_compile": False}
    assert plugins["extractor"]["options"] == {"weights": weights_path, "precision": "auto",
                                               "pooling": "max", "padding": "zero"}


def test_option_declarations_convert_and_bound():
    rate = Option("rate", float, 1.0, above=0, below=1)
    assert rate.convert("0.5") == 0.5 and rate.convert(0.25) == 0.25
    for bad in ("0", "1", "inf", "-0.1", True, "x"):
        with pytest.raises(ValueError):
            rate.convert(bad)
    count = Option("count", int, 1, minimum=1, maximum=3)
    assert count.convert("3") == 3 and count.convert(2.0) == 2
    for bad in ("1.5", "4", "0", 1.5, False):
        with pytest.raises(ValueError):
            count.convert(bad)
    flag = Option("on", bool, False)
    assert flag.convert("yes") is True and flag.convert("0") is False
    names = Option("layers", "names", ("a",))
    assert names.convert("a, b,c") == ("a", "b", "c")
    with pytest.raises(ValueError, match="at least one name"):
        names.convert(" , ")
    with pytest.raises(ValueError, match="type must be one of"):
        Option("x", list, [])


# -- solvers that stop early ---------------------------------------------------------------------
class _StopsAtTwo(Solver):
    converged = True

    def start(self, objective, image):
        solver = self

        class _Stepper(Stepper):
            steps = 0

            def step(self):
                self.steps += 1
                if self.steps == 3:
                    raise SolverStopped("nothing left to improve" if solver.converged
                                        else "the line search found no lower loss",
                                        converged=solver.converged)
                total, terms = objective(image)
                return total, terms, self.steps

            def image(self):
                return image

        return _Stepper()


class _Failing(_StopsAtTwo):
    converged = False


class _Broken(Solver):
    def __init__(self):
        raise RuntimeError("no GPU kernels for this solver")

    def start(self, objective, image):  # pragma: no cover
        raise AssertionError


class _EarlyPlugin:
    @hookimpl
    def register_solvers(self, register):
        register("stops", _StopsAtTwo)
        register("fails", _Failing)
        register("broken", _Broken)


@pytest.mark.parametrize("solver,code,status,line", [
    ("stops", 0, "converged",
     "nstcore: the solver stopped after step 2 of 5: nothing left to improve"),
    ("fails", 4, "solver_failed",
     "nstcore: error: the solver stopped after step 2 of 5: the line search found no lower loss;"
     " saved the image of step 2 to {out}"),
])
def test_a_solver_that_stops_early_says_why(solver, code, status, line, image_files, tmp_path,
                                            capsys, weights_path):
    get_plugin_manager().register(_EarlyPlugin(), "early", distribution="earlydist", version="1.0")
    content, style = image_files
    out, report = tmp_path / "o.png", tmp_path / "r.json"
    result = cli.main(["run", str(content), str(style), "-o", str(out), "--size", "32", "--steps", "5",
                       "-q", "--optimizer", solver, "--weights", weights_path, "--report", str(report)])
    captured = capsys.readouterr()
    assert result == code
    assert captured.err.splitlines()[0] == line.format(out=out)
    data = json.loads(report.read_text())
    assert data["status"] == status and data["steps_done"] == 2
    assert data["message"] == line.split(": ", 1)[1].replace("error: ", "").split(";")[0]
    assert out.is_file()


def test_a_plugin_raising_in_its_constructor_is_named(image_files, tmp_path, capsys):
    get_plugin_manager().register(_EarlyPlugin(), "early", distribution="earlydist", version="1.0")
    content, style = image_files
    code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                     "--steps", "2", "--optimizer", "broken"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "nstcore: error: solver 'broken' from plugin 'early' (earlydist 1.0) failed to build:"
        " RuntimeError: no GPU kernels for this solver"]
    assert not (tmp_path / "o.png").exists()


def test_lbfgs_reports_a_genuine_convergence(weights_path):
    import tensorflow as tf

    from nstcore.plugins import get_plugin_manager

    component = get_plugin_manager().registry.get("solver", "lbfgs")
    solver = component.create(**component.resolve_options({}))
    target = tf.constant(np.full((1, 4, 4, 3), 0.25, np.float32))


    stepper = solver.start(QuadraticObjective(target), tf.constant(np.full((1, 4, 4, 3), 0.4, np.float32)))
    with pytest.raises(SolverStopped) as stop:
        for _ in range(50):
            stepper.step()
    assert stop.value.converged and "converged" in stop.value.reason
    np.testing.assert_allclose(np.asarray(stepper.image()), target.numpy(), atol=1e-4)


@pytest.mark.parametrize("value,message", [
    ("8.5", "margin: must be a whole number >= 0 and <= 256, got '8.5'"),
    ("-16", "margin: must be a whole number >= 0 and <= 256, got '-16'"),
])
def test_bad_margin_is_one_line(image_files, tmp_path, capsys, weights_path, value, message):
    content, style = image_files
    try:
        code = cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "32",
                         "--margin", value, "--weights", weights_path])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and not (tmp_path / "o.png").exists()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("nstcore: error: ") and message in err[0]


def test_preset_tutorial_is_the_tutorials_run_and_flags_override_it(image_files, tmp_path, weights_path):
    content, style = image_files
    report = tmp_path / "r.json"
    assert cli.main(["run", str(content), str(style), "-o", str(tmp_path / "o.png"), "--preset",
                     "tutorial", "--size", "32", "--steps", "2", "-q", "--weights", weights_path,
                     "--report", str(report), "--solver-option", "beta_1=0.9"]) == 0
    data = json.loads(report.read_text())
    settings, plugins = data["settings"], data["plugins"]
    assert settings["preset"] == "tutorial"
    assert (settings["scales"], settings["margin"], settings["optimizer"]) == ("1", 0, "adam")
    assert (settings["size"], settings["steps"]) == (32, 2)  # given: override the preset's 512, 1000
    assert plugins["solver"]["options"] == {"learning_rate": 0.02, "beta_1": 0.9, "beta_2": 0.999,
                                            "epsilon": 0.1, "jit_compile": False}
    assert plugins["extractor"]["options"]["precision"] == "float32"
    assert data["extractor"]["precision"] == "float32"
    assert [s["margin"] for s in data["scales"]] == [0]


def test_without_a_preset_the_defaults_are_nstcores_not_the_tutorials():
    from nstcore.settings import PRESETS, Settings

    defaults, tutorial = Settings(), Settings(preset="tutorial")
    assert defaults.preset is None and tutorial.preset == "tutorial"
    differing = {name for name in PRESETS["tutorial"].run
                 if getattr(defaults, name) != getattr(tutorial, name)}
    assert {"scales", "margin", "steps"} <= differing
    assert Settings(preset="tutorial", margin=8).margin == 8
    with pytest.raises(InputError, match="preset: must be one of tutorial, got 'tutoral'"):
        Settings(preset="tutoral")


def test_run_help_lists_each_preset_with_the_flags_it_stands_for(capsys):
    from nstcore.settings import PRESETS

    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    for preset in PRESETS.values():
        assert f"  {preset.name}: " in out
    assert "--scales 1 --steps 1000 --optimizer adam --margin 0" in " ".join(out.split())


def test_python_lists_stand_for_the_comma_lists_of_the_command_line():
    """stylize(..., style_blend=[0.7, 0.3], scales=[128, 256]) as a Python user writes them."""
    from nstcore.errors import InputError
    from nstcore.settings import Settings

    settings = Settings(style_blend=[0.7, 0.3], scales=[128, 256], scale_steps=(4, 2), size=256)
    assert (settings.style_blend, settings.scales, settings.scale_steps) == ("0.7,0.3", "128,256", [4, 2])
    with pytest.raises(InputError, match="preserve_color: must be one of"):
        Settings(preserve_color=["luminance", "histogram"])
    with pytest.raises(InputError, match="style_blend: must be a string"):
        Settings(style_blend=[True, False])
