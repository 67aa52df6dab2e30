"""Memory estimate for a run, checked before any work so a huge image fails fast and clearly.

Peak memory is a fixed base (TensorFlow, the model) plus the activations kept for the gradient:
``floats per pixel`` of the layers up to the deepest one used (the extractor reports it) times
the pixel count, times ``ACTIVATION_FACTOR`` for the backward pass, pre-activation copies and
the solver's state. The constants were fitted to peak RSS measured on CPU at 256 and 512 px.
"""
from __future__ import annotations

import os

from nstcore.errors import ResourceError

BASE_BYTES = 0.8e9
ACTIVATION_FACTOR = 5.5
GIB = 1024 ** 3


def estimate_bytes(pixels: int, floats_per_pixel: float) -> float:
    return BASE_BYTES + ACTIVATION_FACTOR * 4.0 * floats_per_pixel * pixels


#: Bytes per image pixel of a tiled run outside the tile: the image, its gradient and the
#: padded tile gradients being added, the solver's state, the upsampled start.
IMAGE_BYTES_PER_PIXEL = 12 * 4 * 3


def estimate_tiled_bytes(pixels: int, floats_per_pixel: float, window_pixels: int) -> float:
    """Peak of a tiled step: the activations of one tile window plus whole-image buffers."""
    return (BASE_BYTES + ACTIVATION_FACTOR * 4.0 * floats_per_pixel * window_pixels
            + IMAGE_BYTES_PER_PIXEL * pixels)


def available_bytes() -> float | None:
    """MemAvailable from /proc/meminfo, else free physical pages; None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(pixels: int, floats_per_pixel: float | None, limit_gib: float | None = None) -> float | None:
    """Raise :class:`ResourceError` when the estimate exceeds the limit (default: available memory)."""
    if floats_per_pixel is None:
        return None
    needed = estimate_bytes(pixels, floats_per_pixel)
    limit = limit_gib * GIB if limit_gib is not None else available_bytes()
    if limit is not None and needed > limit:
        source = "--memory-limit" if limit_gib is not None else "available memory"
        raise ResourceError(
            f"this run needs about {needed / GIB:.1f} GiB but {source} is {limit / GIB:.1f} GiB;"
            " use a smaller --size, or --memory-limit GIB to override the check")
    return needed
