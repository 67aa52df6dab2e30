"""``nstcore batch``: many runs from a folder or a manifest, resumable, on any executor.

Jobs come from a folder of content images crossed with every style given, from a manifest
(CSV or JSONL: content, style(s), output and run options per row), or from a folder of numbered
frames (one chain: each frame starts from the previous stylised frame). Each job has a key, a
fingerprint of everything that decides its output; the results file (JSONL) gets one line per
job as it ends, so a rerun skips jobs recorded as done whose output exists, and redoes the rest
(failed, interrupted, killed, or changed since).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from nstcore.errors import InputError
from nstcore.executor import Job, Record

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
MANIFEST_SUFFIXES = {".csv", ".jsonl"}
RESULTS_NAME = "results.jsonl"
#: Manifest columns that are not run options.
JOB_FIELDS = {"content", "style", "styles", "output"}


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not hidden), in natural order (frame2 < frame10)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=natural_key)


def natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def fingerprint(content: str, styles: Sequence[str], output: str, options: Mapping[str, Any]) -> str:
    """A job's key: its inputs (path, size, modification time), output and options."""
    def stamp(path: str) -> Any:
        try:
            info = os.stat(path)
            return [os.path.abspath(path), info.st_size, info.st_mtime_ns]
        except OSError:
            return [os.path.abspath(path), None, None]

    text = json.dumps([stamp(content), [stamp(s) for s in styles], os.path.abspath(output),
                       dict(options)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def output_name(content: Path, styles: Sequence[str], suffix: str) -> str:
    """``content__style`` (several styles joined with ``+``) and the output suffix."""
    return f"{content.stem}__{'+'.join(Path(s).stem for s in styles)}{suffix}"


@dataclass
class Plan:
    """What a batch will do: its chains of jobs, and where its records go."""

    chains: list[list[Job]]
    results: Path
    refused: list[Record] = field(default_factory=list)  # rows refused before any work

    @property
    def jobs(self) -> list[Job]:
        return [job for chain in self.chains for job in chain]


def plan_batch(source: str | os.PathLike, styles: Sequence[str], out_dir: str | os.PathLike, *,
               common: Mapping[str, Any], suffix: str = ".png", frames: bool = False,
               results: str | os.PathLike | None = None, bit_depth: int = 8) -> Plan:
    """The jobs of a batch, checked before any work: paths exist, names do not collide."""
    source, out = Path(source), Path(out_dir)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out-dir {out}: is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    results_path = Path(results) if results is not None else out / RESULTS_NAME
    if results_path.suffix.lower() != ".jsonl":
        raise InputError(f"--results {results_path}: must end in .jsonl")
    for style in styles:
        if not Path(style).is_file():
            raise InputError(f"style {style}: no such file")
    if source.is_dir():
        contents = image_files(source)
        if not contents:
            raise InputError(f"{source}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if not styles:
            raise InputError("give at least one STYLE image after the folder")
        if frames:
            chain = [Job("", str(c), list(styles), str(out / f"{c.stem}{suffix}"), {}, from_previous=True)
                     for c in contents]
            chains = [chain]
        else:
            chains = [[Job("", str(c), [s], str(out / output_name(c, [s], suffix)))]
                      for c in contents for s in styles]
        refused: list[Record] = []
    elif source.suffix.lower() in MANIFEST_SUFFIXES:
        if frames:
            raise InputError("--frames takes a folder of numbered frames, not a manifest")
        chains, refused = manifest_jobs(source, styles, out, suffix, bit_depth)
    else:
        raise InputError(f"{source}: give a folder of images or a manifest (.csv or .jsonl)")
    seen: dict[str, str] = {}
    for job in (job for chain in chains for job in chain):
        resolved = os.path.abspath(job.output)
        if resolved in seen:
            raise InputError(f"two jobs would write {job.output} ({seen[resolved]} and {job.content});"
                             " rename one input or give outputs in the manifest")
        seen[resolved] = job.content
        if source.is_dir():
            job.bit_depth = bit_depth
        job.key = fingerprint(job.content, job.styles, job.output,
                              {**common, **job.options, "bit_depth": job.bit_depth})
    return Plan(chains, results_path, refused)


def manifest_jobs(path: Path, styles: Sequence[str], out: Path, suffix: str,
                  bit_depth: int = 8) -> tuple[list[list[Job]], list[Record]]:
    """Jobs from a CSV (header row) or JSONL manifest; paths relative to the manifest's folder,
    outputs relative to ``out``. A row without a usable content or style is refused (recorded
    as failed, the others go on)."""
    rows = list(read_manifest(path))
    if not rows:
        raise InputError(f"{path}: the manifest has no rows")
    base = path.parent
    chains, refused = [], []
    for number, row in rows:
        where = f"{path.name} row {number}"
        try:
            content = row.get("content")
            if not content:
                raise InputError(f"{where}: no 'content'")
            row_styles = row.get("styles", row.get("style"))
            if isinstance(row_styles, str):
                row_styles = [s for s in row_styles.split(";") if s.strip()]
            if not row_styles:
                row_styles = list(styles)
            if not row_styles:
                raise InputError(f"{where}: no 'style' (and no STYLE argument)")
            content_path = str(base / str(content).strip())
            style_paths = [s if s in styles else str(base / str(s).strip()) for s in row_styles]
            output = row.get("output") or output_name(Path(content_path), style_paths, suffix)
            options = {k.replace("-", "_"): v for k, v in row.items()
                       if k not in JOB_FIELDS and v not in (None, "")}
            depth = options.pop("bit_depth", bit_depth)
            if str(depth) not in ("8", "16"):
                raise InputError(f"{where}: bit_depth must be 8 or 16, got {depth!r}")
            chains.append([Job("", content_path, style_paths, str(out / str(output).strip()), options,
                               bit_depth=int(depth))])
        except InputError as exc:
            refused.append({"job": f"{path.name}:{number}", "content": str(row.get("content")),
                            "styles": [], "output": "", "status": "failed", "error": str(exc),
                            "seconds": 0.0})
    return chains, refused


def read_manifest(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(row number, row) pairs; a malformed line is refused with its number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({type(exc).__name__})") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "content" not in reader.fieldnames:
            raise InputError(f"{path}: the CSV needs a header row with a 'content' column")
        for number, row in enumerate(reader, start=2):
            yield number, {k.strip(): (v.strip() if isinstance(v, str) else v)
                           for k, v in row.items() if k}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path} line {number}: each line must be a JSON object")
        yield number, row


class Ledger:
    """The results file: one JSON line per finished job, appended and flushed as it ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:  # a line cut short by a kill is skipped: that job is simply redone
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("status") == "done":
                    self.done.add(str(record.get("job")))

    def finished(self, job: Job) -> bool:
        return job.key in self.done and Path(job.output).exists()

    def append(self, record: Record) -> None:
        line = json.dumps(record, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if record.get("status") == "done":
            self.done.add(str(record["job"]))


class BatchProgress:
    """Jobs done / failed / left with an ETA: a live bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, *, quiet: bool = False, stream: Any = None) -> None:
        self.total, self.quiet = total, quiet
        self.stream = stream or sys.stderr
        self.done = self.failed = 0
        self.started = time.perf_counter()
        self._bar: Any = None
        if not quiet and total and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(TextColumn("jobs {task.completed}/{task.total}"), BarColumn(),
                                 TextColumn("{task.fields[status]}"),
                                 console=Console(file=self.stream))
            self._task = self._bar.add_task("batch", total=total, status="starting...")
            self._bar.start()

    def update(self, record: Record) -> None:
        from nstcore.progress import format_seconds

        if record.get("status") == "done":
            self.done += 1
        else:
            self.failed += 1
        finished = self.done + self.failed
        left = self.total - finished
        elapsed = time.perf_counter() - self.started
        eta = format_seconds(elapsed / finished * left) if finished else "..."
        status = f"done {self.done}  failed {self.failed}  left {left}  ETA {eta}"
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=finished, status=status)
            if record.get("status") != "done":
                self._bar.console.print(f"nstcore: failed {record.get('content')}: {record.get('error')}")
            return
        what = (f"wrote {record['output']} ({record.get('seconds', 0):.1f} s)" if record.get("status") == "done"
                else f"failed {record.get('content')}: {record.get('error')}")
        print(f"nstcore: [{finished}/{self.total}] {what}; {status}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    executor: dict[str, Any] = field(default_factory=dict)


def run_batch(plan: Plan, executor: Any, common: Mapping[str, Any], *, force: bool = False,
              quiet: bool = False) -> Summary:
    """Run the plan's jobs not yet done (all with ``force``) on ``executor``, recording each."""
    ledger = Ledger(plan.results)
    summary = Summary()
    started = time.perf_counter()
    for record in plan.refused:
        ledger.append(record)
        summary.failed += 1
    chains = []
    for chain in plan.chains:
        if force:
            chains.append(chain)
            continue
        todo = [job for job in chain if not ledger.finished(job)]
        if todo and chain[0].from_previous:  # frames: resume at the first unfinished frame
            todo = chain[chain.index(todo[0]):]
        summary.skipped += len(chain) - len(todo)
        if todo:
            chains.append(todo)
    total = sum(len(chain) for chain in chains)
    progress = BatchProgress(total, quiet=quiet)
    if plan.refused and not quiet:
        for record in plan.refused:
            print(f"nstcore: refused {record['job']}: {record['error']}", file=sys.stderr)

    def on_record(record: Record) -> None:
        ledger.append(record)
        if record.get("status") == "done":
            summary.done += 1
        else:
            summary.failed += 1
        progress.update(record)

    try:
        if chains:
            executor.run(chains, common, on_record)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()
    summary.seconds = time.perf_counter() - started
    summary.executor = executor.describe()
    return summary
