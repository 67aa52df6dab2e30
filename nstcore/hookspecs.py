"""The hooks a plugin can implement.

Registration hooks receive a ``register`` callback, as in llm and datasette::

    @nstcore.hookimpl
    def register_losses(register):
        register("meanstd", MeanStdLoss, description="match channel means and stds")

``register(name, factory, *, description="", options=(), backends=None)`` takes either a
callable that builds the component (usually its class) or a lazy ``"module:attribute"`` string,
so listing plugins need not import TensorFlow; ``options`` declares the keyword options the
factory takes (:class:`nstcore.options.Option`), which the core converts and checks before
calling it; ``backends`` the backends it runs on (``nstcore.backends.ALL`` for code written with
``keras.ops`` alone; default: the class's ``backends`` attribute, else TensorFlow alone), so a
run on another backend is refused before any work.
``register_commands`` adds subcommands to the ``nstcore`` command line. Lifecycle hooks let plugins
observe a run (save frames, log metrics) without a core change.

Hooks are called through pluggy (``pm.hook.<name>(...)``): ``tryfirst``/``trylast`` and hook
wrappers work as in pytest, and ``NSTCORE_TRACE_PLUGINS=1`` prints every call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from nstcore.engine import Result, StepInfo

PROJECT = "nstcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


@hookspec
def register_extractors(register: Register) -> None:
    """Register :class:`nstcore.extractor.FeatureExtractor` factories by name."""


@hookspec
def register_losses(register: Register) -> None:
    """Register :class:`nstcore.loss.Loss` factories by name (content, style or regulariser)."""


@hookspec
def register_solvers(register: Register) -> None:
    """Register :class:`nstcore.solver.Solver` factories by name."""


@hookspec
def register_executors(register: Register) -> None:
    """Register :class:`nstcore.executor.Executor` factories by name: where ``nstcore batch``
    runs its jobs (built-ins: ``local``, ``ray``)."""


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add subcommands: ``subparsers`` is the ``nstcore`` parser's argparse subparsers object.

    Give each new parser a handler with ``parser.set_defaults(handler=fn)``; ``fn(args)`` returns
    the exit status and may raise :class:`nstcore.errors.NstError` for a one-line error.
    """


@hookspec
def on_run_start(settings: Mapping[str, Any]) -> None:
    """Called once before the first step with the run's resolved settings."""


@hookspec
def on_step(step: "StepInfo") -> None:
    """Called after every step with its number, losses, timing and current image."""


@hookspec
def on_run_end(result: "Result") -> None:
    """Called once when a run ends (finished, interrupted or stopped on a non-finite loss)."""
