"""Registers the built-in feature extractor and declares its options."""
from nstcore import hookimpl
from nstcore.backends import ALL
from nstcore.options import Option

VGG19_OPTIONS = (
    Option("weights", "path", None, "Keras VGG19 no-top weights (.h5 / .weights.h5); default:"
           " found or fetched as `nstcore weights` says", flag="--weights"),
    Option("precision", str, "auto", "convolution precision: auto (bfloat16 where the hardware"
           " computes it natively: a CPU with AVX512-BF16 or AMX, a GPU of compute capability"
           " 8.0 or newer; else float32), float32 (the tutorial's), or bfloat16 (1.8x faster"
           " per step on one CPU with AVX512-BF16, 7-11x slower on CPUs without native"
           " bfloat16)",
           choices=("float32", "bfloat16", "auto"), flag="--precision"),
    Option("pooling", str, "max", "pooling between VGG19's blocks: max (Keras's, the tutorial's)"
           " or avg (Gatys et al.'s: smoother pictures)", choices=("max", "avg"), flag="--pooling"),
    Option("padding", str, "zero", "what each convolution sees past the picture's border: zero"
           " (Keras's, the tutorial's) or reflect (mirrored activations)",
           choices=("zero", "reflect"), flag="--padding"),
)


@hookimpl
def register_extractors(register):
    register("vgg19", "nstcore_builtins.vgg19:VGG19Extractor",
             description="VGG19 conv layers with real ImageNet weights (Keras layer names)",
             options=VGG19_OPTIONS, backends=ALL)
