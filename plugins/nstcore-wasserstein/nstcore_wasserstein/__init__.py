"""nstcore plugin: the ``w2gauss`` style loss (registered lazily: listing imports no TensorFlow)."""
import nstcore
from nstcore.options import Option


@nstcore.hookimpl
def register_losses(register):
    register("w2gauss", "nstcore_wasserstein.loss:GaussianW2StyleLoss",
             description="Wasserstein-2 distance between Gaussian fits (means and covariances)",
             backends=("tensorflow", "jax", "torch"),
             options=[Option("ridge", float, 1e-2, "added to each covariance, as a fraction of its"
                             " mean variance (deep layers at small sizes are rank-deficient)",
                             minimum=0, maximum=1)])
