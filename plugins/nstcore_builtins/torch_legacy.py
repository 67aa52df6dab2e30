"""Read PyTorch's legacy (non-zip) ``torch.save`` stream into numpy arrays, without torch.

The stream is: pickled magic number, pickled protocol version, pickled sys-info dict, the pickled
object (tensors refer to storages through pickle *persistent ids*), a pickled list of storage keys,
then for each key an int64 little-endian element count and the raw little-endian bytes.

Every pickle is read by an allow-list unpickler: it resolves only ``collections.OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types, each mapped to a harmless
stand-in here, and refuses anything else. A downloaded file is data, never code.
"""
from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from nstcore.errors import UnsafePickleError, WeightsError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "ByteStorage": np.dtype("u1"),
    "CharStorage": np.dtype("i1"),
    "ShortStorage": np.dtype("<i2"),
    "IntStorage": np.dtype("<i4"),
    "LongStorage": np.dtype("<i8"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, int) and v >= 0 for v in value)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _TensorRef:
    if not isinstance(storage, _Storage) or not isinstance(storage_offset, int) \
            or not _is_int_tuple(size) or not _is_int_tuple(stride) or len(size) != len(stride):
        raise UnsafePickleError("malformed tensor record in weights file")
    return _TensorRef(storage, storage_offset, size, stride)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class AllowListUnpickler(pickle.Unpickler):
    """Resolves only the names in the allow-list; any other global is refused."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage] | None = None) -> None:
        super().__init__(file)
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"weights file refers to '{module}.{name}', which is not allowed; refusing to load it"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise UnsafePickleError(f"unsupported persistent id in weights file: {pid!r:.80}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) \
                or not isinstance(numel, int) or numel < 0 or view_metadata is not None:
            raise UnsafePickleError("malformed storage record in weights file")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type.dtype, numel)
        elif storage.dtype != storage_type.dtype or storage.numel != numel:
            raise WeightsError(f"storage {key} is declared twice with different types")
        return storage


def safe_loads(data: bytes) -> Any:
    """Unpickle ``data`` with the allow-list (storages are left unresolved)."""
    return AllowListUnpickler(io.BytesIO(data)).load()


def load(file: BinaryIO | str) -> dict[str, np.ndarray]:
    """Read a legacy ``torch.save`` file holding a flat dict of tensors into numpy arrays."""
    if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
        with open(file, "rb") as fh:
            return load(fh)
    try:
        return _load(file)
    except (WeightsError, MemoryError):
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as exc:
        raise WeightsError(f"weights file is truncated or corrupt ({type(exc).__name__}: {exc})") from exc


def _load(fh: BinaryIO) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    if AllowListUnpickler(fh).load() != MAGIC_NUMBER:
        raise WeightsError("not a legacy PyTorch file (magic number mismatch)")
    if AllowListUnpickler(fh).load() != PROTOCOL_VERSION:
        raise WeightsError("unsupported legacy PyTorch protocol version")
    sys_info = AllowListUnpickler(fh).load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise WeightsError("weights file is not little-endian")
    obj = AllowListUnpickler(fh, storages).load()
    keys = AllowListUnpickler(fh).load()
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise WeightsError("weights file's storage list does not match its tensors")
    for key in keys:
        storage = storages[key]
        header = fh.read(8)
        if len(header) != 8:
            raise WeightsError("weights file is truncated (storage header)")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise WeightsError(f"storage {key} holds {count} elements, expected {storage.numel}")
        nbytes = count * storage.dtype.itemsize
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise WeightsError("weights file is truncated (storage data)")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    if not isinstance(obj, dict):
        raise WeightsError("weights file does not hold a dict of tensors")
    result: dict[str, np.ndarray] = {}
    for name, ref in obj.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise WeightsError(f"weights file entry {name!r:.40} is not a tensor")
        result[name] = _materialise(ref)
    return result


def _materialise(ref: _TensorRef) -> np.ndarray:
    data = ref.storage.data
    assert data is not None
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, dtype=data.dtype)
    last = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride))
    if last >= data.size:
        raise WeightsError("tensor extends past the end of its storage")
    item = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset:], shape=ref.size, strides=tuple(st * item for st in ref.stride),
        writeable=False)
    return np.array(view)
