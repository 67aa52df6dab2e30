"""Read, resize and write images, so that the rest of nstcore only sees RGB float32 in [0, 1].

Reading goes through Pillow: EXIF orientation is applied, an animated file gives its first frame,
16-bit and CMYK images are converted, and alpha is composited over white for the optimisation (a
transparent background becomes paper, not black); :func:`load_image_data` also returns the alpha
channel and ICC profile, which the output gets back. Writing is atomic: a temporary file beside
the target, then a rename, so an interrupted run never leaves a truncated image. 8-bit output goes
through Pillow; 16-bit output through pypng (PNG) and tifffile (TIFF), which Pillow cannot write
for RGB.
"""
from __future__ import annotations

import io
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nstcore.errors import InputError
from nstcore.files import atomic_write, check_new_file

#: Images above this many pixels are refused (decompression-bomb guard); ``NSTCORE_MAX_PIXELS``.
DEFAULT_MAX_PIXELS = 100_000_000
MIN_SIDE = 2
OUTPUT_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                   ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
#: Output formats that keep an alpha channel, and those that can hold 16 bits per channel.
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")
DEEP_FORMATS = ("PNG", "TIFF")
ICC_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")


@dataclass
class ImageData:
    """An image as nstcore computes with it, plus what the output should carry back."""

    rgb: np.ndarray  # (h, w, 3) float32 in [0, 1], alpha composited over white
    alpha: np.ndarray | None = None  # (h, w) float32 in [0, 1]; None: opaque
    icc_profile: bytes | None = None


def max_pixels() -> int:
    value = os.environ.get("NSTCORE_MAX_PIXELS")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise InputError(f"NSTCORE_MAX_PIXELS must be a whole number, got '{value}'") from None
    if limit <= 0:
        raise InputError(f"NSTCORE_MAX_PIXELS must be positive, got {limit}")
    return limit


def load_image(path: str | os.PathLike, *, limit: int | None = None) -> np.ndarray:
    """Read ``path`` as an (h, w, 3) float32 array in [0, 1]; raise :class:`InputError` otherwise."""
    return load_image_data(path, limit=limit).rgb


def load_image_data(path: str | os.PathLike, *, limit: int | None = None) -> ImageData:
    """Read ``path``: RGB (alpha composited over white), its alpha channel and ICC profile."""
    path = Path(path)
    limit = max_pixels() if limit is None else limit
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit  # Pillow's own bomb checks then agree with ours
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > limit:
                    raise InputError(f"{path}: {w}x{h} is {w * h:,} pixels, above the limit of"
                                     f" {limit:,} (raise it with NSTCORE_MAX_PIXELS)")
                if getattr(img, "is_animated", False):
                    img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img)
                array, alpha = to_rgb_float(img)
                icc = img.info.get("icc_profile") or None
        truncated = [w for w in caught if "runcated" in str(w.message)]
        if truncated:  # Pillow reads some truncated formats (TIFF) with only a warning
            raise InputError(f"{path}: cannot decode image (truncated or corrupt:"
                             f" {truncated[0].message})")
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: image is above the limit of {limit:,} pixels (decompression-bomb"
                         " guard; raise it with NSTCORE_MAX_PIXELS if you trust the file)") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot decode image (truncated or corrupt: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
    if array.shape[0] < MIN_SIDE or array.shape[1] < MIN_SIDE:
        raise InputError(f"{path}: image is {array.shape[1]}x{array.shape[0]}; each side must be"
                         f" at least {MIN_SIDE} pixels")
    return ImageData(array, alpha, icc)


def to_rgb_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode to (h, w, 3) float32 RGB in [0, 1], alpha composited over white, and the
    alpha channel as (h, w) float32 in [0, 1] (None when there is none or it is fully opaque)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        gray = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
        gray = np.clip(gray / peak, 0.0, 1.0).astype(np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if img.mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[:, :, 3:4]
        rgb = (rgba[:, :, :3] * alpha + (1.0 - alpha)).astype(np.float32)
        return rgb, (None if alpha.min() >= 1.0 else np.ascontiguousarray(alpha[:, :, 0]))
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0, None


def long_side_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the long side exactly ``size``; the short side truncated as the tutorial does."""
    if max(height, width) == size:
        return height, width
    shape = np.array([height, width], dtype=np.float32)
    new_shape = np.maximum((shape * (np.float32(size) / shape.max())).astype(np.int32), 1)
    new_shape[int(np.argmax(shape))] = size
    return int(new_shape[0]), int(new_shape[1])


def resize_long_side(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the long side is exactly ``size`` (bilinear, not antialiased: the tutorial's
    ``tf.image.resize``, computed in NumPy by :mod:`nstcore.resize`).

    The short side is truncated from float32 like the tutorial's ``load_img``; unlike it, the long
    side is set to ``size`` itself (the tutorial's float rounding can give ``size - 1``). An image
    whose long side already equals ``size`` is returned untouched.
    """
    target = long_side_shape(image.shape[0], image.shape[1], size)
    if target == image.shape[:2]:
        return image
    from nstcore.resize import resize_array

    return resize_array(image, target, "bilinear", antialias=False)


def check_output_path(path: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Refuse an output image path before any work (see :func:`nstcore.files.check_new_file`)."""
    return check_new_file(path, OUTPUT_SUFFIXES, what="output", inputs=inputs)


def quantize(image: Any, bit_depth: int = 8) -> np.ndarray:
    """(h, w, c) or (1, h, w, c) floats in [0, 1] to uint8 or uint16, rounding to nearest."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    peak = 255.0 if bit_depth == 8 else 65535.0
    return np.clip(np.rint(array * peak), 0, peak).astype(np.uint8 if bit_depth == 8 else np.uint16)


def to_uint8(image: Any) -> np.ndarray:
    """(h, w, 3) or (1, h, w, 3) floats in [0, 1] to uint8, rounding to nearest."""
    return quantize(image, 8)


def check_output_format(path: str | os.PathLike, bit_depth: int = 8) -> None:
    """Refuse, before any work, a bit depth the output's format cannot hold."""
    fmt = OUTPUT_SUFFIXES.get(Path(path).suffix.lower(), "PNG")
    if bit_depth not in (8, 16):
        raise InputError(f"--bit-depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and fmt not in DEEP_FORMATS:
        raise InputError(f"--bit-depth 16 needs a .png or .tif output, not {Path(path).suffix}")


def save_image(path: str | os.PathLike, image: Any, *, alpha: np.ndarray | None = None,
               icc_profile: bytes | None = None, bit_depth: int = 8) -> Path:
    """Write ``image`` atomically (temporary file in the same folder, then rename).

    ``alpha`` ((h, w) in [0, 1]) is kept in PNG, WebP and TIFF; other formats get the image
    composited over white, as it would show on paper. ``icc_profile`` is embedded where the format
    can hold one; ``bit_depth`` 16 writes 16 bits per channel (PNG or TIFF).
    """
    path = Path(path)
    check_output_format(path, bit_depth)
    fmt = OUTPUT_SUFFIXES.get(path.suffix.lower(), "PNG")
    rgb = np.asarray(image, dtype=np.float32)
    rgb = rgb[0] if rgb.ndim == 4 else rgb
    if alpha is not None and fmt not in ALPHA_FORMATS:
        rgb = rgb * alpha[:, :, None] + (1.0 - alpha[:, :, None])
        alpha = None
    pixels = quantize(rgb if alpha is None else np.concatenate([rgb, alpha[:, :, None]], axis=2),
                      bit_depth)
    icc = icc_profile if fmt in ICC_FORMATS else None
    if bit_depth == 16:
        return atomic_write(path, lambda fh: _write_deep(fh, fmt, pixels, icc))
    pil = Image.fromarray(pixels, mode="RGB" if alpha is None else "RGBA")
    extra = {"icc_profile": icc} if icc else {}
    return atomic_write(path, lambda fh: pil.save(fh, format=fmt, **extra))


def _write_deep(fh: Any, fmt: str, pixels: np.ndarray, icc: bytes | None) -> None:
    """16-bit RGB(A): TIFF through tifffile, PNG through pypng (plus an iCCP chunk for ``icc``)."""
    height, width, planes = pixels.shape
    if fmt == "TIFF":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="rgb", iccprofile=icc,
                         extrasamples=("unassalpha",) if planes == 4 else None)
        fh.write(buffer.getvalue())
        return
    import png

    buffer = io.BytesIO()
    png.Writer(width, height, alpha=planes == 4, bitdepth=16, greyscale=False).write(
        buffer, pixels.reshape(height, width * planes))
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    if icc:  # iCCP: profile name, NUL, compression method 0 (zlib), the compressed profile
        chunks.insert(1, (b"iCCP", b"nstcore\0\0" + zlib.compress(icc)))
    png.write_chunks(fh, chunks)
