"""Registers the built-in feature extractor and declares its options."""
from nstcore import hookimpl
from nstcore.options import Option

VGG19_OPTIONS = (
    Option("weights", "path", None, "Keras VGG19 no-top weights (.h5 / .weights.h5); default:"
           " found or fetched as `nstcore weights` says", flag="--weights"),
    Option("precision", str, "float32", "convolution precision: float32 (the tutorial's), bfloat16"
           " (1.8x faster on one CPU with AVX512-BF16, 7-11x slower on CPUs without native"
           " bfloat16), or auto (bfloat16 only where native)",
           choices=("float32", "bfloat16", "auto"), flag="--precision"),
    Option("edge_pad", int, 0, "pixels of mirrored picture added around the image before the"
           " network and cropped from its features, a multiple of 16: 0 is Keras's zero padding"
           " (the tutorial's); 16 stops the style loss painting a light band along the edges",
           choices=(0, 16, 32, 48, 64), flag="--edge-pad"),
    Option("pooling", str, "max", "pooling between VGG19's blocks: max (Keras's, the tutorial's)"
           " or avg (Gatys et al.'s: smoother pictures)", choices=("max", "avg"), flag="--pooling"),
)


@hookimpl
def register_extractors(register):
    register("vgg19", "nstcore_builtins.vgg19:VGG19Extractor",
             description="VGG19 conv layers with real ImageNet weights (Keras layer names)",
             options=VGG19_OPTIONS)
