"""Write files in PyTorch's legacy ``torch.save`` format without torch, for the reader's tests.

Fake ``torch`` modules make pickle emit the same GLOBAL opcodes torch does
(``torch._utils _rebuild_tensor_v2``, ``torch FloatStorage``); the layout follows the format notes.
"""
from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from collections import OrderedDict

import numpy as np

from nstcore_builtins.torch_legacy import MAGIC_NUMBER, PROTOCOL_VERSION

STORAGE_NAMES = {np.dtype("float32"): "FloatStorage", np.dtype("uint8"): "ByteStorage",
                 np.dtype("int64"): "LongStorage"}


def fake_torch_modules():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in STORAGE_NAMES.values():
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
    return {"torch": torch, "torch._utils": utils}


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, tuple(self.shape), tuple(self.stride), False,
                         OrderedDict())


def legacy_bytes(tensors: dict[str, np.ndarray], *, shared_view: bool = False) -> bytes:
    """Serialise a dict of arrays; with ``shared_view`` the last two tensors share one storage."""
    modules = fake_torch_modules()
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        storages: dict[str, _Storage] = {}
        objects = {}
        items = list(tensors.items())
        for i, (name, array) in enumerate(items):
            array = np.ascontiguousarray(array)
            stride = tuple(s // array.itemsize for s in array.strides)
            if shared_view and i == len(items) - 1 and len(items) >= 2:
                prev_name, prev = items[-2]
                storage = storages[str(i - 1)]
                merged = np.concatenate([prev.ravel(), array.ravel()])
                storage.array = merged
                objects[name] = _Tensor(storage, prev.size, array.shape, stride)
                continue
            storage = storages[str(i)] = _Storage(str(i), array.ravel())
            objects[name] = _Tensor(storage, 0, array.shape, stride)

        buf = io.BytesIO()

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    storage_type = getattr(sys.modules["torch"], STORAGE_NAMES[obj.array.dtype])
                    return ("storage", storage_type, obj.key, "cpu", obj.array.size, None)
                return None

        for header in (MAGIC_NUMBER, PROTOCOL_VERSION,
                       {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, buf, protocol=2)
        Pickler(buf, protocol=2).dump(objects)
        keys = sorted(storages)
        pickle.dump(keys, buf, protocol=2)
        for key in keys:
            data = storages[key].array
            buf.write(struct.pack("<q", data.size))
            buf.write(data.astype(data.dtype.newbyteorder("<")).tobytes())
        return buf.getvalue()
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
