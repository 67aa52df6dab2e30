"""MkDocs hooks: the pages' generated parts, so nothing in the docs is written twice.

- ``<!-- cli: COMMAND -->`` becomes the reference of ``nstcore COMMAND``: every flag, its values
  and default, from the parser ``nstcore`` itself builds (run options from nstcore.settings, the
  flags plugins declare, the presets).
- ``<!-- results: FILE [view=VIEW] -->`` becomes a table rendered from
  ``benchmarks/results/FILE`` (:mod:`nstcore_benchmarks.render`): every figure in the docs comes
  from a committed result file.

A comment that names an unknown command, file or view fails the build.
"""
from __future__ import annotations

import argparse
import os
import re

os.environ.setdefault("NSTCORE_DISABLE_PLUGIN_AUTOLOAD", "1")  # the built-ins, not this machine's

RESULTS = re.compile(r"^<!-- results: (\S+)(?: view=(\w+))? -->$", re.M)
CLI = re.compile(r"^<!-- cli: ([\w-]+) -->$", re.M)


def _escape(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_reference(command: str) -> str:
    """The flags of ``nstcore COMMAND`` as a table, and its epilog (the presets) if any."""
    from nstcore.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command not in subparsers.choices:
        raise ValueError(f"docs: no nstcore command {command!r}")
    sub = subparsers.choices[command]
    usage = " ".join(sub.format_usage().split())
    rows = []
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        if action.nargs == 0:
            value = ""
        elif action.choices is not None and not isinstance(action.choices, dict):
            value = "`" + "`, `".join(map(str, action.choices)) + "`"
        else:
            value = f"`{action.metavar or action.dest.upper()}`"
        rows.append(f"| {name} | {_escape(value)} | {_escape(action.help or '')} |")
    text = [f"`{usage}`", "", "| flag | value | what it does |", "|---|---|---|", *rows]
    if sub.epilog:
        text += ["", "```text", sub.epilog.rstrip(), "```"]
    return "\n".join(text) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    from nstcore_benchmarks.render import render

    markdown = RESULTS.sub(lambda m: render(m.group(1), m.group(2)), markdown)
    return CLI.sub(lambda m: cli_reference(m.group(1)), markdown)
