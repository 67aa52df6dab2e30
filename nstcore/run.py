"""One run from settings: check them, build the named plugins, load the images, run the engine.

Shared by ``nstcore run``, ``nstcore demo`` and :func:`nstcore.stylize`, so all three accept and
refuse exactly the same things.
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nstcore.errors import InputError
from nstcore.plugins import get_plugin_manager

DEFAULT_LOSSES = ("content", "gram", "tv")
ROLE_FLAGS = {"content": "content_weight", "style": "style_weight", "regularizer": "tv_weight"}
MIN_FEATURE_SIDE = 16  # VGG19 pools four times before block5


@dataclass
class Settings:
    """Every setting of a run; defaults reproduce the TensorFlow tutorial's objective."""

    optimizer: str = "adam"
    steps: int = 100
    size: int = 512
    extractor: str = "vgg19"
    losses: Sequence[str] = DEFAULT_LOSSES
    content_weight: float | None = None  # None: each loss's own default (content 1e4)
    style_weight: float | None = None  # gram 1e-2
    tv_weight: float | None = None  # tv 30
    loss_weights: dict[str, float] = field(default_factory=dict)
    content_layers: Sequence[str] | None = None
    style_layers: Sequence[str] | None = None
    init: str = "content"
    seed: int | None = None
    device: str = "auto"
    weights: str | None = None
    jit_compile: bool = False
    precision: str = "float32"  # or "bfloat16": the extractor's convolutions
    memory_limit: float | None = None  # GiB; None: the machine's available memory
    solver_options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse nonsense before any image is read or model built."""
        _positive_int("--steps", self.steps)
        _positive_int("--size", self.size)
        if self.size < MIN_FEATURE_SIDE:
            raise InputError(f"--size must be at least {MIN_FEATURE_SIDE}, got {self.size}")
        for flag, value in (("--content-weight", self.content_weight),
                            ("--style-weight", self.style_weight), ("--tv-weight", self.tv_weight),
                            *((f"--weight {k}", v) for k, v in self.loss_weights.items())):
            if value is not None:
                _weight(flag, value)
        if self.memory_limit is not None:
            _weight("--memory-limit", self.memory_limit)
        if not self.losses:
            raise InputError("--losses needs at least one loss name")
        if self.precision not in ("float32", "bfloat16"):
            raise InputError(f"--precision must be float32 or bfloat16, got '{self.precision}'")
        if self.init not in ("content", "noise"):
            raise InputError(f"--init must be 'content' or 'noise', got '{self.init}'")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)
                                      or self.seed < 0):
            raise InputError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        unknown = sorted(set(self.loss_weights) - set(self.losses))
        if unknown:
            raise InputError(f"--weight names loss '{unknown[0]}', which is not in --losses"
                             f" ({', '.join(self.losses)})")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["losses"] = list(self.losses)
        return data


def _positive_int(flag: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{flag} must be a whole number >= 1, got {value!r}")


def _weight(flag: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or value < 0:
        raise InputError(f"{flag} must be a finite number >= 0, got {value!r}")


def check_plugin_names(settings: Settings) -> None:
    """Unknown extractor, loss or solver names fail here, before images or TensorFlow load."""
    registry = get_plugin_manager().registry
    registry.get("extractor", settings.extractor)
    registry.get("solver", settings.optimizer)
    for name in settings.losses:
        registry.get("loss", name)


def build_components(settings: Settings, announce: Callable[[str], None] | None = None) -> tuple:
    """(extractor, losses, solver, {loss name: plugin label}) built by name from the plugins."""
    registry = get_plugin_manager().registry
    loss_components = [registry.get("loss", name) for name in settings.losses]
    solver_options = dict(settings.solver_options)
    if settings.jit_compile:
        solver_options["jit_compile"] = True
    solver = registry.get("solver", settings.optimizer).create(**solver_options)
    extractor_component = registry.get("extractor", settings.extractor)
    extractor_options: dict[str, Any] = {}
    if settings.extractor == "vgg19":
        extractor_options = {"weights": settings.weights, "announce": announce}
    elif settings.weights:
        extractor_options = {"weights": settings.weights}
    if settings.precision != "float32":
        extractor_options["precision"] = settings.precision
    losses = []
    for component in loss_components:
        factory = component.load()
        role = getattr(factory, "role", None)
        weight = settings.loss_weights.get(component.name)
        if weight is None and role in ROLE_FLAGS:
            weight = getattr(settings, ROLE_FLAGS[role])
        layers = {"content": settings.content_layers, "style": settings.style_layers}.get(role)
        losses.append(component.create(weight=weight, layers=layers, name=component.name))
    extractor = extractor_component.create(**extractor_options)
    origins = {c.name: c.plugin.label() for c in loss_components}
    return extractor, losses, solver, origins


def read_inputs(content: Any, style: Any) -> list[tuple[str, np.ndarray]]:
    """Content and style as float arrays at their own size (paths or arrays accepted)."""
    from nstcore.imageio import load_image

    arrays = []
    for label, value in (("content", content), ("style", style)):
        if isinstance(value, (str, os.PathLike)):
            arrays.append((label, load_image(value)))
            continue
        array = np.asarray(value, dtype=np.float32)
        if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
            raise InputError(f"{label} array must have shape (h, w, 3), got {array.shape}")
        if not np.isfinite(array).all():
            raise InputError(f"{label} array holds NaN or infinite values")
        arrays.append((label, array))
    return arrays


def resize_inputs(arrays: list[tuple[str, np.ndarray]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Both images with long side ``size``; a short side too small for VGG19 is refused first."""
    from nstcore.imageio import long_side_shape, resize_long_side
    from nstcore.tfload import load_tensorflow

    for label, array in arrays:
        short = min(long_side_shape(array.shape[0], array.shape[1], size))
        if short < MIN_FEATURE_SIDE:
            raise InputError(f"{label} image is {array.shape[1]}x{array.shape[0]}; at --size {size}"
                             f" its short side is {short} px, below the {MIN_FEATURE_SIDE} px"
                             " VGG19 needs (use a larger --size)")
    load_tensorflow()
    content, style = (np.clip(resize_long_side(array, size), 0.0, 1.0) for _, array in arrays)
    return content, style


def load_inputs(content: Any, style: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Content and style as float arrays with long side ``size`` (paths or arrays accepted).

    Both files are read (and refused) before TensorFlow is loaded for the resizing.
    """
    return resize_inputs(read_inputs(content, style), size)


def seed_everything(seed: int | None) -> None:
    if seed is None:
        return
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def stylize(content: Any, style: Any, *, on_step: Callable | None = None,
            announce: Callable[[str], None] | None = None, **options: Any):
    """The Python API behind :func:`nstcore.stylize`; returns an engine ``Result``."""
    settings = options.pop("settings", None)
    if settings is None:
        known = set(Settings.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r} (options: {', '.join(sorted(known))})")
        settings = Settings(**options)
    settings.check()
    prepared = prepare_run(settings, content, style, announce=announce)
    return prepared.execute(on_step=on_step)


@dataclass
class PreparedRun:
    """Everything checked and built; ``execute`` only computes."""

    settings: Settings
    engine: Any
    content: np.ndarray
    style: np.ndarray
    init: np.ndarray

    def execute(self, on_step: Callable | None = None):
        manager = get_plugin_manager()
        manager.call("on_run_start", settings=self.settings.as_dict())

        def step_hook(info: Any) -> Any:
            manager.call("on_step", step=info)
            return on_step(info) if on_step is not None else None

        result = self.engine.run(self.content, self.style, self.settings.steps, init=self.init,
                                 on_step=step_hook)
        manager.call("on_run_end", result=result)
        return result


def prepare_run(settings: Settings, content: Any, style: Any,
                announce: Callable[[str], None] | None = None) -> PreparedRun:
    from nstcore.device import resolve_device
    from nstcore.engine import Engine
    from nstcore.resources import check_memory

    from nstcore.imageio import long_side_shape
    from nstcore.tfload import load_tensorflow

    check_plugin_names(settings)
    arrays = read_inputs(content, style)
    load_tensorflow()  # quietly, before any plugin module imports it
    extractor, losses, solver, origins = build_components(settings, announce=announce)
    height, width = long_side_shape(*arrays[0][1].shape[:2], settings.size)
    check_memory(height * width, _floats_per_pixel(extractor, losses), settings.memory_limit)
    content_image, style_image = resize_inputs(arrays, settings.size)
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    if settings.init == "noise":
        rng = np.random.default_rng(settings.seed)
        init = rng.uniform(0.0, 1.0, content_image.shape).astype(np.float32)
    else:
        init = content_image
    engine = Engine(extractor, losses, solver, device=device, origins=origins)
    return PreparedRun(settings, engine, content_image, style_image, init)


def _floats_per_pixel(extractor: Any, losses: Sequence[Any]) -> float | None:
    layers = [name for loss in losses for name in loss.layers if name in extractor.layers]
    return extractor.floats_per_pixel(layers) if layers else None


def asset(name: str) -> Path:
    """A file shipped in ``nstcore/assets``."""
    return Path(__file__).resolve().parent / "assets" / name
