"""A run as a web page sees it: filled by the run's thread, read by the server's.

The run never waits on a page: :meth:`LiveRun.step` keeps a reference to the picture the engine
already copied and appends one small record; encoding the picture (JPEG) happens only when a
page asks for it, at most once per new picture. Pages follow the run through :meth:`events`,
a numbered log (one entry per step, per picture update at most every ``PICTURE_SECONDS``, and
per change of status), so a page that connects late, or reconnects, gets what it missed.
"""
from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

#: Pictures are offered to pages at most this often (a 512-px JPEG takes a few ms to encode).
PICTURE_SECONDS = 0.25
STATUSES = ("queued", "running", "finished", "failed", "interrupted")


class LiveRun:
    """One run's state for the page: settings, inputs, status, per-step losses and timings, the
    newest picture and, at the end, the output file."""

    def __init__(self, run_id: str, *, settings: dict[str, Any], inputs: dict[str, str],
                 schedule: Sequence[tuple[int, int, int]] = (), title: str = "") -> None:
        from nstcore.progress import Progress

        self.id = run_id
        self.settings = settings
        self.inputs = dict(inputs)  # name ("content", "style1", ...) -> file path
        self.title = title
        #: what started the run from ``nstcore serve`` (stored inputs and options), so a page can
        #: start it again with changes; None for ``run --web``
        self.request: dict[str, Any] | None = None
        self.status = "queued"
        self.message = ""
        self.output: Path | None = None
        self.created = time.time()
        self._schedule = list(schedule)
        self._progress = Progress(sum(s[1] for s in schedule) or 1, quiet=True,
                                  schedule=self._schedule or None)
        self._events: list[dict[str, Any]] = []
        self._picture: np.ndarray | None = None
        self._picture_version = 0
        self._encoded: tuple[int, bytes] | None = None
        self._last_offer = 0.0
        self._changed = threading.Condition()

    # -- written by the run's thread ---------------------------------------------------------
    def start(self, schedule: Sequence[tuple[int, int, int]] | None = None) -> None:
        """The run begins (``schedule``: (long side, steps, pixels) per scale, if known now)."""
        from nstcore.progress import Progress

        if schedule:
            self._schedule = list(schedule)
            self._progress = Progress(sum(s[1] for s in schedule), quiet=True, schedule=self._schedule)
        self._set_status("running")

    def step(self, info: Any) -> None:
        """After each step (an engine ``StepInfo``): its losses and timing; the picture is kept
        by reference and offered to pages at most every ``PICTURE_SECONDS``."""
        self._progress.update(info)
        eta = self._progress.eta()
        record = {"type": "step", "step": info.step, "steps": info.steps, "size": info.size,
                  "total": float(info.total), "terms": {k: float(v) for k, v in info.terms.items()},
                  "seconds": float(info.seconds), "elapsed": float(info.elapsed),
                  "eta": None if eta is None else float(eta)}
        with self._changed:
            self._picture = np.asarray(info.image)[0]
            self._picture_version += 1
            self._append(record)
            now = time.monotonic()
            if now - self._last_offer >= PICTURE_SECONDS:
                self._last_offer = now
                self._append({"type": "picture", "version": self._picture_version,
                              "height": int(self._picture.shape[0]),
                              "width": int(self._picture.shape[1])})

    def finish(self, status: str, message: str = "", output: Path | None = None,
               picture: np.ndarray | None = None) -> None:
        """The run ended: ``status`` (finished, failed, interrupted), a one-line message, the
        written output file (None when nothing was written) and the final picture."""
        with self._changed:
            if picture is not None:
                self._picture = np.asarray(picture)
                self._picture_version += 1
            self.output = Path(output) if output is not None else None
            self.message = message
            if self._picture is not None:
                self._append({"type": "picture", "version": self._picture_version,
                              "height": int(self._picture.shape[0]),
                              "width": int(self._picture.shape[1])})
        self._set_status(status)

    def _set_status(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._changed:
            self.status = status
            self._append({"type": "status", "status": status, "message": self.message,
                          "output": self.output.name if self.output else None})

    def _append(self, event: dict[str, Any]) -> None:
        event["id"] = len(self._events) + 1
        self._events.append(event)
        self._changed.notify_all()

    # -- read by the server ------------------------------------------------------------------
    def events(self, after: int = 0, timeout: float = 0.0) -> list[dict[str, Any]]:
        """The events numbered above ``after``, waiting up to ``timeout`` s for one."""
        with self._changed:
            if len(self._events) <= after and timeout > 0:
                self._changed.wait(timeout)
            return list(self._events[after:])

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed", "interrupted")

    def picture_jpeg(self, quality: int = 90) -> bytes | None:
        """The newest picture as JPEG (encoded once per new picture), or None before the first."""
        from PIL import Image

        with self._changed:
            picture, version = self._picture, self._picture_version
            if self._encoded is not None and self._encoded[0] == version:
                return self._encoded[1]
            if picture is None and (self.output is None or not self.output.is_file()):
                return None
        buffer = io.BytesIO()
        if picture is None:  # an earlier run known only by its file
            with Image.open(self.output) as image:
                image.convert("RGB").save(buffer, format="JPEG", quality=quality)
        else:
            pixels = np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
        data = buffer.getvalue()
        with self._changed:
            self._encoded = (version, data)
        return data

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to draw the run as it is now (the events replay the rest)."""
        return {"id": self.id, "title": self.title, "status": self.status, "message": self.message,
                "settings": self.settings, "inputs": sorted(self.inputs),
                "schedule": [{"size": s, "steps": n} for s, n, _ in self._schedule],
                "output": self.output.name if self.output else None, "created": self.created,
                "request": self.request}
