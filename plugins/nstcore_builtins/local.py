"""The ``local`` executor: every job in this process, one after another.

The engine (network, weights, traced layer selection) is built once per set of components and
reused by every later job that uses the same ones, so only the first job pays for loading.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from nstcore.executor import Executor, Job, OnRecord, run_chain


class LocalExecutor(Executor):
    def __init__(self) -> None:
        self.engines: dict[str, Any] = {}
        self.jobs = 0

    def run(self, chains: Sequence[Sequence[Job]], common: Mapping[str, Any],
            on_record: OnRecord) -> None:
        for chain in chains:
            for record in run_chain(chain, common, self.engines):
                self.jobs += 1
                on_record(record)

    def describe(self) -> dict[str, Any]:
        return {"executor": "local", "workers": 1, "engines_built": len(self.engines)}
