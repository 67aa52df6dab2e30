"""Explicit device choice, so a run never lands on a device the user did not ask for."""
from __future__ import annotations

from nstcore.errors import ResourceError

CHOICES = ("auto", "cpu", "gpu")


def resolve_device(choice: str = "auto") -> str:
    """``auto`` -> the first GPU the backend sees, else the CPU; ``gpu`` without one is an error.
    Returns the backend's name for the device (``/device:GPU:0``, ``gpu:0``, ``cuda:0``, ...)."""
    from nstcore import backends

    if choice not in CHOICES:
        raise ResourceError(f"unknown device '{choice}' (choose from {', '.join(CHOICES)})")
    backend = backends.get()
    gpus = backend.gpus()
    if choice == "gpu" or (choice == "auto" and gpus):
        if not gpus:
            raise ResourceError(f"--device gpu: {backend.NAME} sees no GPU on this machine"
                                " (use --device cpu)")
        return gpus[0]
    return backend.cpu()
