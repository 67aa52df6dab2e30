"""Registers the built-in executors of ``nstcore batch`` and declares their options."""
from nstcore import hookimpl
from nstcore.options import Option

RAY_OPTIONS = (
    Option("address", str, None, "Ray cluster to join: auto (the one `ray start` runs here) or"
           " HOST:PORT; default: start a local Ray cluster for this batch", flag="--ray-address"),
    Option("cpus", float, None, "CPUs each job asks for (default: all of one node's; TensorFlow"
           " uses every core it is given)", above=0, flag="--job-cpus"),
    Option("gpus", float, 0.0, "GPUs each job asks for (1 on a GPU cluster)", minimum=0,
           flag="--job-gpus"),
    Option("retries", int, 1, "times a chain of jobs is retried on a new worker when its worker"
           " is lost (a killed process, a lost node)", minimum=0, flag="--retries"),
)


@hookimpl
def register_executors(register):
    register("local", "nstcore_builtins.local:LocalExecutor",
             description="one process, jobs one after another; the network and weights stay loaded")
    register("ray", "nstcore_builtins.ray_executor:RayExecutor", options=RAY_OPTIONS,
             description="Ray tasks on a local or remote cluster (pip install \"nstcore[ray]\")")
