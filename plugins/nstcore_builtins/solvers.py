"""Registers the built-in solvers."""
from nstcore import hookimpl


@hookimpl
def register_solvers(register):
    register("adam", "nstcore_builtins.adam:Adam",
             description="Adam on the pixels, clipped to [0, 1] after every step (the tutorial's)")
    register("lbfgs", "nstcore_builtins.lbfgs:LBFGS",
             description="tfp.optimizer.lbfgs_minimize on the projected objective f(clip(x))")
