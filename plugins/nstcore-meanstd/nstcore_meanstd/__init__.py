"""nstcore plugin: the ``meanstd`` style loss (registered lazily: listing imports no TensorFlow)."""
import nstcore
from nstcore.options import Option


@nstcore.hookimpl
def register_losses(register):
    register("meanstd", "nstcore_meanstd.loss:MeanStdStyleLoss",
             description="match per-channel feature means and stds (AdaIN statistics)",
             backends=("tensorflow", "jax", "torch"),
             options=[Option("epsilon", float, 1e-5, "added to each variance before the square"
                             " root (keeps the gradient finite)", above=0)])
