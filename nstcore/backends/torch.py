"""PyTorch: eager steps, ``torch.autograd.grad`` gradients, plain tensors.

Keras's torch backend puts tensors on the first CUDA device when there is one; :func:`scope`
picks the device explicitly.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

import torch

NAME = "torch"
#: the widest float its tensors take (sums that must keep their digits)
WIDE_FLOAT = "float64"
#: how a step is traced, for messages (None: steps run eagerly)
TRACER = None


def version() -> str:
    return torch.__version__


def gpus() -> list[str]:
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def cpu() -> str:
    return "cpu"


def device_label(device: str) -> str:
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def scope(device: str | None) -> Any:
    if not device:
        return contextlib.nullcontext()
    import keras

    return keras.device(device)


def gpu_bfloat16() -> bool:
    return bool(gpus()) and torch.cuda.is_bf16_supported()


def compile(function: Callable[..., Any], jit_compile: bool = False) -> Callable[..., Any]:
    """Eager: the step runs as written (``jit_compile`` changes nothing)."""
    return function


def value_and_grad(objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def evaluate(image: Any) -> Any:
        image = image.detach().requires_grad_(True)
        total, terms = objective(image)
        (gradient,) = torch.autograd.grad(total, image)
        return total.detach(), {name: value.detach() for name, value in terms.items()}, gradient

    return evaluate


def no_grad(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with autograd off (forward passes and updates keep no graph)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return function(*args, **kwargs)

    return call


def inside_trace() -> bool:
    return False


def hold(values: Mapping[str, Any], held: Mapping[str, Any] | None) -> dict[str, Any]:
    from keras import ops

    return {name: ops.convert_to_tensor(value).detach() for name, value in values.items()}


def seed(value: int) -> None:
    torch.manual_seed(value)


def reset_peak_memory(device: str | None) -> None:
    if device and device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str | None) -> int | None:
    if device and device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated(device))
    return None


def place(array: Any, like: Any) -> Any:
    """``array`` as a float32 tensor on the device ``like`` is on."""
    return torch.as_tensor(array, dtype=torch.float32, device=getattr(like, "device", None))
