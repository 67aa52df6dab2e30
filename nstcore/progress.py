"""Run progress on stderr: a live bar on a terminal, one plain line per step otherwise."""
from __future__ import annotations

import sys
from typing import Any, Sequence, TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Shows step, loss, seconds per step and ETA.

    The ETA assumes a step's time grows with the pixels of its scale (a pyramid's 4096-px steps
    take about 1000 times its 128-px ones): it takes the median seconds per pixel of the current
    scale's steps after its first (which traces and computes targets) and prices every step left
    at its own scale's size. ``schedule`` gives (long side, steps) per scale; without it, one scale.
    """

    def __init__(self, steps: int, *, quiet: bool = False, stream: TextIO | None = None,
                 schedule: Sequence[tuple[int, int]] | None = None) -> None:
        self.steps = steps
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.schedule = list(schedule or [(0, steps)])
        self._rates: list[float] = []  # seconds per pixel-unit, current scale, first step left out
        self._size: int | None = None
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

    def _cost(self, size: int) -> float:
        return float(size * size) if size else 1.0

    def _observe(self, seconds: float, size: int) -> None:
        if size != self._size:  # a new scale: its first step traces; start its rates afresh
            self._size, self._rates = size, []
            return
        self._rates.append(seconds / self._cost(size))

    def eta(self, step: int) -> float | None:
        if not self._rates:
            return None
        rate = sorted(self._rates)[len(self._rates) // 2]
        left, done = 0.0, 0
        for size, count in self.schedule:
            remaining = min(count, max(0, done + count - step))
            left += remaining * self._cost(size or (self._size or 0))
            done += count
        return rate * left

    def update(self, info: Any) -> None:
        self._observe(info.seconds, getattr(info, "size", 0) or 0)
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
