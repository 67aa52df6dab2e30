"""The ``ray`` executor: each chain of jobs is a task on a Ray cluster.

Workers are Ray actors, one per job slot the cluster's resources allow; each keeps its engines
(network and weights) between the chains it runs, so weights load once per worker, not per job.
Each actor asks for the resources one job needs: ``cpus`` (default: one node's CPUs, since
TensorFlow uses every core it is given) or ``gpus``, and memory from the run's estimate. Without
an address a local cluster is started for the batch and shut down after it; a worker lost
mid-chain (a killed process, a lost node) has its chain retried on a new worker up to
``--retries`` times, the finished jobs in it kept.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from nstcore.errors import InputError
from nstcore.executor import Executor, Job, OnRecord, run_job, start_from

INSTALL_HINT = 'the ray executor needs Ray: pip install "nstcore[ray]"'
#: Environment a worker needs to see the same plugins and caches as the command that started it.
FORWARDED_ENV = ("NSTCORE_PLUGINS", "NSTCORE_DISABLE_PLUGINS", "NSTCORE_DISABLE_PLUGIN_AUTOLOAD",
                 "NSTCORE_CACHE", "KERAS_HOME", "NSTCORE_MAX_PIXELS", "TF_CPP_MIN_LOG_LEVEL",
                 "PYTHONPATH")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


class _Worker:
    """One Ray actor: runs jobs in its process, keeping the engines it built."""

    def __init__(self) -> None:
        self.engines: dict[str, Any] = {}

    def run(self, job: Job, common: Mapping[str, Any], init: str | None) -> dict:
        return run_job(job, common, self.engines, init=init)


class RayExecutor(Executor):
    def __init__(self, address: str | None = None, cpus: float | None = None, gpus: float = 0.0,
                 retries: int = 1) -> None:
        self.ray = import_ray()  # refused at once, before any job, when Ray is missing
        self.address, self.cpus, self.gpus, self.retries = address, cpus, gpus, retries
        self.facts: dict[str, Any] = {"executor": "ray"}

    def run(self, chains: Sequence[Sequence[Job]], common: Mapping[str, Any],
            on_record: OnRecord) -> None:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env}, configure_logging=False)
            except ConnectionError as exc:
                raise InputError(f"--ray-address {self.address}: cannot join a Ray cluster there"
                                 f" ({' '.join(str(exc).split())[:160]})") from None
        try:
            self._run(chains, common, on_record)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, chains: Sequence[Sequence[Job]], common: Mapping[str, Any],
             on_record: OnRecord) -> None:
        ray = self.ray
        cluster = ray.cluster_resources()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        node_cpus = max((n["Resources"].get("CPU", 0) for n in nodes), default=1) or 1
        cpus = self.cpus or node_cpus
        memory = job_memory(common)
        slots = int(cluster.get("CPU", 1) // cpus) if not self.gpus else int(cluster.get("GPU", 0) // self.gpus)
        slots = max(1, min(slots, len(chains)))
        options = {"num_cpus": cpus, "num_gpus": self.gpus, "memory": memory, "max_restarts": 0}
        self.facts.update(workers=slots, nodes=len(nodes), cluster_cpus=cluster.get("CPU"),
                          cluster_gpus=cluster.get("GPU", 0), per_job={"cpus": cpus, "gpus": self.gpus,
                                                                        "memory_gib": round(memory / 2 ** 30, 2)})
        actor_class = ray.remote(_Worker)
        # A chain stays on one actor, job by job, so frames run in order on one worker and every
        # finished job is recorded at once; a lost actor's chain resumes at its unfinished job.
        queue = [_Chain(list(chain)) for chain in chains]
        running: dict[Any, tuple[Any, _Chain]] = {}
        idle = [actor_class.options(**options).remote() for _ in range(slots)]

        def submit(actor: Any, chain: "_Chain") -> None:
            job = chain.jobs[chain.index]
            running[actor.run.remote(job, dict(common), start_from(job, chain.previous))] = (actor, chain)

        while queue or running:
            while queue and idle:
                submit(idle.pop(), queue.pop(0))
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, chain = running.pop(ready[0])
            try:
                record = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.NodeDiedError) as exc:
                chain.attempt += 1
                if chain.attempt > self.retries:
                    for job in chain.jobs[chain.index:]:
                        on_record({"job": job.key, "content": job.content, "styles": job.styles,
                                   "output": job.output, "status": "failed", "seconds": 0.0,
                                   "error": f"worker lost ({type(exc).__name__}) after"
                                            f" {chain.attempt} attempt(s)"})
                else:
                    queue.append(chain)
                idle.append(actor_class.options(**options).remote())
                continue
            record["attempt"] = chain.attempt + 1
            on_record(record)
            if record["status"] == "done":
                chain.previous = chain.jobs[chain.index].output
            chain.index += 1
            if chain.index < len(chain.jobs):
                submit(actor, chain)
            else:
                idle.append(actor)

    def describe(self) -> dict[str, Any]:
        return dict(self.facts)


class _Chain:
    """A chain in progress: its jobs, the next one's index, the last output, attempts so far."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs, self.index, self.previous, self.attempt = jobs, 0, None, 0


def job_memory(common: Mapping[str, Any]) -> float:
    """Bytes one job needs, from the run's memory estimate at its size: what the run's extractor
    keeps per pixel down to its deepest layer (an upper bound for any losses' layers). Loading
    the extractor's class imports no backend, so the driver stays light."""
    from nstcore.plugins import get_plugin_manager
    from nstcore.resources import estimate_bytes

    size = int(common.get("size") or 512)
    extractor = get_plugin_manager().registry.get("extractor", common.get("extractor") or "vgg19").load()
    fpp = extractor.floats_per_pixel(extractor.layers) or 0.0
    return float(int(min(estimate_bytes(size * size, fpp), 8 * 2 ** 30)))
