"""Registers the built-in feature extractor and declares its options."""
from nstcore import hookimpl
from nstcore.options import Option

VGG19_OPTIONS = (
    Option("weights", "path", None, "Keras VGG19 no-top weights (.h5 / .weights.h5); default:"
           " found or fetched as `nstcore weights` says", flag="--weights"),
    Option("precision", str, "float32", "convolution precision; bfloat16 is faster only on CPUs"
           " with native bfloat16 (AVX512-BF16, AMX), measured 1.8x on one such CPU; float32 is"
           " the tutorial's", choices=("float32", "bfloat16"), flag="--precision"),
)


@hookimpl
def register_extractors(register):
    register("vgg19", "nstcore_builtins.vgg19:VGG19Extractor",
             description="VGG19 conv layers with real ImageNet weights (Keras layer names)",
             options=VGG19_OPTIONS)
