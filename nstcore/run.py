"""One run from settings: check them, build the named plugins, load the images, run the engine.

Shared by ``nstcore run``, ``nstcore demo`` and :func:`nstcore.stylize`, so all three accept and
refuse exactly the same things.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from nstcore.errors import InputError, ResourceError
from nstcore.plugins import Component, get_plugin_manager
from nstcore.settings import ROLE_LAYERS, ROLE_WEIGHT, Settings, steps_per_scale



@dataclass
class Plan:
    """The components a run uses, with their checked options; nothing is built or imported yet."""

    extractor: tuple[Component, dict[str, Any]]
    losses: list[tuple[Component, dict[str, Any]]]
    solver: tuple[Component, dict[str, Any]]

    def options(self) -> dict[str, Any]:
        """For the report: each component's name, plugin and resolved options."""
        def entry(component: Component, values: dict[str, Any]) -> dict[str, Any]:
            return {"name": component.name, "plugin": component.plugin.label(), "options": values}

        return {"extractor": entry(*self.extractor), "solver": entry(*self.solver),
                "losses": [entry(c, v) for c, v in self.losses]}


def plan_run(settings: Settings) -> Plan:
    """Look up the named plugins and check every plugin option, before any image is read.

    Options come from ``--extractor-option``/``--loss-option``/``--solver-option`` and from the
    shorthand flags plugins declare (``--weights``); a shorthand no selected plugin declares is
    an error, as is any value its declaration refuses.
    """
    registry = get_plugin_manager().registry
    extractor = registry.get("extractor", settings.extractor)
    solver = registry.get("solver", settings.optimizer)
    losses = [registry.get("loss", name) for name in settings.losses]
    selected = [extractor, solver, *losses]
    for keyword in settings.shorthands:
        if not any(o.keyword == keyword for c in selected for o in c.options):
            owners = registry.shorthand_keywords()[keyword]
            flag = next(o.flag for o in owners[0].options if o.keyword == keyword)
            names = ", ".join(f"{c.kind} '{c.name}'" for c in owners)
            raise InputError(f"{flag} is an option of {names}, which this run does not use")

    def given(component: Component, explicit: dict[str, Any]) -> dict[str, Any]:
        values = dict(explicit)
        for option in component.options:
            if option.keyword in settings.shorthands and option.name not in values:
                values[option.name] = settings.shorthands[option.keyword]
        return component.resolve_options(values)

    return Plan((extractor, given(extractor, settings.extractor_options)),
                [(c, given(c, settings.loss_options.get(c.name, {}))) for c in losses],
                (solver, given(solver, settings.solver_options)))


def build_components(settings: Settings, plan: Plan | None = None) -> tuple:
    """(extractor, losses, solver, {loss name: plugin label}) built from the plan's plugins."""
    plan = plan or plan_run(settings)
    solver_component, solver_options = plan.solver
    solver = solver_component.create(**solver_options)
    losses = []
    for component, options in plan.losses:
        role = getattr(component.load(), "role", None)
        weight = settings.loss_weights.get(component.name)
        if weight is None and role in ROLE_WEIGHT:
            weight = getattr(settings, ROLE_WEIGHT[role])
        layers = getattr(settings, ROLE_LAYERS[role]) if role in ROLE_LAYERS else None
        losses.append(component.create(weight=weight, layers=layers, name=component.name, **options))
    extractor_component, extractor_options = plan.extractor
    extractor = extractor_component.create(**extractor_options)
    origins = {c.name: c.plugin.label() for c, _ in plan.losses}
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


def resize_inputs(arrays: list[tuple[str, np.ndarray]], size: int, style_size: int | None = None,
                  minimum: int = 1, needs: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Content with long side ``size``, style with ``style_size`` (default: the same); a short
    side below ``minimum`` (what the extractor needs, said by ``needs``) is refused first."""
    from nstcore.imageio import long_side_shape, resize_long_side
    from nstcore.tfload import load_tensorflow

    sizes = {"content": size, "style": style_size or size}
    for label, array in arrays:
        short = min(long_side_shape(array.shape[0], array.shape[1], sizes[label]))
        if short < minimum:
            raise InputError(f"{label} image is {array.shape[1]}x{array.shape[0]}; at {sizes[label]} px"
                             f" its short side is {short} px, below the {minimum} px {needs}"
                             " (use a larger --size)")
    load_tensorflow()
    content, style = (np.clip(resize_long_side(array, sizes[label]), 0.0, 1.0) for label, array in arrays)
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


def stylize(content: Any, style: Any, *, on_step: Callable | None = None, **options: Any):
    """The Python API behind :func:`nstcore.stylize`; returns an engine ``Result``."""
    settings = options.pop("settings", None) or Settings(**options)
    prepared = prepare_run(settings, content, style)
    return prepared.execute(on_step=on_step)


@dataclass
class PreparedRun:
    """Everything checked and built; ``execute`` only computes."""

    settings: Settings
    plan: Plan
    engine: Any
    content: np.ndarray
    style: np.ndarray
    init: np.ndarray
    sizes: list[int]
    steps: list[int]  # at each size

    def execute(self, on_step: Callable | None = None):
        manager = get_plugin_manager()
        manager.call("on_run_start", settings=self.settings.as_dict())

        def step_hook(info: Any) -> Any:
            manager.call("on_step", step=info)
            return on_step(info) if on_step is not None else None

        result = self.engine.run(self.content, self.style, self.steps, init=self.init,
                                 on_step=step_hook, sizes=self.sizes,
                                 style_scale=self.settings.style_scale)
        manager.call("on_run_end", result=result)
        return result


def prepare_run(settings: Settings, content: Any, style: Any) -> PreparedRun:
    """Check options, read the images, build the plugins and the engine: everything but steps."""
    from nstcore.tfload import load_tensorflow

    plan = plan_run(settings)
    arrays = read_inputs(content, style)
    load_tensorflow()  # quietly, before any plugin module imports it
    from nstcore.device import resolve_device
    from nstcore.engine import Engine
    from nstcore.imageio import long_side_shape

    extractor, losses, solver, origins = build_components(settings, plan)
    layers = [name for loss in losses for name in loss.layers if name in extractor.layers]
    style_size = max(1, round(settings.size * settings.style_scale))
    shapes = [long_side_shape(*arrays[0][1].shape[:2], settings.size),
              long_side_shape(*arrays[1][1].shape[:2], style_size)]
    tiling = plan_tiling(settings, extractor, losses, origins, layers, shapes)
    minimum = extractor.min_side(layers) if layers else 1
    needs = f"extractor '{settings.extractor}' needs"
    content_image, style_image = resize_inputs(arrays, settings.size, style_size, minimum, needs)
    sizes = usable_sizes(settings, [array for _, array in arrays], minimum, needs)
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    if settings.init == "noise":
        rng = np.random.default_rng(settings.seed)
        init = rng.uniform(0.0, 1.0, content_image.shape).astype(np.float32)
    else:
        init = content_image
    engine = Engine(extractor, losses, solver, device=device, origins=origins, tiling=tiling)
    return PreparedRun(settings, plan, engine, content_image, style_image, init, sizes,
                       steps_per_scale(settings, sizes))


def plan_tiling(settings: Settings, extractor: Any, losses: Sequence[Any], origins: dict[str, str],
                layers: Sequence[str], shapes: Sequence[tuple[int, int]]) -> Any:
    """The run's :class:`~nstcore.tiling.TilePolicy`, checked against the largest images (content
    and style at the final size): a run that needs tiling but cannot tile, or does not fit even
    in the smallest tiles, is refused here, before any work."""
    from nstcore.resources import GIB, available_bytes, check_memory
    from nstcore.tiling import TilePolicy, require_tileable

    if not layers:
        return None
    fpp = extractor.floats_per_pixel(layers)
    limit = settings.memory_limit * GIB if settings.memory_limit is not None else available_bytes()
    geometry = extractor.tile_geometry(layers) if settings.tile != "off" else None
    policy = TilePolicy(settings.tile, geometry, fpp, limit)
    for height, width in shapes:
        tile = policy.tile_for(height, width)
        if tile is None:
            try:
                check_memory(height * width, fpp, settings.memory_limit)
            except ResourceError as exc:
                if settings.tile == "auto" and geometry is None:
                    raise ResourceError(f"{exc}; extractor '{settings.extractor}' cannot be tiled"
                                        " (it gives no tile_geometry)") from None
                raise
            continue
        require_tileable([loss for loss in losses if loss.layers], origins,
                         f" at {max(height, width)} px")
        needed = policy.estimate(height, width, tile) if fpp is not None else 0.0
        if limit is not None and needed > limit:
            source = "--memory-limit" if settings.memory_limit is not None else "available memory"
            raise ResourceError(f"this run needs about {needed / GIB:.1f} GiB even in {tile}-px"
                                f" tiles, but {source} is {limit / GIB:.1f} GiB; use a smaller --size")
    if geometry is None and isinstance(settings.tile, int):
        raise InputError(f"--tile {settings.tile}: extractor '{settings.extractor}' cannot be tiled"
                         " (it gives no tile_geometry)")
    return policy


def usable_sizes(settings: Settings, images: Sequence[np.ndarray], minimum: int,
                 needs: str) -> list[int]:
    """The run's scales, without the coarse ``auto`` ones at which an image's short side would be
    below ``minimum`` (what the extractor needs); an explicit list with such a size is refused."""
    from nstcore.imageio import long_side_shape

    def fits(size: int) -> bool:
        content, style = images
        style_size = max(1, round(size * settings.style_scale))
        return (min(long_side_shape(*content.shape[:2], size)) >= minimum
                and min(long_side_shape(*style.shape[:2], style_size)) >= minimum)

    sizes = list(settings.sizes)
    if str(settings.scales).strip().lower() == "auto":
        return [size for size in sizes if fits(size)] or sizes[-1:]
    for size in sizes:
        if not fits(size):
            raise InputError(f"--scales {settings.scales}: at {size} px an image's short side is"
                             f" below the {minimum} px {needs} (start larger, or use --scales 1)")
    return sizes


def asset(name: str) -> Path:
    """A file shipped in ``nstcore/assets``."""
    return Path(__file__).resolve().parent / "assets" / name
