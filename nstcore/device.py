"""Explicit device choice, so a run never lands on a device the user did not ask for."""
from __future__ import annotations

from nstcore.errors import ResourceError

CHOICES = ("auto", "cpu", "gpu")


def resolve_device(choice: str = "auto") -> str:
    """``auto`` -> the first GPU if TensorFlow sees one, else the CPU; ``gpu`` without one is an error."""
    import tensorflow as tf

    if choice not in CHOICES:
        raise ResourceError(f"unknown device '{choice}' (choose from {', '.join(CHOICES)})")
    gpus = tf.config.list_logical_devices("GPU")
    if choice == "gpu" or (choice == "auto" and gpus):
        if not gpus:
            raise ResourceError("--device gpu: TensorFlow sees no GPU on this machine (use --device cpu)")
        return gpus[0].name
    return tf.config.list_logical_devices("CPU")[0].name
