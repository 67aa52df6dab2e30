"""A plugin that registers lazily, like the built-ins, so listing it imports no TensorFlow."""
import nstcore


@nstcore.hookimpl
def register_losses(register):
    register("shout", "plugin_for_tests:MeanColourLoss", description="lazy reference")
