"""Run progress on stderr: a live bar on a terminal, one plain line per step otherwise."""
from __future__ import annotations

import sys
from typing import Any, TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Shows step, loss, seconds per step and ETA (from the median of the steps after the first)."""

    def __init__(self, steps: int, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.steps = steps
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.durations: list[float] = []
        self._bar: Any = None
        self._task: Any = None
        if not quiet and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn

            self._bar = RichProgress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                                     TextColumn("{task.fields[status]}"),
                                     console=Console(file=self.stream), transient=False)
            self._task = self._bar.add_task("run", total=steps, status="tracing the graph...")
            self._bar.start()

    def eta(self, step: int) -> float | None:
        recent = sorted(self.durations[1:])  # the first step includes tracing
        if not recent:
            return None
        return recent[len(recent) // 2] * (self.steps - step)

    def update(self, info: Any) -> None:
        self.durations.append(info.seconds)
        if self.quiet:
            return
        eta = self.eta(info.step)
        status = (f"loss {info.total:.4g}  {info.seconds:.2f} s/step"
                  f"  ETA {'...' if eta is None else format_seconds(eta)}")
        if self._bar is not None:
            self._bar.update(self._task, completed=info.step, status=status)
        else:
            print(f"step {info.step}/{self.steps}  {status}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
