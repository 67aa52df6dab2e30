"""nstcore plugin: the ``w2gauss`` style loss (registered lazily: listing imports no TensorFlow)."""
import nstcore


@nstcore.hookimpl
def register_losses(register):
    register("w2gauss", "nstcore_wasserstein.loss:GaussianW2StyleLoss",
             description="Wasserstein-2 distance between Gaussian fits (means and covariances)")
