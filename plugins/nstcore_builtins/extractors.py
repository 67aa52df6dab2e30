"""Registers the built-in feature extractor."""
from nstcore import hookimpl


@hookimpl
def register_extractors(register):
    register("vgg19", "nstcore_builtins.vgg19:VGG19Extractor",
             description="VGG19 conv layers with real ImageNet weights (Keras layer names)")
