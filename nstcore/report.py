"""The JSON run report: every setting, per-step losses, timings, device, versions, weights."""
from __future__ import annotations

import importlib.metadata as md
import json
import platform
from pathlib import Path
from typing import Any

from nstcore.files import atomic_write

PACKAGES = ("nstcore", "tensorflow", "keras", "jax", "torch", "scipy", "numpy",
            "pillow", "pluggy")


def backend_facts(device: str | None = None) -> dict[str, Any]:
    """The process's backend: its name, its framework's version and the device, in words."""
    from nstcore import backends

    backend = backends.get()
    label = device
    if device and device != "default":
        try:
            label = backend.device_label(device)
        except Exception:  # a device name the backend no longer knows: keep the name
            label = device
    return {"name": backend.NAME, "version": backend.version(), "device": label}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_report(settings: dict[str, Any], result: Any, *, extractor: Any = None,
                 inputs: dict[str, Any] | None = None, output: str | None = None,
                 plugins: dict[str, Any] | None = None) -> dict[str, Any]:
    describe = extractor.describe() if extractor is not None else {}
    return {
        "settings": settings,
        "plugins": plugins or {},
        "inputs": inputs or {},
        "output": output,
        "status": result.stopped or "finished",
        "message": result.message,
        "device": result.device,
        "backend": backend_facts(result.device),
        "steps_done": result.steps,
        "scales": result.scales,
        "loss_evaluations": result.evaluations,
        "timings": {
            "first_step_seconds": result.first_step_seconds,
            "median_step_seconds": result.median_step_seconds,
            "per_scale": result.scale_timings(),
            "total_seconds": sum(result.step_seconds) + sum(s.get("setup_seconds", 0.0)
                                                            for s in result.scales),
            "step_seconds": result.step_seconds,
        },
        "losses": result.losses,
        "weights": describe.get("weights"),
        "extractor": {k: v for k, v in describe.items() if k != "weights"},
        "versions": library_versions(),
    }


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    text = json.dumps(report, indent=2, default=float) + "\n"
    return atomic_write(Path(path), lambda fh: fh.write(text.encode()))
