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

from nstcore.blend import style_list
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
    from nstcore import backends

    backend = backends.requested(settings.backend)
    registry = get_plugin_manager().registry
    extractor = registry.get("extractor", settings.extractor)
    solver = registry.get("solver", settings.optimizer)
    losses = [registry.get("loss", name) for name in settings.losses]
    selected = [extractor, solver, *losses]
    for component in selected:
        backends.require(component.label(), component.kind, component.backends, backend)
    for keyword in settings.shorthands:
        if not any(o.keyword == keyword for c in selected for o in c.options):
            flag = registry.shorthand_flag(keyword)
            names = ", ".join(f"{c.kind} '{c.name}'" for c in registry.shorthand_keywords()[keyword])
            raise InputError(f"{flag} is an option of {names}, which this run does not use")

    def given(component: Component, explicit: dict[str, Any]) -> dict[str, Any]:
        values = dict(explicit)
        for option in component.options:
            if option.keyword in settings.shorthands and option.name not in values:
                values[option.name] = settings.shorthands[option.keyword]
        for name, value in settings.preset_options(component.kind, component.name).items():
            values.setdefault(name, value)  # under what the user gave
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
        extra = dict(options)
        layer_weights = getattr(settings, f"{role}_layer_weights", None)
        if layer_weights is not None:
            extra["layer_weights"] = layer_weights
        losses.append(component.create(weight=weight, layers=layers, name=component.name, **extra))
    extractor_component, extractor_options = plan.extractor
    extractor = extractor_component.create(**extractor_options)
    origins = {c.name: c.plugin.label() for c, _ in plan.losses}
    return extractor, losses, solver, origins


def read_inputs(content: Any, style: Any) -> list[tuple[str, np.ndarray]]:
    """Content and style(s) as float arrays at their own size (paths or arrays accepted), labelled
    ``content``, ``style`` (then ``style 2``, ...)."""
    styles = style_list(style)
    labels = ["content", "style"] + [f"style {i}" for i in range(2, len(styles) + 1)]
    return [(label, read_array(label, value)) for label, value in zip(labels, [content, *styles])]


def read_array(label: str, value: Any) -> np.ndarray:
    from nstcore.imageio import load_image

    if isinstance(value, (str, os.PathLike)):
        return load_image(value)
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3 or min(array.shape[:2]) < 1:
        raise InputError(f"{label} array must have shape (h, w, 3), got {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{label} array holds NaN or infinite values")
    return array


def resize_inputs(arrays: list[tuple[str, np.ndarray]], size: int, style_size: int | None = None,
                  minimum: int = 1, needs: str = "") -> tuple[np.ndarray, list[np.ndarray]]:
    """Content with long side ``size``, styles with ``style_size`` (default: the same); a short
    side below ``minimum`` (what the extractor needs, said by ``needs``) is refused first.
    Returns the content and the list of styles."""
    from nstcore.imageio import long_side_shape, resize_long_side

    sizes = [size] + [style_size or size] * (len(arrays) - 1)
    for (label, array), target in zip(arrays, sizes):
        short = min(long_side_shape(array.shape[0], array.shape[1], target))
        if short < minimum:
            raise InputError(f"{label} image is {array.shape[1]}x{array.shape[0]}; at {target} px"
                             f" its short side is {short} px, below the {minimum} px {needs}"
                             " (use a larger --size)")
    resized = [np.clip(resize_long_side(array, target), 0.0, 1.0)
               for (_, array), target in zip(arrays, sizes)]
    return resized[0], resized[1:]


def load_inputs(content: Any, style: Any, size: int) -> tuple[np.ndarray, Any]:
    """Content and style(s) as float arrays with long side ``size`` (paths or arrays accepted).

    The files are read (and refused) and resized without loading any backend. The style comes
    back as given: one array, or a list.
    """
    content_image, styles = resize_inputs(read_inputs(content, style), size)
    return content_image, (styles if isinstance(style, (list, tuple)) else styles[0])


def seed_everything(seed: int | None) -> None:
    if seed is None:
        return
    from nstcore import backends

    random.seed(seed)
    np.random.seed(seed)
    backends.get().seed(seed)


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
    content: np.ndarray  # what the network sees (grey with --preserve-color luminance)
    styles: list[np.ndarray]
    init: np.ndarray
    sizes: list[int]
    steps: list[int]  # at each size
    blend: list[float]
    mask: np.ndarray | None = None
    colour_source: np.ndarray | None = None  # the content in colour, for luminance recombination
    alpha: np.ndarray | None = None  # the content's alpha at the output's size
    icc_profile: bytes | None = None

    def schedule(self) -> list[tuple[int, int, int]]:
        """(long side, steps, pixels the solver optimises: the picture and its margin) per scale."""
        from nstcore.imageio import long_side_shape
        from nstcore.margin import canvas_shape, margin_at

        rows = []
        for size, steps in zip(self.sizes, self.steps):
            shape = long_side_shape(*self.content.shape[:2], size)
            height, width = canvas_shape(shape, margin_at(shape, self.settings.margin))
            rows.append((size, steps, height * width))
        return rows

    @property
    def style(self) -> Any:
        """The style image, or the list of them (what the engine takes)."""
        return self.styles[0] if len(self.styles) == 1 else self.styles

    def execute(self, on_step: Callable | None = None):
        manager = get_plugin_manager()
        manager.call("on_run_start", settings=self.settings.as_dict())

        def step_hook(info: Any) -> Any:
            manager.call("on_step", step=info)
            return on_step(info) if on_step is not None else None

        result = self.engine.run(self.content, self.style, self.steps, init=self.init,
                                 on_step=step_hook, sizes=self.sizes,
                                 style_scale=self.settings.style_scale, blend=self.blend,
                                 mask=self.mask, margin=self.settings.margin,
                                 start_noise=self.settings.start_noise, seed=self.settings.seed)
        if self.colour_source is not None:
            from nstcore.color import recombine

            result.image = recombine(result.image, self.colour_source)
        result.alpha, result.icc_profile = self.alpha, self.icc_profile
        manager.call("on_run_end", result=result)
        return result

    def write(self, result: Any, output: str | os.PathLike, *, bit_depth: int = 8,
              report: str | os.PathLike | None = None, inputs: dict[str, Any] | None = None) -> None:
        """The picture (with the content's alpha and ICC profile) and, when ``report`` is given,
        the run report naming ``inputs``; each written atomically."""
        from nstcore.imageio import save_image
        from nstcore.report import build_report, write_report

        save_image(output, result.image, alpha=result.alpha, icc_profile=result.icc_profile,
                   bit_depth=bit_depth)
        if report is not None:
            write_report(report, build_report(self.settings.as_dict(), result,
                                              extractor=self.engine.extractor, inputs=inputs,
                                              output=str(output), plugins=self.plan.options()))


def prepare_run(settings: Settings, content: Any, style: Any,
                engines: dict[str, Any] | None = None) -> PreparedRun:
    """Check options, read the images, build the plugins and the engine: everything but steps.

    ``engines`` (a dict the caller keeps between runs, as ``nstcore batch`` does) reuses the
    engine built for the same components, options, weights and layers: the network and its
    weights are loaded once, not per run.
    """
    from nstcore import backends
    from nstcore.imageio import load_image_data

    plan = plan_run(settings)
    content_data = load_image_data(content) if isinstance(content, (str, os.PathLike)) else None
    arrays = read_inputs(content if content_data is None else content_data.rgb, style)
    extras = read_extras(settings, content_data, arrays[0][1].shape[:2])
    backends.choose(settings.backend)  # once per process, before anything imports Keras
    backends.ops()  # TensorFlow loaded quietly, before any plugin module imports it
    from nstcore.blend import parse_blend
    from nstcore.device import resolve_device
    from nstcore.engine import Engine
    from nstcore.imageio import long_side_shape

    blend = parse_blend(settings.style_blend, len(arrays) - 1)
    key = engine_key(settings, plan)
    cached = engines.get(key) if engines is not None else None
    if cached is not None:
        extractor, losses, solver = cached.extractor, cached.losses, cached.solver
        origins = cached.objective.origins
    else:
        extractor, losses, solver, origins = build_components(settings, plan)
    layers = [name for loss in losses for name in loss.layers if name in extractor.layers]
    style_size = max(1, round(settings.size * settings.style_scale))
    shapes = [long_side_shape(*arrays[0][1].shape[:2], settings.size)]
    shapes += [long_side_shape(*array.shape[:2], style_size) for _, array in arrays[1:]]
    tiling = plan_tiling(settings, extractor, losses, origins, layers, shapes)
    minimum = extractor.min_side(layers) if layers else 1
    needs = f"extractor '{settings.extractor}' needs"
    content_image, styles = resize_inputs(arrays, settings.size, style_size, minimum, needs)
    sizes = usable_sizes(settings, [array for _, array in arrays], minimum, needs)
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    colour_source = None
    if settings.preserve_color == "histogram":
        from nstcore.color import match_histogram

        styles = [match_histogram(image, content_image) for image in styles]
    elif settings.preserve_color == "luminance":
        from nstcore.color import luminance_inputs

        colour_source = content_image
        content_image, styles = luminance_inputs(content_image, styles)
    init = start_image(settings, content_image, styles[0], extras.get("init"))
    alpha = extras.get("alpha")
    if alpha is not None and alpha.shape != content_image.shape[:2]:
        from nstcore.pyramid import resize_to

        alpha = np.clip(resize_to(alpha[:, :, None], content_image.shape[:2])[:, :, 0], 0.0, 1.0)
    if cached is not None:
        engine = cached
        engine.device, engine.tiling = device, tiling
    else:
        engine = Engine(extractor, losses, solver, device=device, origins=origins, tiling=tiling)
        if engines is not None:
            engines[key] = engine
    return PreparedRun(settings, plan, engine, content_image, styles, init, sizes,
                       steps_per_scale(settings, sizes), blend, extras.get("mask"), colour_source,
                       alpha, extras.get("icc_profile"))


def engine_key(settings: Settings, plan: Plan) -> str:
    """What decides the built components: the plan's plugins and options, and the settings
    :func:`build_components` hands to the losses."""
    import json

    fields = {name: getattr(settings, name) for name in (
        "losses", "loss_weights", "content_weight", "style_weight", "tv_weight", "content_layers",
        "style_layers", "content_layer_weights", "style_layer_weights")}
    return json.dumps([plan.options(), fields], sort_keys=True, default=str)


def read_extras(settings: Settings, content: Any, content_shape: tuple[int, int]) -> dict[str, Any]:
    """What the output carries back from the content file (``content``, an
    :class:`~nstcore.imageio.ImageData` or None for an array): alpha and ICC profile; and the
    other files, read (and refused) before any work: the ``--style-mask``, an ``--init`` image."""
    from nstcore.imageio import load_image

    extras: dict[str, Any] = {}
    if content is not None:
        extras["alpha"], extras["icc_profile"] = content.alpha, content.icc_profile
    if settings.style_mask is not None:
        from nstcore.mask import check_aspect, load_mask

        extras["mask"] = load_mask(settings.style_mask)
        check_aspect(extras["mask"].shape[:2], content_shape)
    if settings.init not in INIT_KINDS:
        try:
            extras["init"] = load_image(settings.init)
        except InputError as exc:
            raise InputError(f"--init must be content, noise, style or an image file; {exc}") from None
    return extras


#: ``--init`` values that are not a file.
INIT_KINDS = ("content", "noise", "style")


def start_image(settings: Settings, content: np.ndarray, style: np.ndarray,
                image: np.ndarray | None) -> np.ndarray:
    """The first scale's starting image at the content's (output's) shape: the content, uniform
    noise (``--seed``), the (first) style image or an image file, each stretched to that shape."""
    from nstcore.pyramid import resize_to

    if settings.init == "noise":
        rng = np.random.default_rng(settings.seed)
        return rng.uniform(0.0, 1.0, content.shape).astype(np.float32)
    if settings.init == "content":
        return content
    source = style if settings.init == "style" else image
    if settings.preserve_color == "luminance" and settings.init != "style":
        from nstcore.color import grey, luminance

        source = grey(luminance(source))
    return np.clip(resize_to(source, content.shape[:2], "bicubic"), 0.0, 1.0)


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
    policy.cap_at_final(*shapes[0])
    return policy


def usable_sizes(settings: Settings, images: Sequence[np.ndarray], minimum: int,
                 needs: str) -> list[int]:
    """The run's scales, without the coarse ``auto`` ones at which an image's short side would be
    below ``minimum`` (what the extractor needs); an explicit list with such a size is refused."""
    from nstcore.imageio import long_side_shape

    def fits(size: int) -> bool:
        content, *styles = images
        style_size = max(1, round(size * settings.style_scale))
        return (min(long_side_shape(*content.shape[:2], size)) >= minimum
                and all(min(long_side_shape(*style.shape[:2], style_size)) >= minimum
                        for style in styles))

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
