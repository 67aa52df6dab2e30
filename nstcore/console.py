"""Messages to the person at the terminal: one line each, on stderr, prefixed ``nstcore:``.

Plugins use these too (a weights download in progress, a skipped option), so every line the
tool prints looks the same and stdout stays free for results.
"""
from __future__ import annotations

import sys
from typing import Any, Sequence


def info(message: str) -> None:
    """A progress or status line."""
    print(f"nstcore: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """Something the user should know that does not stop the command."""
    print(f"nstcore: warning: {message}", file=sys.stderr)


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns on stdout (``nstcore plugins``, ``nstcore weights``)."""
    print(format_table(header, rows))


def format_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, one line per row, the header first."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in cells)
