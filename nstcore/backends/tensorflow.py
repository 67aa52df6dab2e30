"""TensorFlow: traced ``tf.function`` steps, ``GradientTape`` gradients, ``tf.Variable`` targets
(assigned in place, so a batch's later jobs reuse the traced step)."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

from nstcore.tfload import load_tensorflow

load_tensorflow()  # quietly, before the plain import below would print TensorFlow's start-up noise
import tensorflow as tf  # noqa: E402

NAME = "tensorflow"
#: the widest float its tensors take (sums that must keep their digits)
WIDE_FLOAT = "float64"
#: how a step is traced, for messages (None: steps run eagerly)
TRACER = "tf.function"


def version() -> str:
    return tf.__version__


def gpus() -> list[str]:
    """The GPUs TensorFlow sees, as device names."""
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def cpu() -> str:
    return tf.config.list_logical_devices("CPU")[0].name


def device_label(device: str) -> str:
    """What the report says of ``device``."""
    return device


def scope(device: str | None) -> Any:
    """Places the work inside on ``device`` (a no-op for None)."""
    return tf.device(device) if device else contextlib.nullcontext()


def gpu_bfloat16() -> bool:
    """Whether a GPU here computes bfloat16 natively (compute capability 8.0 or newer)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (8, 0):
            return True
    return False


def compile(function: Callable[..., Any], jit_compile: bool = False) -> Callable[..., Any]:
    """Trace ``function`` once per input shape (``tf.function``; XLA with ``jit_compile``).

    Without AutoGraph: a step has no Python control flow on tensor values (the same code must
    trace under ``jax.jit``), and AutoGraph's rewriting of every function the step calls, the
    backends' own included, is what tracing would otherwise spend its time on."""
    return tf.function(function, jit_compile=jit_compile, autograph=False)


def value_and_grad(objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``f(image) -> (total, terms, d total / d image)``, to be compiled with :func:`compile`."""
    def evaluate(image: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, terms = objective(image)
        return total, terms, tape.gradient(total, image)

    return evaluate


def no_grad(function: Callable[..., Any]) -> Callable[..., Any]:
    """Nothing to do: a gradient is only taken inside :func:`value_and_grad`."""
    return function


def inside_trace() -> bool:
    """Whether the code runs while being traced (where ``.numpy()`` cannot work)."""
    return tf.inside_function()


def hold(values: Mapping[str, Any], held: Mapping[str, Any] | None) -> dict[str, Any]:
    """``values`` in ``tf.Variable`` s, assigned in place into ``held``'s where names, shapes
    and dtypes match: a step traced for an earlier run then reads the new targets."""
    kept = {}
    for name, value in values.items():
        old = held.get(name) if held else None
        value = tf.convert_to_tensor(value)
        if isinstance(old, tf.Variable) and old.shape == value.shape and old.dtype == value.dtype:
            old.assign(value)
            kept[name] = old
        else:
            kept[name] = tf.Variable(value, trainable=False)
    return kept


def seed(value: int) -> None:
    tf.random.set_seed(value)


def reset_peak_memory(device: str | None) -> None:
    if device and "GPU" in device:
        tf.config.experimental.reset_memory_stats(device.split("device:")[-1])


def peak_memory(device: str | None) -> int | None:
    """Peak bytes on ``device`` since the last reset; None on a CPU (the process's RSS says it).
    ``device`` as TensorFlow names it (``/device:GPU:0``); its memory API wants ``GPU:0``."""
    if device and "GPU" in device:
        return int(tf.config.experimental.get_memory_info(device.split("device:")[-1])["peak"])
    return None


def place(array: Any, like: Any) -> Any:
    """``array`` as a float32 tensor on the device ``like`` is on."""
    with tf.device(getattr(like, "device", None) or None):
        return tf.constant(array, tf.float32)
