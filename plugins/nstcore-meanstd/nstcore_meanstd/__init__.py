"""nstcore plugin: the ``meanstd`` style loss (registered lazily: listing imports no TensorFlow)."""
import nstcore


@nstcore.hookimpl
def register_losses(register):
    register("meanstd", "nstcore_meanstd.loss:MeanStdStyleLoss",
             description="match per-channel feature means and stds (AdaIN statistics)")
