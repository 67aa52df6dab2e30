"""The engine: composes an extractor, losses and a solver into one style-transfer run.

It works with plugin objects built by hand as well as with those the CLI builds from names::

    engine = Engine(VGG19Extractor(), [ContentLoss(), GramStyleLoss(), TotalVariationLoss()], Adam())
    result = engine.run(content, style, steps=100)
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nstcore import backends
from nstcore.errors import InputError, PluginError
from nstcore.extractor import FeatureExtractor
from nstcore.loss import HoldError, Loss
from nstcore.objective import Objective
from nstcore.solver import Solver, SolverStopped, Stepper
from nstcore.options import did_you_mean

backends.ops()  # the backend chosen now if nobody chose before (TensorFlow loaded quietly)


@dataclass
class StepInfo:
    """What the engine knows after one step; passed to callbacks and the ``on_step`` hook."""

    step: int
    steps: int
    total: float
    terms: dict[str, float]
    seconds: float
    elapsed: float
    evaluations: int
    image: Any  # the picture (without the margin), a [1, h, w, 3] float32 array in [0, 1]
    size: int = 0  # the long side of the scale this step ran at
    canvas: Any = None  # what the solver optimises: the picture and its margin, [1, H, W, 3]
    setup_seconds: float = 0.0  # on a scale's first step: that scale's set-up (targets, start)


@dataclass
class Result:
    """A finished (or stopped) run: the image, per-step losses and timings."""

    image: np.ndarray  # (h, w, 3) float32 in [0, 1]
    losses: list[dict[str, float]] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)
    evaluations: int = 0
    #: None (all steps done), "converged" (the solver converged early: a success),
    #: "solver_failed" (e.g. its line search found no lower loss), "interrupted" or "nonfinite"
    stopped: str | None = None
    message: str = ""
    device: str = ""
    #: one entry per scale: size, height, width, first_step (and "stopped" if it ended early)
    scales: list[dict[str, Any]] = field(default_factory=list)
    #: what the output file carries back from the content file (set by nstcore.run)
    alpha: np.ndarray | None = None  # (h, w) in [0, 1]
    icc_profile: bytes | None = None

    @property
    def steps(self) -> int:
        return len(self.losses)

    @property
    def first_step_seconds(self) -> float | None:
        """The first step, which includes tracing the graph."""
        return self.step_seconds[0] if self.step_seconds else None

    @property
    def median_step_seconds(self) -> float | None:
        """Median over the steps after the first (or the first if it is the only one). Across the
        scales of a pyramid this mixes steps of very different sizes: see :meth:`scale_timings`."""
        rest = self.step_seconds[1:] or self.step_seconds
        return statistics.median(rest) if rest else None

    def scale_timings(self) -> list[dict[str, Any]]:
        """Per scale that ran: its long side, steps taken, its set-up (targets at that size, the
        solver's start), its first step and the median of its later steps (the first if it is
        the only one), in seconds."""
        timings = []
        for index, scale in enumerate(self.scales):
            end = self.scales[index + 1]["first_step"] - 1 if index + 1 < len(self.scales) else self.steps
            seconds = self.step_seconds[scale["first_step"] - 1:end]
            if not seconds:
                continue
            timings.append({"size": scale["size"], "steps": len(seconds),
                            "setup_seconds": scale.get("setup_seconds", 0.0),
                            "first_step_seconds": seconds[0],
                            "median_step_seconds": statistics.median(seconds[1:] or seconds),
                            "seconds": sum(seconds)})
        return timings


class _Stopped(Exception):
    """The step callback asked the run to stop."""


def as_styles(style: Any) -> list[np.ndarray]:
    """One style image (an (h, w, 3) array) or several (a list of them), as float32 arrays."""
    from nstcore.blend import style_list

    return [np.asarray(image, dtype=np.float32) for image in style_list(style)]


class Engine:
    """Prepares the losses' targets once, then lets the solver minimise their weighted sum."""

    def __init__(self, extractor: FeatureExtractor, losses: Sequence[Loss], solver: Solver,
                 device: str | None = None, origins: Mapping[str, str] | None = None,
                 tiling: Any = None) -> None:
        if not losses:
            raise InputError("no losses selected")
        names = [loss.name for loss in losses]
        if len(set(names)) != len(names):
            raise InputError(f"each loss must have a distinct name, got {names}")
        backend = backends.current()
        for kind, component in [("extractor", extractor), ("solver", solver),
                                *[("loss", loss) for loss in losses]]:
            name = getattr(component, "name", type(component).__name__)
            origin = (origins or {}).get(name) or type(component).__module__
            backends.require(f"{kind} '{name}' from plugin {origin}", kind,
                             backends.declared(component), backend)
        self.extractor = extractor
        self.losses = list(losses)
        self.solver = solver
        self.device = device
        self.objective = Objective(extractor, self.losses, origins)
        #: a :class:`nstcore.tiling.TilePolicy`, or None: never tile
        self.tiling = tiling
        self._selected: list[str] | None = None

    def layers(self) -> list[str]:
        """The union of the layers the losses need, in the extractor's order."""
        known = set(self.extractor.layers)
        for loss in self.losses:
            unknown = [name for name in loss.layers if name not in known]
            if unknown:
                origin = self.objective.origins.get(loss.name)
                asked = f"loss '{loss.name}'" + (f" from plugin {origin}" if origin else "")
                raise InputError(f"unknown layer {', '.join(unknown)} asked for by {asked}"
                                 f" (layers: {', '.join(self.extractor.layers)})"
                                 + did_you_mean(unknown[0], self.extractor.layers))
        wanted = {name for loss in self.losses for name in loss.layers}
        return [name for name in self.extractor.layers if name in wanted]

    def tile_for(self, shape: Sequence[int]) -> int | None:
        """The tile core size for an image of ``shape`` (h, w), or None to run it whole."""
        if self.tiling is None or not self.layers():
            return None
        return self.tiling.tile_for(int(shape[0]), int(shape[1]))

    def objective_for(self, shape: Sequence[int]) -> Any:
        """The objective for images of ``shape`` (h, w): tiled when the tiling policy says so."""
        tile = self.tile_for(shape)
        if tile is None:
            return self.objective
        self._require_tiling_backend(shape)
        from nstcore.tiling import TiledObjective

        return TiledObjective(self.objective, tile, self.tiling.geometry)

    def features(self, image: np.ndarray) -> Any:
        """The selected layers' features of ``image`` (h, w, 3): a lazy, tile-by-tile mapping
        (:class:`nstcore.tiling.TiledFeatures`) when the image is too large to run whole."""
        tensor = backends.constant(image[None])
        tile = self.tile_for(image.shape[:2])
        if tile is None:
            return self.extractor(tensor)
        self._require_tiling_backend(image.shape[:2])
        from nstcore.tiling import TiledFeatures

        return TiledFeatures(self.extractor, tensor, self.layers(), tile, self.tiling.geometry)

    @staticmethod
    def _require_tiling_backend(shape: Sequence[int]) -> None:
        if backends.current() != "tensorflow":
            raise InputError(f"a {shape[1]}x{shape[0]} canvas needs exact tiling, which runs on the"
                             f" tensorflow backend only (this run: {backends.current()}); use"
                             " --backend tensorflow, a smaller --size, or --tile off")

    def prepare(self, content: np.ndarray, style: Any, blend: Sequence[float] | None = None) -> None:
        """Compute the losses' targets from ``content`` and ``style`` (one array, or a list of
        style images mixed with ``blend`` weights summing to 1; default equal)."""
        from nstcore.blend import parse_blend, prepare_losses

        layers = self.layers()
        styles = as_styles(style)
        blend = parse_blend(blend, len(styles))
        with self.device_scope():
            if layers:
                if self._selected != layers:  # once per engine: building the network is slow
                    self.extractor.select(layers)
                    self._selected = layers
                content_features = self.features(content)
                style_features = [self.features(image) for image in styles]
            else:
                content_features, style_features = {}, [{} for _ in styles]
            try:
                self.objective.losses = prepare_losses(self.losses, content_features,
                                                       style_features, blend)
            except HoldError as exc:
                raise PluginError(f"loss '{exc.loss}' from plugin"
                                  f" {self.objective.origins.get(exc.loss, '?')}: {exc.detail}"
                                  ) from exc

    def start(self, content: np.ndarray, style: Any, init: np.ndarray | None = None) -> Any:
        """Prepare and return the solver's stepper (the benchmarks time its ``step()``).

        Run each ``step()`` inside ``engine.device_scope()`` so it lands on the engine's device.
        """
        start = self._begin(content, style, init)
        with self.device_scope():
            return self.solver.start(self.objective_for(start.shape[1:3]), backends.constant(start))

    def initial_terms(self, content: np.ndarray, style: Any, init: np.ndarray | None = None,
                      blend: Sequence[float] | None = None) -> list[dict[str, Any]]:
        """Each loss at the start image: unweighted value, weight, weighted value (``--dry-run``).

        Computed as a run's step computes it (compiled by the backend, with the gradient), so
        a loss that works eagerly but not in a run fails here too.

        Terms of very different size mean one dominates the objective: compare the weighted
        column to choose weights.
        """
        backend = backends.get()
        with self.device_scope():
            start = backends.constant(self._begin(content, style, init, blend))
            objective = self.objective_for(start.shape[1:3])
            # traced, with the gradient, as a solver's step is: what fails in a run fails here
            _, terms, _ = backend.compile(backend.value_and_grad(objective))(start)
        rows = []
        for loss in self.losses:
            weighted = float(terms[loss.name])
            rows.append({"name": loss.name, "plugin": self.objective.origins.get(loss.name, ""),
                         "role": loss.role, "weight": loss.weight, "weighted": weighted,
                         "value": weighted / loss.weight if loss.weight else float("nan")})
        return rows

    def device_scope(self) -> Any:
        """The backend's scope for the engine's device (a no-op when none was given)."""
        return backends.get().scope(self.device)

    def _begin(self, content: np.ndarray, style: Any, init: np.ndarray | None,
               blend: Sequence[float] | None = None) -> np.ndarray:
        """Prepare the losses' targets; the starting image as [1, h, w, 3] float32."""
        self.prepare(content, style, blend)
        return np.asarray(content if init is None else init, dtype=np.float32)[None]

    def run(self, content: np.ndarray, style: Any, steps: int | Sequence[int], *,
            init: np.ndarray | None = None,
            on_step: Callable[[StepInfo], Any] | None = None,
            sizes: Sequence[int] | None = None, style_scale: float = 1.0,
            blend: Sequence[float] | None = None, mask: np.ndarray | None = None,
            margin: int = 0, start_noise: float = 0.0, seed: int | None = None) -> Result:
        """Run ``steps`` solver steps (a number, or one per scale) at each size of ``sizes``
        (coarse to fine; default: one scale, the content's own size), starting from ``init``
        (default: the content image).

        ``style`` is one image or a list mixed with ``blend`` weights (default: equal).
        ``content`` and the styles come at the final size; each scale resizes them (the styles to
        ``style_scale`` times the scale's long side), recomputes the losses' targets, and starts
        from the previous scale's result upsampled (bicubic, clipped to [0, 1]), with the solver's
        carried state (:meth:`nstcore.solver.Stepper.carry`). ``mask`` ((h, w) in [0, 1], any size
        with the content's aspect ratio) limits where the picture may change (:mod:`nstcore.mask`).
        ``margin`` px of free canvas surround the picture at every scale (:mod:`nstcore.margin`):
        optimised with it and cropped away, so the network's border is not the picture's.
        ``start_noise`` adds Gaussian noise of that standard deviation (drawn from ``seed``, 0 if
        None) to the first scale's starting canvas, margin included: a start mirror-symmetric
        about the picture's edge lines texture up along the edges (docs/defaults.md).
        Ctrl-C stops the run and returns
        the last image with ``stopped="interrupted"``; a non-finite loss stops it with
        ``stopped="nonfinite"`` and keeps the last finite image.
        """
        from nstcore.imageio import long_side_shape
        from nstcore.pyramid import resize_to
        from nstcore.malloc import free_to_system, release_freed_memory
        from nstcore.margin import canvas_shape, crop, extend, margin_at, resizer

        sizes = list(sizes or [max(content.shape[:2])])
        per_scale = [steps] * len(sizes) if isinstance(steps, int) else list(steps)
        if len(per_scale) != len(sizes) or min(per_scale) < 1:
            raise InputError(f"steps must be at least 1 at each of the {len(sizes)} scale(s),"
                             f" got {steps}")
        total_steps = sum(per_scale)
        styles = as_styles(style)
        start_image = np.asarray(content if init is None else init, dtype=np.float32)
        result = Result(image=start_image.copy(), device=self.device or "default")
        clock = {"last": time.perf_counter(), "start": time.perf_counter(), "evaluations": 0}
        scale = {"size": sizes[0], "margin": 0}

        def canvas_at(size: int) -> tuple[tuple[int, int], int]:
            shape = long_side_shape(*content.shape[:2], size)
            pad = margin_at(shape, margin)
            return shape, pad

        if any(self.tile_for(canvas_shape(*canvas_at(size))) for size in sizes):
            free_to_system()  # memory, not time, is what limits a run that tiles

        def callback(image: Any, total: Any, terms: Mapping[str, Any], evaluations: int) -> bool:
            if scale.get("masked") is not None:  # the solver's variable, not the picture
                image = scale["masked"].compose(image)
            total_value = float(total)  # reads the result back, so the timer sees finished work
            now = time.perf_counter()
            seconds, clock["last"] = now - clock["last"], now
            step = result.steps + 1
            values = {name: float(value) for name, value in terms.items()}
            result.step_seconds.append(seconds)
            result.evaluations = clock["evaluations"] + evaluations
            result.losses.append({"step": step, "total": total_value, **values})
            if not math.isfinite(total_value):
                result.stopped = "nonfinite"
                result.message = (f"loss became {total_value} at step {step}; stopped and kept"
                                  " the last image with a finite loss")
                return False
            array = backends.to_numpy(image)[0]
            if not np.isfinite(array).all():
                result.stopped = "nonfinite"
                result.message = f"image became non-finite at step {step}; kept the last finite image"
                return False
            scale["canvas"] = array.copy()
            result.image = crop(scale["canvas"], scale["margin"])
            if on_step is not None:
                first = result.scales[-1]["first_step"] == step
                info = StepInfo(step, total_steps, total_value, values, seconds, now - clock["start"],
                                result.evaluations, result.image[None], scale["size"],
                                scale["canvas"][None],
                                result.scales[-1].get("setup_seconds", 0.0) if first else 0.0)
                if on_step(info) is False:
                    return False
            return True

        state = None
        try:
            for index, size in enumerate(sizes):
                scale["size"] = size
                shape, pad = canvas_at(size)
                scale["margin_before"], scale["margin"] = scale["margin"], pad
                scale_started = time.perf_counter()
                canvas = canvas_shape(shape, pad)
                style_size = max(1, round(size * style_scale))
                scaled_styles = [resize_to(image, long_side_shape(*image.shape[:2], style_size))
                                 for image in styles]
                tile = self.tile_for(canvas)
                if tile is not None:  # said first: the tiled targets take a while at this size
                    from nstcore.console import info
                    from nstcore.tiling import plan_tiles

                    count = len(plan_tiles(canvas[0], canvas[1], tile, self.tiling.geometry))
                    info(f"{canvas[1]}x{canvas[0]}: evaluating in {count} tiles of {tile} px (exact,"
                         f" halo {self.tiling.geometry.halo} px; slower, in bounded memory)")
                scaled_content = extend(resize_to(content, shape), pad)
                self.prepare(scaled_content, scaled_styles, blend)
                if index == 0:
                    begin = extend(resize_to(start_image, shape), pad)
                    if start_noise:
                        noise = np.random.default_rng(0 if seed is None else seed).normal(
                            0.0, start_noise, begin.shape)
                        begin = np.clip(begin + noise, 0.0, 1.0).astype(np.float32)
                else:  # the previous scale's picture, resized, with a new mirrored margin
                    resize = resizer(scale["margin_before"], shape, pad)
                    resized = resize(backends.constant(scale["canvas"][None]), "bicubic")
                    begin = np.clip(backends.to_numpy(resized)[0], 0.0, 1.0)
                scale["canvas"] = begin  # until this scale's first step replaces it
                result.scales.append({"size": size, "height": shape[0], "width": shape[1],
                                      "first_step": result.steps + 1, "tile": tile, "margin": pad})
                objective = self.objective_for(canvas)
                scale["masked"] = None
                if mask is not None:
                    from nstcore.mask import MaskedObjective, mask_for

                    objective = scale["masked"] = MaskedObjective(
                        objective, extend(mask_for(mask, shape, content.shape[:2])[0], pad)[None],
                        scaled_content[None])
                with self.device_scope():
                    stepper = self._start(objective, backends.constant(begin[None]), state)
                    state = begin = None  # copied by the solver: 9 floats a pixel (moments, start)
                    # the scale's set-up (targets, the solver's start) is not its first step
                    clock["last"] = time.perf_counter()
                    result.scales[-1]["setup_seconds"] = clock["last"] - scale_started
                    try:
                        for _ in range(per_scale[index]):
                            total, terms, evaluations = stepper.step()
                            if callback(stepper.image(), total, terms, evaluations) is False:
                                raise _Stopped
                    except SolverStopped as stop:
                        if index == len(sizes) - 1:
                            stepper.close()
                            raise
                        result.scales[-1]["stopped"] = stop.reason  # go on at the next size
                    except BaseException:
                        stepper.close()
                        raise
                    clock["evaluations"] = result.evaluations
                    if index + 1 < len(sizes):
                        state = stepper.carry(resizer(pad, *canvas_at(sizes[index + 1])))
                    stepper.close()
                    if index + 1 < len(sizes):
                        # this scale's variables, trace and tiles must not add to the next peak
                        stepper = objective = scale["masked"] = None
                        release_freed_memory()
        except SolverStopped as stop:
            result.stopped = "converged" if stop.converged else "solver_failed"
            result.message = (f"the solver stopped after step {result.steps} of {total_steps}:"
                              f" {stop.reason}")
        except KeyboardInterrupt:
            result.stopped = "interrupted"
            result.message = f"interrupted after {result.steps} step(s)"
        except _Stopped:  # the callback said stop (a non-finite loss, or the caller's on_step)
            pass
        result.image = np.ascontiguousarray(result.image)
        return result

    def _start(self, objective: Any, image: Any, state: Any) -> Stepper:
        """The solver's stepper; ``state`` (carried from the previous scale) only when there is one,
        so solvers whose ``start`` takes no state keep working."""
        if state is None:
            return self.solver.start(objective, image)
        return self.solver.start(objective, image, state=state)
