"""Registers the built-in solvers and declares their options (the core checks them)."""
from nstcore import hookimpl
from nstcore.backends import ALL
from nstcore.options import Option

XLA = Option("jit_compile", bool, False, "compile each step with XLA", flag="--xla")

ADAM_OPTIONS = (
    Option("learning_rate", float, 0.02, "step size", above=0),
    Option("beta_1", float, 0.99, "decay of the first-moment estimate", minimum=0, below=1),
    Option("beta_2", float, 0.999, "decay of the second-moment estimate", minimum=0, below=1),
    Option("epsilon", float, 0.1, "added to the denominator (the tutorial's 0.1)", above=0),
    XLA,
)

LBFGS_OPTIONS = (
    Option("num_correction_pairs", int, 10, "curvature pairs kept (history length)", minimum=1),
    Option("max_line_search_iterations", int, 20, "loss evaluations allowed per line search",
           minimum=1),
    Option("first_step", float, 0.05, "largest pixel change of the first trial step (L-BFGS-B"
           " would otherwise start with a step of unit length over the whole image)", above=0),
    XLA,
)


@hookimpl
def register_solvers(register):
    register("adam", "nstcore_builtins.adam:Adam", options=ADAM_OPTIONS,
             description="Adam on the pixels, clipped to [0, 1] after every step (the tutorial's)",
             backends=ALL)
    register("lbfgs", "nstcore_builtins.lbfgs:LBFGS", options=LBFGS_OPTIONS,
             description="SciPy's L-BFGS-B: bounded to [0, 1], about one loss evaluation per step",
             backends=ALL)
