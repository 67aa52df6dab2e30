"""What ``nstcore serve`` keeps: uploaded images, the queue of runs, and past results.

Runs go through the same executors as ``nstcore batch`` (one job each, one at a time, in the
order they were started); the local executor runs them in this process, where the ``on_step``
hook feeds each run's page as it forms. An executor that runs jobs elsewhere (``ray``) reports
each job when it ends.

Uploads are read like any input (:func:`nstcore.imageio.load_image_data`: size, decompression
bombs, format) before they are kept, and are stored as ``uploads/<sha256 prefix>.<format>``: the
client's file name is shown, never used as a path. Results are ``<run id>.png`` with the run's
report ``<run id>.json`` beside it in the output folder, so a later ``serve`` on the same folder
shows them in its gallery.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from nstcore import hookimpl
from nstcore.errors import InputError
from nstcore.live import LiveRun

#: The largest upload accepted, in bytes (an image is also refused above NSTCORE_MAX_PIXELS).
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: The run options the page offers (each checked by nstcore.settings like any run's).
FORM_OPTIONS = ("preset", "size", "optimizer", "steps", "style_weight", "preserve_color",
                "style_blend")
UPLOAD_NAME = re.compile(r"^[0-9a-f]{16}\.(png|jpg|webp|tif|bmp|gif)$")
RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")
SUFFIXES = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp", "GIF": "gif",
            "MPO": "jpg"}


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


class Studio:
    """Uploads, queue and gallery of one ``serve`` process (its output folder ``out_dir``)."""

    def __init__(self, out_dir: Path, executor: Any, common: Mapping[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.uploads = self.out_dir / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.executor = executor
        self.common = dict(common or {})
        self.runs: dict[str, LiveRun] = {}
        self._earlier: dict[str, LiveRun] = {}  # results of earlier serve sessions, read once
        self.current: LiveRun | None = None
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="nstcore-serve-queue", daemon=True)
        self._worker.start()

    # -- uploads -------------------------------------------------------------------------------
    def store_upload(self, chunks: Iterable[bytes], label: str) -> str:
        """Keep an uploaded image (its bytes in ``chunks``) under a generated name; refuse, in
        one line naming ``label``, what is too large or not an image nstcore reads."""
        from nstcore.imageio import load_image_data

        digest, size = hashlib.sha256(), 0
        handle, temporary = tempfile.mkstemp(dir=self.uploads, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise InputError(f"{label} is larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise InputError(f"{label} is empty")
            try:
                load_image_data(temporary)
            except InputError as exc:
                reason = str(exc).split(": ", 1)[-1]
                raise InputError(f"{label} cannot be used: {reason}") from None
            from PIL import Image

            with Image.open(temporary) as image:
                suffix = SUFFIXES.get(image.format or "", "png")
            name = f"{digest.hexdigest()[:16]}.{suffix}"
            os.replace(temporary, self.uploads / name)
            return name
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def upload_path(self, name: str) -> Path:
        """The stored upload ``name`` (a generated name only; anything else is refused)."""
        if not UPLOAD_NAME.match(name or "") or not (self.uploads / name).is_file():
            raise InputError(f"no uploaded image named '{name}'")
        return self.uploads / name

    # -- runs -----------------------------------------------------------------------------------
    def submit(self, content: str, styles: Sequence[str], options: Mapping[str, Any],
               title: str = "") -> LiveRun:
        """Queue a run of stored uploads ``content`` and ``styles`` with the page's ``options``
        (each checked now, so a bad value is refused before the run is queued); ``title`` is
        what the page calls it (the client's file names: shown as text, never used as paths)."""
        from nstcore.executor import Job
        from nstcore.settings import Settings

        content_path = str(self.upload_path(content))
        style_paths = [str(self.upload_path(name)) for name in styles]
        if not style_paths:
            raise InputError("choose at least one style image")
        unknown = sorted(set(options) - set(FORM_OPTIONS))
        if unknown:
            raise InputError(f"unknown option '{unknown[0]}'")
        values = {key: value for key, value in options.items() if value not in (None, "")}
        settings = Settings(**{**self.common, **values})
        run_id = new_run_id()
        output = self.out_dir / f"{run_id}.png"
        inputs = {"content": content_path, **{f"style{i + 1}": p for i, p in enumerate(style_paths)}}
        live = LiveRun(run_id, settings=_shown(settings.as_dict()), inputs=inputs,
                       title=title[:200] or f"{content} x {', '.join(styles)}")
        live.request = {"content": content, "styles": list(styles), "options": values}
        job = Job(key=run_id, content=content_path, styles=style_paths, output=str(output),
                  options=values)
        with self._lock:
            self.runs[run_id] = live
        self._jobs.put((live, job))
        return live

    def find(self, run_id: str) -> LiveRun | None:
        """A run of this session, or a past one from its report in the output folder."""
        with self._lock:
            live = self.runs.get(run_id)
        if live is not None or not RUN_ID.match(run_id or ""):
            return live
        return self._past(run_id)

    def _past(self, run_id: str) -> LiveRun | None:
        """An earlier result (read once from its report), or None."""
        report, output = self.out_dir / f"{run_id}.json", self.out_dir / f"{run_id}.png"
        if not report.is_file() or not output.is_file():
            return None
        with self._lock:
            cached = self._earlier.get(run_id)
        if cached is not None:
            return cached
        try:
            data = json.loads(report.read_text())
        except (OSError, ValueError):
            return None
        inputs = data.get("inputs") or {}
        paths = [inputs.get("content"), *(inputs.get("styles") or [])]
        names = ["content", *(f"style{i}" for i in range(1, len(paths)))]
        known = {n: p for n, p in zip(names, paths) if p and Path(p).parent == self.uploads
                 and UPLOAD_NAME.match(Path(p).name) and Path(p).is_file()}
        live = LiveRun(run_id, settings=_shown(data.get("settings") or {}), inputs=known,
                       title=f"{run_id} (earlier)")
        live.request = {"content": Path(paths[0]).name if paths[0] else None,
                        "styles": [Path(p).name for p in paths[1:] if p],
                        "options": {k: v for k, v in (data.get("settings") or {}).items()
                                    if k in FORM_OPTIONS and v is not None}}
        live.finish("finished", data.get("message") or "", output)
        live.created = output.stat().st_mtime
        with self._lock:
            self._earlier[run_id] = live
        return live

    def listing(self) -> list[dict[str, Any]]:
        """This session's runs and the earlier results in the output folder, newest first."""
        with self._lock:
            runs = dict(self.runs)
        for report in self.out_dir.glob("*.json"):
            run_id = report.stem
            if run_id not in runs and RUN_ID.match(run_id):
                past = self._past(run_id)
                if past is not None:
                    runs[run_id] = past
        items = [run.snapshot() for run in runs.values()]
        return sorted(items, key=lambda item: item["created"], reverse=True)

    def _work(self) -> None:
        """The queue: one run at a time, through the executor."""
        while True:
            live, job = self._jobs.get()
            self.current = live
            live.start(_schedule(live.settings))
            records: list[dict[str, Any]] = []
            try:
                self.executor.run([[job]], self.common, records.append)
            except BaseException as exc:  # noqa: BLE001 - the page says what went wrong
                records.append({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
            finally:
                self.current = None
            record = records[-1] if records else {"status": "failed", "error": "no result"}
            output = Path(job.output)
            if record.get("status") == "done" and output.is_file():
                from nstcore.imageio import load_image

                live.finish("finished", record.get("message") or "", output, load_image(output))
            else:
                live.finish("failed", record.get("error") or "the run failed")

    # -- the hooks through which a run in this process feeds its page ---------------------------
    @hookimpl
    def on_step(self, step: Any) -> None:
        if self.current is not None:
            self.current.step(step)


def _schedule(settings: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """(long side, steps, pixels) per scale from a run's settings, for the page's ETA."""
    from nstcore.pyramid import pyramid_sizes

    try:
        sizes = pyramid_sizes(int(settings["size"]), str(settings["scales"]))
    except (InputError, KeyError, ValueError, TypeError):
        return []
    steps = settings.get("scale_steps") or [settings.get("steps", 1)] * len(sizes)
    if len(steps) != len(sizes):
        return []
    return [(size, int(count), size * size) for size, count in zip(sizes, steps)]


def _shown(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as the page lists them: JSON values only."""
    return json.loads(json.dumps(dict(settings), default=str))
