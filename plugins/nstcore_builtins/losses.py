"""Registers the built-in losses: the TensorFlow tutorial's objective."""
from nstcore import hookimpl
from nstcore.backends import ALL


@hookimpl
def register_losses(register):
    register("content", "nstcore_builtins.content:ContentLoss",
             description="mean squared feature difference to the content image", backends=ALL)
    register("gram", "nstcore_builtins.gram:GramStyleLoss",
             description="mean squared Gram-matrix difference to the style image (Gatys et al.)",
             backends=ALL)
    register("tv", "nstcore_builtins.tv:TotalVariationLoss",
             description="total variation: sum of absolute neighbour differences", backends=ALL)
