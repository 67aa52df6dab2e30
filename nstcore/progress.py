"""Run progress on stderr: a live bar on a terminal, one plain line per step otherwise."""
from __future__ import annotations

import statistics
import sys
from typing import Any, Sequence, TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Shows step, loss, seconds per step and ETA.

    The ETA prices every step left at its own scale: a step's time is modelled as a fixed part
    plus a part per pixel, fitted to the median step time of each scale seen so far (one scale:
    proportional to its pixels), and each scale still to start adds the extra its first step took
    (tracing, targets) over its median. ``schedule`` gives (long side, steps, pixels per step) per
    scale; pixels default to the long side squared. Without it, one scale.
    """

    def __init__(self, steps: int, *, quiet: bool = False, stream: TextIO | None = None,
                 schedule: Sequence[tuple[int, ...]] | None = None) -> None:
        self.steps = steps
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.schedule = [(entry[0], entry[1], entry[2] if len(entry) > 2 else float(entry[0] or 1) ** 2)
                         for entry in (schedule or [(0, steps)])]
        self._scale = -1  # index into the schedule of the scale now running
        self._seen: dict[int, list[float]] = {}  # scale index -> its step times, first one first
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

    def _scale_of(self, step: int) -> int:
        """The scale a step belongs to by the schedule (when its size does not say)."""
        done = 0
        for index, (_, count, _) in enumerate(self.schedule):
            done += count
            if step <= done:
                return index
        return len(self.schedule) - 1

    def _model(self) -> tuple[float, float] | None:
        """(seconds per step at zero pixels, seconds per pixel) from the scales seen."""
        points = [(self.schedule[i][2], statistics.median(times[1:]))
                  for i, times in sorted(self._seen.items()) if len(times) > 1]
        if not points:
            return None
        if len(points) == 1 or len({p for p, _ in points}) == 1:
            pixels, seconds = points[-1]
            return 0.0, seconds / pixels
        xs, ys = [p for p, _ in points], [t for _, t in points]
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
        fixed = mean_y - slope * mean_x
        if slope <= 0 or fixed < 0:  # noise: price by pixels through the largest scale seen
            pixels, seconds = max(points)
            return 0.0, seconds / pixels
        return fixed, slope

    def eta(self) -> float | None:
        """Seconds left after the last step shown: the current scale's steps left, then each later
        scale's steps and its first step's extra."""
        model = self._model()
        if model is None:
            return None
        fixed, per_pixel = model
        extras = [times[0] - statistics.median(times[1:]) for times in self._seen.values() if len(times) > 1]
        first_extra = max(0.0, statistics.fmean(extras)) if extras else 0.0
        left = 0.0
        for index, (_, count, pixels) in enumerate(self.schedule):
            if index < self._scale:
                continue
            remaining = max(0, count - len(self._seen.get(index, [])))
            left += remaining * (fixed + per_pixel * pixels)
            if index > self._scale:
                left += first_extra
        return left

    def update(self, info: Any) -> None:
        sizes = [size for size, _, _ in self.schedule]
        size = getattr(info, "size", 0)
        index = sizes.index(size) if size and size in sizes else self._scale_of(info.step)
        # a scale's first step carries its set-up (targets, tracing): part of that scale's extra
        self._seen.setdefault(index, []).append(info.seconds + getattr(info, "setup_seconds", 0.0))
        self._scale = index
        if self.quiet:
            return
        eta = self.eta()
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
