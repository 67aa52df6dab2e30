"""The executor interface: where ``nstcore batch`` runs its jobs.

An executor receives *chains*: lists of jobs to run in order on one worker (a single job, or the
frames of a video, each starting from the previous stylised frame). It calls ``on_record`` with
each job's record as the job ends, failures included. :func:`run_chain` runs a chain in the
current process, keeping the built engine (network, weights) between jobs of the same
components, so any executor can use it inside its workers.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

#: One finished job: inputs, output, status ("done" or "failed"), losses, seconds, device, error.
Record = dict
OnRecord = Callable[[Record], None]


@dataclass
class Job:
    """One run of ``nstcore batch``: a content image, its style(s), the output, option overrides."""

    key: str  # fingerprint of everything that decides the output
    content: str
    styles: list[str]
    output: str
    options: dict[str, Any] = field(default_factory=dict)  # run options, over the batch's own
    #: in a chain of frames: start from the previous job's output when it exists
    from_previous: bool = False
    bit_depth: int = 8  # of the output image


class Executor(ABC):
    """Runs chains of jobs; registered through the ``register_executors`` hook."""

    @abstractmethod
    def run(self, chains: Sequence[Sequence[Job]], common: Mapping[str, Any],
            on_record: OnRecord) -> None:
        """Run every chain (its jobs in order, on one worker), calling ``on_record(record)`` as
        each job ends. ``common`` holds the run options every job shares (``Settings``
        keywords); a job's own ``options`` override them. A job's failure is a record with
        status "failed", never an exception; Ctrl-C may propagate (finished jobs are recorded)."""

    def describe(self) -> dict[str, Any]:
        """Facts for the results and the closing line: workers, resources."""
        return {}


def run_chain(chain: Sequence[Job], common: Mapping[str, Any], cache: dict[str, Any]) -> Iterator[Record]:
    """Run ``chain`` here, one job after another, yielding each job's record."""
    previous: str | None = None
    for job in chain:
        record = run_job(job, common, cache, init=start_from(job, previous))
        if record["status"] == "done":
            previous = job.output
        yield record


def start_from(job: Job, previous: str | None) -> str | None:
    """A frame's start image: the previous frame's stylised output, when there is one."""
    return previous if job.from_previous and previous and Path(previous).exists() else None


def run_job(job: Job, common: Mapping[str, Any], cache: dict[str, Any], *,
            init: str | None = None) -> Record:
    """Run one job in this process: its image and report JSON written atomically beside each
    other, or nothing written and the failure's one-line message in the record."""
    from nstcore.errors import NstError

    started = time.perf_counter()
    record: Record = {"job": job.key, "content": job.content, "styles": list(job.styles),
                      "output": job.output, "host": socket.gethostname(), "pid": os.getpid()}
    try:
        record.update(_run(job, common, cache, init))
    except NstError as exc:
        record.update(status="failed", error=" ".join(str(exc).split()))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug or a plugin's crash: this job fails, the batch goes on
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
        record.update(status="failed", error=f"{type(exc).__name__}: {' '.join(str(exc).split())}{where}")
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _run(job: Job, common: Mapping[str, Any], cache: dict[str, Any], init: str | None) -> dict[str, Any]:
    from nstcore.errors import NstError
    from nstcore.imageio import check_output_format, check_output_path
    from nstcore.run import prepare_run
    from nstcore.settings import Settings

    values = {**common, **job.options}
    if init is not None:
        values["init"] = init
    settings = Settings(**values)
    output = check_output_path(job.output, (job.content, *job.styles))
    check_output_format(output, job.bit_depth)
    prepared = prepare_run(settings, job.content, list(job.styles), engines=cache)
    result = prepared.execute()
    if result.stopped == "interrupted":
        raise KeyboardInterrupt
    if result.stopped in ("nonfinite", "solver_failed"):
        raise NstError(result.message)
    prepared.write(result, output, bit_depth=job.bit_depth, report=output.with_suffix(".json"),
                   inputs={"content": job.content, "style": ", ".join(job.styles),
                           "styles": list(job.styles), "init": init})
    final = result.losses[-1] if result.losses else {}
    return {"status": "done", "steps": result.steps, "device": result.device,
            "losses": {k: v for k, v in final.items() if k != "step"},
            "first_total": result.losses[0]["total"] if result.losses else None,
            "first_step_seconds": result.first_step_seconds,
            "median_step_seconds": result.median_step_seconds,
            "message": result.message, "init": init}
