"""The ``nstcore`` command line.

TensorFlow is imported only by commands that compute (``run``, ``demo``, ``weights fetch``), so
``nstcore --help`` and ``nstcore plugins`` answer at once. The run flags come from the option
tables (:mod:`nstcore.settings` and the options plugins declare); plugins add subcommands through
the ``register_commands`` hook. Every user error is one line on stderr
and a non-zero exit status; no output file is created unless the run produced it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from nstcore import __version__
from nstcore.errors import InputError, NstError, one_line

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_NONFINITE = 3
EXIT_SOLVER_FAILED = 4  # the solver could not go on (e.g. line search failed); image saved


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other nstcore error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"nstcore: error: {message} (see `{self.prog} --help`)\n")


def _whole(text: str) -> int:
    """Whole numbers >= 1 for the non-run commands (bench rounds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _percent(text: str) -> float:
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


def _option_type(option: Any):
    """An argparse type from a declared option: its own conversion and its one-line complaint."""
    from nstcore.options import OptionValueError

    def parse(text: str) -> Any:
        try:
            return option.convert(text)
        except OptionValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option.name
    return parse


def build_parser() -> argparse.ArgumentParser:
    from nstcore.plugins import get_plugin_manager

    parser = _Parser(prog="nstcore", description="Neural style transfer (Gatys et al.) on TensorFlow,"
                     " with plugins for extractors, losses and solvers.")
    parser.add_argument("--version", action="version", version=f"nstcore {__version__}")
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="stylise CONTENT with STYLE and write an image",
                         description="Stylise CONTENT with STYLE. The defaults are nstcore's (the"
                         " best picture per unit of time measured); --preset tutorial gives the"
                         " TensorFlow tutorial's run.", epilog=_presets_epilog(),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("content", help="content image (PNG, JPEG, ...)")
    run.add_argument("style", nargs="+", help="style image; several are blended (--style-blend)")
    run.add_argument("-o", "--output", default="stylized.png", help="output image (default: %(default)s)")
    _add_run_options(run)

    demo = sub.add_parser("demo", help="stylise the bundled astronaut with The Starry Night",
                          description="`nstcore run` with its defaults on images shipped with"
                          " nstcore (every run option works here too).", epilog=_presets_epilog(),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("-o", "--output", default="nstcore-demo.png", help="output image (default: %(default)s)")
    _add_run_options(demo)

    batch = sub.add_parser("batch", help="stylise a folder or a manifest of images, resumably",
                           description="Run one job per content image and style (a folder crossed"
                           " with every STYLE, or a manifest: CSV or JSONL with content, style(s),"
                           " output and run options per row). Finished jobs are skipped on a"
                           " rerun; the results file gets one line per job.")
    batch.add_argument("input", help="folder of content images (or of numbered frames with"
                       " --frames), or a manifest .csv/.jsonl")
    batch.add_argument("styles", nargs="*", metavar="style",
                       help="style image(s): each is crossed with every content (a manifest row"
                       " without a style uses them)")
    batch.add_argument("--out-dir", required=True, metavar="DIR", help="where outputs, their"
                       " report JSON and the results file go (created if missing)")
    batch.add_argument("--format", default="png", choices=("png", "jpg", "webp", "tif"),
                       help="output format of the folder's jobs (default: %(default)s)")
    batch.add_argument("--results", metavar="FILE.jsonl",
                       help="results file (default: DIR/results.jsonl)")
    batch.add_argument("--force", action="store_true", help="redo jobs already recorded as done")
    batch.add_argument("--frames", action="store_true", help="INPUT is a video's frames: one job"
                       " per frame, in order, each starting from the previous stylised frame")
    batch.add_argument("--executor", default="local", metavar="NAME",
                       help="where jobs run: local (default), ray, or any registered")
    batch.add_argument("--executor-option", dest="executor_options", type=_key_value,
                       action="append", default=[], metavar="KEY=V",
                       help="option of the executor (repeatable)")
    _add_shorthand_flags(batch, ("executor",), "executor_shorthand_")
    _add_run_options(batch, one_run=False)

    serve = sub.add_parser("serve", help="a local web app: start runs from the browser, watch"
                           " them form, see past results (needs nstcore[web])",
                           description="Serve a page to upload a content image and styles, choose"
                           " the main options, start runs (one at a time, the rest queued) and"
                           " watch them; results and their reports go to --out-dir, whose earlier"
                           " results the page shows too.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s;"
                       " anything else exposes the page to the network)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0: a"
                       " free one)")
    serve.add_argument("--out-dir", default="nstcore-serve", metavar="DIR",
                       help="where uploads, results and reports go (default: %(default)s)")
    serve.add_argument("--executor", default="local", metavar="NAME",
                       help="where runs execute: local (default: this process, steps shown as"
                       " they happen), ray, or any registered")
    serve.add_argument("--executor-option", dest="executor_options", type=_key_value,
                       action="append", default=[], metavar="KEY=V",
                       help="option of the executor (repeatable)")

    plot = sub.add_parser("plot", help="draw a run report's losses per step (needs nstcore[plot])",
                          description="Each weighted loss term and the total per step, log scale,"
                          " from a report written by `nstcore run --report FILE.json`.")
    plot.add_argument("report", help="run report (JSON)")
    plot.add_argument("-o", "--output", default="losses.png",
                      help="image to write: .png, .svg or .pdf (default: %(default)s)")

    plugins = sub.add_parser("plugins", help="list loaded plugins and what they register")
    plugins.add_argument("--hooks", action="store_true", help="show the hooks each plugin implements")
    plugins.add_argument("--options", metavar="NAME",
                         help="list the options the component NAME declares (e.g. adam, vgg19)")

    bench = sub.add_parser("bench", help="time train steps (CPU vs GPU, vs the tutorial, vs matmul)",
                           description="Run the pytest-benchmark harness in benchmarks/ and print a"
                           " table; timings are normalised by a matmul calibration and the"
                           " tutorial's own step measured in the same run.")
    bench.add_argument("--sizes", type=_names, metavar="PX,...",
                       help="image long sides for the train-step rows (default: 64,128, or none"
                       " when --quality or --memory is given; 256,512 for real sizes)")
    bench.add_argument("--quality", type=_names, default=[], metavar="PX,...",
                       help="time nstcore's defaults (and --optimizer lbfgs) to the objective value"
                       " 1000 tutorial Adam steps reach at these sizes (heavy: see README)")
    bench.add_argument("--memory", type=_names, default=[], metavar="PX,...",
                       help="peak RSS and step time of one final-size run per --memory-tiles value")
    bench.add_argument("--memory-tiles", type=_names, default=["off", "256", "512", "auto"],
                       metavar="T,...", help="--tile values for --memory (default: off,256,512,auto)")
    bench.add_argument("--backends", type=_names, metavar="tensorflow,jax,torch",
                       help="time nstcore's Adam step on each of these backends, each in a process"
                       " of its own, against the tutorial's step (measured on tensorflow), on"
                       " --devices, at --sizes, in --precision; --rounds steps after the first")
    bench.add_argument("--solvers", type=_names, default=["adam", "lbfgs"], metavar="A,B")
    bench.add_argument("--devices", type=_names, default=["cpu", "gpu"], metavar="cpu,gpu")
    bench.add_argument("--compile", type=_names, default=["graph", "xla"], metavar="graph,xla")
    bench.add_argument("--precision", type=_names, default=["float32"], metavar="float32,bfloat16")
    bench.add_argument("--rounds", type=_whole, default=5, help="timed steps per row (default: %(default)s)")
    bench.add_argument("--min-time", type=_percent, default=2.0, metavar="SECONDS",
                       help="time each row for at least this long: short steps get more rounds"
                       " (default: %(default)s)")
    bench.add_argument("--run-loop", action="store_true",
                       help="also time Adam steps through the engine's whole run loop")
    bench.add_argument("--json", default="nstcore-bench.json", metavar="FILE",
                       help="pytest-benchmark JSON output (default: %(default)s)")
    bench.add_argument("--compare", metavar="BASELINE",
                       help="a saved run (pytest-benchmark JSON) or baseline file to compare with")
    bench.add_argument("--fail-above", type=_percent, metavar="PCT",
                       help="with --compare: exit 1 if a gated figure got worse by more than PCT %%")
    bench.add_argument("--save-baseline", metavar="FILE", help="write a baseline file (this run,"
                       " or with --baseline-from the median of saved runs per row)")
    bench.add_argument("--baseline-from", nargs="+", metavar="RUN.json",
                       help="with --save-baseline: build it from these saved runs, timing nothing")

    new = sub.add_parser("new-plugin", help="write a loss plugin skeleton to start from",
                         description="Write nstcore-NAME/: pyproject with the entry point, a loss,"
                         " tests using nstcore.testing. Then: pip install -e nstcore-NAME")
    new.add_argument("name", help="loss name, e.g. 'brightness' (lower case)")
    new.add_argument("--dir", default=".", help="parent folder (default: current)")

    get_plugin_manager().commands(sub)  # plugins' own subcommands (nstcore weights, ...)
    return parser


def _presets_epilog() -> str:
    """``--preset`` values with the flags each stands for (from :data:`nstcore.settings.PRESETS`)."""
    from nstcore.settings import PRESETS

    lines = ["presets (--preset NAME; explicit flags override a preset's values):"]
    for preset in PRESETS.values():
        lines.append(f"  {preset.name}: {preset.help}")
        lines.append(f"    = {preset.flags()}")
    return "\n".join(lines)


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                        help="skip this plugin (repeatable; also NSTCORE_DISABLE_PLUGINS)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's own start-up messages")


def _add_shorthand_flags(p: argparse.ArgumentParser, kinds: Sequence[str], prefix: str) -> None:
    """The flags plugins of ``kinds`` declare (``--weights``, ``--ray-address``), each stored as
    ``PREFIX<keyword>``."""
    from nstcore.plugins import get_plugin_manager

    for keyword, owners in sorted(get_plugin_manager().registry.shorthand_keywords(kinds).items()):
        declared = next(o for o in owners[0].options if o.keyword == keyword)
        whose = ", ".join(f"{c.kind} '{c.name}'" for c in owners)
        help_text = f"{declared.help} (option {declared.name} of {whose})"
        if declared.type is bool:
            p.add_argument(declared.flag, dest=f"{prefix}{keyword}", action="store_true",
                           help=help_text)
        else:
            p.add_argument(declared.flag, dest=f"{prefix}{keyword}", metavar=_metavar(declared),
                           help=help_text)


def _add_run_options(p: argparse.ArgumentParser, one_run: bool = True) -> None:
    """The run flags, from nstcore.settings and from the shorthands plugins declare; with
    ``one_run`` False (``nstcore batch``) without the flags that name one run's own files."""
    from nstcore.plugins import RUN_KINDS
    from nstcore.settings import MAP_OPTIONS, RUN_OPTIONS, flag_of

    for option in RUN_OPTIONS:
        shown = "none" if option.default is None else (
            ",".join(option.default) if option.type == "names" else option.default)
        # only flags the user gives reach Settings, so a --preset fills the rest
        p.add_argument(flag_of(option.name), dest=option.name, type=_option_type(option),
                       default=argparse.SUPPRESS, metavar=_metavar(option),
                       help=f"{option.help} ({option.accepted()}; default: {shown})"
                       if option.default is not None else f"{option.help} ({option.accepted()})")
    for option in MAP_OPTIONS:
        p.add_argument(option.flag, dest=option.name, type=_key_value, action="append",
                       default=[], metavar=option.metavar, help=option.help)
    _add_shorthand_flags(p, RUN_KINDS, "shorthand_")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=8,
                   help="bits per channel of the output: 16 needs .png or .tif (default: 8)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    if not one_run:
        return
    p.add_argument("--report", metavar="FILE.json", help="write a JSON report of the run")
    p.add_argument("--plot", metavar="FILE.png", help="draw the losses per step (.png, .svg, .pdf;"
                   " needs nstcore[plot])")
    p.add_argument("--save-every", type=_whole, metavar="N", help="also save the image every N steps")
    p.add_argument("--dry-run", action="store_true",
                   help="print each loss's value at the start image (weighted and not) and exit;"
                   " helps choose weights")
    p.add_argument("--web", nargs="?", const="", metavar="[HOST:]PORT",
                   help="watch the picture form in a browser: a local page (127.0.0.1 and a free"
                   " port unless given; needs nstcore[web]); it stays after the run until Ctrl-C")


#: Run options whose values have a shape of their own (the generic "NAME" would mislead).
_SHAPED = {"scales": "auto|1|PX,...", "scale_steps": "N,...", "tile": "auto|off|PX",
           "style_blend": "W,W,...", "init": "content|noise|style|FILE",
           "content_layers": "NAME[:W],...", "style_layers": "NAME[:W],..."}


def _metavar(option: Any) -> str:
    if option.name in _SHAPED:
        return _SHAPED[option.name]
    if option.choices is not None:
        return "{" + ",".join(map(str, option.choices)) + "}"
    return {int: "N", float: "X", str: "NAME", "path": "PATH", "names": "A,B,..."}.get(option.type, "V")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(add_help=False)
    _add_global_options(early)
    known, _ = early.parse_known_args(argv)
    if known.disable_plugin:
        from nstcore.plugins import DISABLE_ENV

        names = [n for n in os.environ.get(DISABLE_ENV, "").split(",") if n] + known.disable_plugin
        os.environ[DISABLE_ENV] = ",".join(names)
    if known.verbose:
        os.environ["NSTCORE_VERBOSE"] = "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command == "run":
            return _run(args, args.content, args.style)
        if args.command == "demo":
            from nstcore.run import asset

            return _run(args, str(asset("astronaut.png")), [str(asset("starry_night.jpg"))])
        if args.command == "plugins":
            return _plugins(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "plot":
            from nstcore.plot import check_plot_path, plot_losses, read_losses

            check_plot_path(args.output, inputs=(args.report,))
            losses, scales = read_losses(args.report)
            print(f"wrote {plot_losses(losses, scales, args.output, title=Path(args.report).name)}")
            return 0
        if args.command == "new-plugin":
            from nstcore.scaffold import new_plugin

            print(f"wrote {new_plugin(args.name, Path(args.dir))}")
            return 0
        if args.command == "bench":
            from nstcore.benchcli import run_bench

            return run_bench(args)
        if getattr(args, "handler", None) is not None:
            return int(args.handler(args) or 0)
        parser.print_help()
        return 0
    except NstError as exc:
        _error(one_line(exc))
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
    """Settings from parsed flags: the run options, the option maps and plugin shorthands."""
    from nstcore.settings import Settings

    return Settings(**run_values(args))


def run_values(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Settings`` keywords the parsed flags give."""
    from nstcore.settings import MAP_OPTIONS, RUN_OPTIONS

    values: dict[str, Any] = {o.name: getattr(args, o.name) for o in RUN_OPTIONS if hasattr(args, o.name)}
    for option in MAP_OPTIONS:
        values[option.name] = dict(getattr(args, option.name))
    loss_options: dict[str, dict[str, str]] = {}
    for key, value in args.loss_options:
        loss, dot, name = key.partition(".")
        if not dot or not loss or not name:
            raise InputError(f"--loss-option must look like LOSS.KEY=VALUE, got '{key}={value}'")
        loss_options.setdefault(loss, {})[name] = value
    values["loss_options"] = loss_options
    for name, value in vars(args).items():
        if name.startswith("shorthand_") and value not in (None, False):
            values[name[len("shorthand_"):]] = value
    return values


def _run(args: argparse.Namespace, content: str, styles: list[str]) -> int:
    from nstcore.imageio import check_output_format, check_output_path, save_image
    from nstcore.progress import Progress
    from nstcore.run import prepare_run

    started = time.perf_counter()
    settings = settings_from_args(args)
    if args.dry_run:
        return _dry_run(settings, content, styles)
    output = check_output_path(args.output, (content, *styles))
    check_output_format(output, args.bit_depth)
    report_path = _check_report_path(args.report, (content, *styles, output))
    plot_path = None
    if args.plot is not None:
        from nstcore.plot import check_plot_path

        avoid = tuple(p for p in (content, *styles, output, report_path) if p is not None)
        plot_path = check_plot_path(args.plot, "--plot", avoid)
    address = _web_address(args)
    prepared = prepare_run(settings, content, styles)
    progress = Progress(sum(prepared.steps), quiet=args.quiet, schedule=prepared.schedule())
    page = _open_page(address, settings, prepared, content, styles) if address else None

    def on_step(info: Any) -> None:
        progress.update(info)
        if page is not None:
            page.step(info)
        if args.save_every and info.step % args.save_every == 0 and info.step < progress.steps:
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
    prepared.write(result, output, bit_depth=args.bit_depth, report=report_path,
                   inputs={"content": str(content), "style": ", ".join(map(str, styles)),
                           "styles": [str(s) for s in styles]})
    if plot_path is not None and result.losses:
        from nstcore.plot import plot_losses

        plot_losses(result.losses, result.scales, plot_path, title=Path(output).name)
    code = _report_end(result, output, terminated, started,
                       "".join(f", {name} {path}" for name, path in (("report", report_path),
                                                                     ("plot", plot_path)) if path))
    if page is not None:
        status = {0: "finished", EXIT_INTERRUPTED: "interrupted", EXIT_TERMINATED: "interrupted"}
        page.finish(status.get(code, "failed"), result.message, output, result.image)
        _linger(page)
    return code


def _report_end(result: Any, output: Path, terminated: list, started: float, extras: str) -> int:
    """The closing line (or the one-line error) of a run; its exit status."""
    if result.stopped == "interrupted":
        cause = " (terminated)" if terminated else ""
        _error(f"{result.message}{cause}; saved the current image to {output}")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    if result.stopped == "nonfinite":
        _error(f"{result.message}; saved it to {output}")
        return EXIT_NONFINITE
    if result.stopped == "solver_failed":
        _error(f"{result.message}; saved the image of step {result.steps} to {output}")
        return EXIT_SOLVER_FAILED
    if result.stopped == "converged":
        _info(result.message)
    from nstcore.progress import format_seconds

    print(f"wrote {output} in {format_seconds(time.perf_counter() - started)}"
          f" ({scale_summary(result)}{extras})")
    return 0


def scale_summary(result: Any) -> str:
    """Steps and median seconds per step of each scale: '128 px 100 steps 0.061 s/step; ...'."""
    return "; ".join(f"{t['size']} px {t['steps']} steps {t['median_step_seconds']:.3f} s/step"
                     for t in result.scale_timings()) or "0 steps"


# -- the web pages -------------------------------------------------------------------------------
def _web_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """``--web [HOST:]PORT`` checked before any work (and the web extra with it), or None."""
    if getattr(args, "web", None) is None:
        return None
    from nstcore.web import parse_address, require_web

    require_web()
    return parse_address(args.web)


def _serve_at(app: Any, host: str, port: int, what: str) -> Any:
    """Start ``app`` on host:port (a warning first when that is not loopback); the server."""
    from nstcore.web import Server, exposure_warning

    warning = exposure_warning(host)
    if warning:
        from nstcore.console import warn

        warn(warning)
    server = Server(app, host, port).start()
    _info(f"{what} at {server.url}")
    return server


class _Page:
    """``run --web``: the run's live state and the server showing it."""

    def __init__(self, live: Any, server: Any) -> None:
        self.live, self.server = live, server

    def step(self, info: Any) -> None:
        self.live.step(info)

    def finish(self, status: str, message: str, output: Path, picture: Any) -> None:
        self.live.finish(status, message, output if Path(output).is_file() else None, picture)


def _open_page(address: tuple[str, int], settings: Any, prepared: Any, content: str,
               styles: list[str]) -> _Page:
    from nstcore.live import LiveRun
    from nstcore.studio import new_run_id
    from nstcore.web import live_app

    inputs = {"content": str(content), **{f"style{i + 1}": str(s) for i, s in enumerate(styles)}}
    live = LiveRun(new_run_id(), settings=json.loads(json.dumps(settings.as_dict(), default=str)),
                   inputs=inputs, schedule=prepared.schedule(),
                   title=f"{Path(content).name} x {', '.join(Path(s).name for s in styles)}")
    server = _serve_at(live_app(live), *address, "watch the run")
    live.start(prepared.schedule())
    return _Page(live, server)


def _linger(page: _Page) -> None:
    """After the run: keep the page (final picture, download) until Ctrl-C or SIGTERM."""
    _info(f"the run has ended; its page stays at {page.server.url} until Ctrl-C")
    _wait_for_interrupt()
    page.server.stop()


def _wait_for_interrupt() -> None:
    """Sleep until Ctrl-C or SIGTERM."""
    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _dry_run(settings: Any, content: str, style: Any) -> int:
    """Each loss's unweighted value, weight and weighted value at the start image; writes nothing."""
    from nstcore.console import table
    from nstcore.run import prepare_run

    prepared = prepare_run(settings, content, style)
    rows = prepared.engine.initial_terms(prepared.content, prepared.style, prepared.init,
                                         prepared.blend)
    table(("LOSS", "PLUGIN", "ROLE", "UNWEIGHTED", "WEIGHT", "WEIGHTED"),
          [(r["name"], r["plugin"], r["role"], f"{r['value']:.4g}", f"{r['weight']:.4g}",
            f"{r['weighted']:.4g}") for r in rows])
    return 0


def _check_report_path(report: str | None, avoid: tuple) -> Path | None:
    from nstcore.files import check_new_file

    if report is None:
        return None
    return check_new_file(report, {".json"}, what="report", flag="--report", inputs=avoid)


def _snapshot_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}_step{step:05d}{output.suffix}")


# -- batch ---------------------------------------------------------------------------------------
EXIT_BATCH_FAILED = 1  # some jobs failed; the others are done and recorded


def _batch(args: argparse.Namespace) -> int:
    from nstcore.batch import plan_batch, run_batch
    from nstcore.imageio import check_output_format
    from nstcore.settings import Settings

    common = run_values(args)
    Settings(**common)  # every shared option checked before any job
    check_output_format(f"output.{args.format}", args.bit_depth)
    executor = build_executor(args)
    plan = plan_batch(args.input, args.styles, args.out_dir, common=common, suffix=f".{args.format}",
                      frames=args.frames, results=args.results, bit_depth=args.bit_depth)
    summary = run_batch(plan, executor, common, force=args.force, quiet=args.quiet)
    where = ", ".join(f"{k} {v}" for k, v in summary.executor.items() if k != "executor")
    line = (f"{summary.done} done, {summary.failed} failed, {summary.skipped} skipped (already done)"
            f" in {summary.seconds:.1f} s on {args.executor}{' (' + where + ')' if where else ''};"
            f" results in {plan.results}")
    if summary.interrupted:
        _error(f"interrupted: {line}; run the same command again to finish")
        return EXIT_INTERRUPTED
    print(line)
    return EXIT_BATCH_FAILED if summary.failed else 0


def build_executor(args: argparse.Namespace) -> Any:
    """The named executor with its options checked (``--executor-option`` and its own flags)."""
    from nstcore.plugins import get_plugin_manager

    component = get_plugin_manager().registry.get("executor", args.executor)
    values = dict(args.executor_options)
    for name, value in vars(args).items():
        if not name.startswith("executor_shorthand_") or value in (None, False):
            continue
        keyword = name[len("executor_shorthand_"):]
        option = next((o for o in component.options if o.keyword == keyword), None)
        if option is None:
            flag = get_plugin_manager().registry.shorthand_flag(keyword, ("executor",))
            raise InputError(f"{flag} is not an option of executor '{args.executor}'"
                             f" ({', '.join(o.flag or o.name for o in component.options) or 'it has none'})")
        values.setdefault(option.name, value)
    return component.create(**component.resolve_options(values))


# -- serve ---------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    from nstcore.web import require_web

    require_web()
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be from 0 to 65535, got {args.port}")
    from nstcore.plugins import get_plugin_manager
    from nstcore.studio import Studio
    from nstcore.web import serve_app

    executor = build_executor(args)
    studio = Studio(Path(args.out_dir), executor)
    get_plugin_manager().register(studio, "nstcore-serve", distribution="nstcore",
                                  source="nstcore serve: feeds each run's page")
    server = _serve_at(serve_app(studio), args.host, args.port, "nstcore serve")
    _wait_for_interrupt()
    server.stop()
    return 0


# -- plugins -------------------------------------------------------------------------------------
def _plugins(args: argparse.Namespace) -> int:
    from nstcore.console import table
    from nstcore.options import describe_options
    from nstcore.plugins import get_plugin_manager

    manager = get_plugin_manager()
    registry = manager.registry
    if args.options:
        found = [c for c in registry.all() if c.name == args.options]
        if not found:
            known = ", ".join(sorted({c.name for c in registry.all()}))
            raise InputError(f"no plugin component named '{args.options}' (known: {known})")
        for component in found:
            print(f"{component.kind} '{component.name}' from plugin {component.plugin.label()}:")
            if component.options:
                table(("OPTION", "ACCEPTS", "DEFAULT", "HELP"), describe_options(component.options))
            else:
                print("  (no options)")
        return 0
    from nstcore.plugins import RUN_KINDS

    rows = [(c.kind, c.name, c.plugin.name, c.plugin.distribution, c.plugin.version,
             ",".join(c.backends) if c.kind in RUN_KINDS else "-",
             "NAME CLASH: " + c.description if registry.clashes(c) else c.description)
            for c in registry.all()]
    table(("KIND", "NAME", "PLUGIN", "DISTRIBUTION", "VERSION", "BACKENDS", "DESCRIPTION"), rows)
    if args.hooks:
        print()
        hook_rows = [(info.name, info.distribution, info.version, ", ".join(manager.hooks_of(name)),
                      info.source) for name, info in sorted(manager.info.items())]
        table(("PLUGIN", "DISTRIBUTION", "VERSION", "HOOKS", "SOURCE"), hook_rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
