"""JAX: ``jax.jit`` (XLA) steps, ``jax.value_and_grad`` gradients, immutable arrays.

A held target is a plain array: a jitted step closes over it, so a batch job with new targets
compiles its step anew (the trace key sees the new arrays) instead of reading stale ones.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

NAME = "jax"
#: the widest float its arrays take: JAX keeps 64-bit floats off unless asked (jax_enable_x64)
WIDE_FLOAT = "float32"
#: how a step is traced, for messages (None: steps run eagerly)
TRACER = "jax.jit"


def version() -> str:
    return jax.__version__


def gpus() -> list[str]:
    try:
        return [f"gpu:{d.id}" for d in jax.devices("gpu")]
    except RuntimeError:  # no GPU platform in this jaxlib
        return []


def cpu() -> str:
    return "cpu:0"


def _device(name: str) -> Any:
    kind, _, index = name.partition(":")
    return jax.devices(kind)[int(index or 0)]


def device_label(device: str) -> str:
    found = _device(device)
    return f"{device} ({getattr(found, 'device_kind', found.platform)})"


def scope(device: str | None) -> Any:
    return jax.default_device(_device(device)) if device else contextlib.nullcontext()


def gpu_bfloat16() -> bool:
    """Whether a GPU here computes bfloat16 natively (CUDA compute capability 8.0 or newer)."""
    for device in (jax.devices("gpu") if gpus() else []):
        capability = getattr(device, "compute_capability", None)
        if capability and float(capability) >= 8.0:
            return True
    return False


def compile(function: Callable[..., Any], jit_compile: bool = False) -> Callable[..., Any]:
    """``jax.jit``: every JAX step is compiled by XLA (``jit_compile`` changes nothing)."""
    return jax.jit(function)


def value_and_grad(objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
    grad = jax.value_and_grad(lambda image: objective(image), has_aux=True)

    def evaluate(image: Any) -> Any:
        (total, terms), gradient = grad(image)
        return total, terms, gradient

    return evaluate


def no_grad(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


def inside_trace() -> bool:
    try:
        return not jax.core.trace_state_clean()
    except AttributeError:  # pragma: no cover - a JAX without it: no hint, nothing worse
        return False


def hold(values: Mapping[str, Any], held: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: jnp.asarray(value) for name, value in values.items()}


def seed(value: int) -> None:
    """JAX has no global random state; nstcore draws its noise with NumPy."""


def reset_peak_memory(device: str | None) -> None:
    """XLA keeps its peak since the process started (read it with preallocation off)."""


def peak_memory(device: str | None) -> int | None:
    if not device or device.startswith("cpu"):
        return None
    stats = _device(device).memory_stats() or {}
    return int(stats["peak_bytes_in_use"]) if "peak_bytes_in_use" in stats else None


def place(array: Any, like: Any) -> Any:
    """``array`` as a float32 array on the device ``like`` is on."""
    devices = like.devices() if hasattr(like, "devices") else ()
    return jax.device_put(jnp.asarray(array, jnp.float32), next(iter(devices), None))
