"""Contract checks for plugin authors: call them from your tests.

    from nstcore.testing import check_loss
    from my_plugin.loss import MyLoss

    def test_my_loss_honours_the_contract():
        check_loss(MyLoss)

Each check runs at tiny size on :class:`TinyVGG`, a small fixed-seed network with VGG19's layer
names and pooling (no weights file needed), and raises :class:`ContractError` with a message that
says what to fix. Pass ``extractor=`` to check against a real extractor instead.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from nstcore.extractor import FeatureExtractor, Features

#: VGG19's conv layers, block by block (how many per block): the names losses ask for.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG19_LAYER_NAMES = tuple(f"block{b}_conv{i}" for b, n in enumerate(VGG19_BLOCKS, 1)
                          for i in range(1, n + 1))


class ContractError(AssertionError):
    """A plugin breaks the nstcore contract; the message says what to fix."""


def _tf():
    from nstcore.tfload import load_tensorflow

    load_tensorflow()
    import tensorflow as tf

    return tf


class TinyVGG(FeatureExtractor):
    """VGG19's layer names and pooling with ``width`` channels per layer and fixed random weights.

    The kit's own network, so plugin tests need no weights file and no particular extractor.
    """

    layers = VGG19_LAYER_NAMES

    def __init__(self, width: int = 4, seed: int = 0) -> None:
        tf = _tf()
        rng = np.random.default_rng(seed)
        self.kernels, cin = [], 3
        for _ in self.layers:
            scale = np.sqrt(2.0 / (9 * cin))
            self.kernels.append((tf.constant(rng.normal(0, scale, (3, 3, cin, width)), tf.float32),
                                 tf.constant(rng.normal(0, 0.1, (width,)), tf.float32)))
            cin = width
        self.selected: tuple[str, ...] = ()

    def select(self, layers: Sequence[str]) -> None:
        self.selected = tuple(layers)

    @classmethod
    def tile_geometry(cls, layers: Sequence[str]) -> Any:
        from nstcore.tiling import conv_pool_geometry, vgg_network

        return conv_pool_geometry(vgg_network(cls.layers), layers)

    def preprocess(self, image: Any) -> Any:
        return image - 0.5

    def __call__(self, image: Any) -> Features:
        tf = _tf()
        x = self.preprocess(tf.convert_to_tensor(image, tf.float32))
        features, remaining = {}, set(self.selected)
        for name, (kernel, bias) in zip(self.layers, self.kernels):
            if not remaining:
                break
            if name.endswith("_conv1") and name != self.layers[0]:
                x = tf.nn.max_pool2d(x, 2, 2, "VALID")  # between blocks, as in VGG19
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
            if name in remaining:
                features[name] = x
                remaining.discard(name)
        return features


def tiny_images(size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(content, style, start image): smooth random images in [0, 1], float32.

    Content and start are (size, size, 3); the style image has another size and shape
    (0.75 size tall, 1.25 size wide), as in real runs, so a loss that assumes equal sizes fails.
    """
    rng = np.random.default_rng(seed)
    shapes = [(size, size), (max(16, round(size * 0.75)), round(size * 1.25)), (size, size)]
    images = []
    for height, width in shapes:
        rows = np.linspace(0, 1, height, dtype=np.float32)
        cols = np.linspace(0, 1, width, dtype=np.float32)
        freq = rng.uniform(1, 6, 3)
        phase = rng.uniform(0, 6.28, 3)
        image = 0.5 + 0.4 * np.sin(freq[None, None] * rows[:, None, None] * 6.28 + phase[None, None]
                                   + cols[None, :, None] * freq[::-1][None, None] * 3.0)
        images.append(image.astype(np.float32))
    return images[0], images[1], images[2]


def _build(factory: Any, **options: Any) -> Any:
    """A class or factory is called; an instance (it has ``prepare``) is used as it is."""
    if isinstance(factory, type) or not hasattr(factory, "prepare"):
        return factory(**options)
    return factory


def check_loss(factory: Callable[..., Any] | Any, *, extractor: FeatureExtractor | None = None,
               size: int = 32, rtol: float = 0.1) -> None:
    """Check a loss (its class, a factory, or an instance) against the Loss contract."""
    tf = _tf()
    from nstcore.loss import ROLES

    loss = _build(factory, name="under_test")
    label = f"loss {type(loss).__name__}"
    for attr in ("name", "weight", "layers", "prepare"):
        if not hasattr(loss, attr):
            raise ContractError(f"{label} has no '{attr}': subclass nstcore.loss.Loss")
    if getattr(loss, "role", None) not in ROLES:
        raise ContractError(f"{label} has role {getattr(loss, 'role', None)!r}; it must be one of"
                            f" {', '.join(ROLES)} (the role decides which --*-weight applies)")
    extractor = extractor or TinyVGG()
    unknown = [n for n in loss.layers if n not in extractor.layers]
    if unknown:
        raise ContractError(f"{label} asks for layers {unknown} that the extractor lacks"
                            f" (it has: {', '.join(extractor.layers)})")
    content, style, start = tiny_images(size)
    layers = [n for n in extractor.layers if n in loss.layers]
    if layers:
        extractor.select(layers)
        loss.prepare(extractor(content[None]), extractor(style[None]))
    else:
        loss.prepare({}, {})

    def value(image: Any) -> Any:
        features = extractor(image) if layers else {}
        return loss(features, image)

    image = tf.constant(start[None])
    result = tf.convert_to_tensor(_called(label, "eagerly", value, image))
    if result.shape.rank != 0:
        raise ContractError(f"{label} returned shape {result.shape.as_list()}, not a scalar:"
                            " reduce it (tf.reduce_sum or tf.reduce_mean)")
    if not bool(tf.math.is_finite(result)):
        raise ContractError(f"{label} returned {float(result)} for an ordinary image; it must be finite")
    again = float(value(image))
    if again != float(result):
        raise ContractError(f"{label} is not deterministic: {float(result)} then {again} for the same"
                            " image (avoid random ops, or seed them statelessly)")
    traced = float(_called(label, "inside tf.function", tf.function(value), image))
    if not np.isclose(traced, float(result), rtol=1e-4, atol=1e-6):
        raise ContractError(f"{label} gives {traced} inside tf.function but {float(result)} eagerly:"
                            f" {_TRACE_HINT}")
    _check_gradient(label, value, start, rtol)
    if layers:
        check_tiled(loss, extractor=extractor, size=size, tile=16)


def check_tiled(factory: Callable[..., Any] | Any, *, extractor: FeatureExtractor | None = None,
                size: int = 32, tile: int = 16, rtol: float = 1e-4) -> None:
    """Check that a loss's statistics give the untiled value and gradient (and targets from
    tiled features in ``prepare``) when the image is evaluated in ``tile``-px tiles.

    A loss without :meth:`~nstcore.loss.Loss.statistics` passes (it runs untiled only); one
    that defines just one of the two methods fails. ``check_loss`` calls this.
    """
    tf = _tf()
    from nstcore.engine import Objective
    from nstcore.tiling import TiledFeatures, TiledObjective, can_tile, statistics_methods

    loss = _build(factory, name="under_test")
    label = f"loss {type(loss).__name__}"
    defines = statistics_methods(loss)
    if len(defines) == 1:
        raise ContractError(f"{label} defines {defines[0]}() but not the other of statistics() and"
                            " from_statistics(): tiling needs both")
    extractor = extractor or TinyVGG()
    geometry = extractor.tile_geometry(loss.layers) if loss.layers else None
    if not loss.layers or not can_tile(loss) or geometry is None:
        return
    layers = [n for n in extractor.layers if n in loss.layers]
    extractor.select(layers)
    content, style, start = tiny_images(size)
    # an odd width, so the last tile is partial (content and start keep the same shape)
    content, start = (np.ascontiguousarray(array[:, : size - 3]) for array in (content, start))
    image = tf.constant(start[None])

    def value_and_gradient(objective: Any) -> tuple[float, np.ndarray]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, _ = objective(image)
        return float(total), tape.gradient(total, image).numpy()

    loss.prepare(extractor(content[None]), extractor(style[None]))
    objective = Objective(extractor, [loss])
    whole, whole_gradient = value_and_gradient(objective)
    tiled_features = [TiledFeatures(extractor, tf.constant(array[None]), layers, tile, geometry)
                      for array in (content, style)]
    loss.prepare(*tiled_features)
    try:
        tiled, tiled_gradient = value_and_gradient(TiledObjective(objective, tile, geometry))
    except ContractError:
        raise
    except Exception as exc:
        raise ContractError(f"{label} fails when tiled: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not np.isclose(tiled, whole, rtol=rtol, atol=1e-8):
        raise ContractError(f"{label}: tiled value {tiled:.8g} differs from untiled {whole:.8g}:"
                            " statistics() must return sums over the given positions (and counts),"
                            " from_statistics() the loss of their totals")
    scale = float(np.abs(whole_gradient).max()) or 1.0
    worst = float(np.abs(tiled_gradient - whole_gradient).max()) / scale
    if worst > rtol * 10:
        raise ContractError(f"{label}: tiled gradient differs from untiled by {worst:.2g} of its"
                            " largest value: statistics() must be differentiable sums over positions")


_TRACE_HINT = ("avoid Python side effects, .numpy() and Python if/for on tensor values in"
               " __call__: the engine runs it inside tf.function")


def _called(label: str, how: str, function: Callable[[Any], Any], image: Any) -> Any:
    """``function(image)``; a crash becomes a ContractError with the hint that fits it."""
    try:
        return function(image)
    except ContractError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ContractError(f"{label} raised {type(exc).__name__} when called {how}: {first};"
                            f" {_TRACE_HINT}; and do not assume the style image has the content"
                            " image's size") from exc


def _check_gradient(label: str, value: Callable[[Any], Any], start: np.ndarray, rtol: float) -> None:
    tf = _tf()
    image = tf.constant(start[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        result = value(image)
    gradient = tape.gradient(result, image)
    hint = ("the loss must be differentiable w.r.t. the image: no .numpy(), tf.stop_gradient,"
            " tf.round, argmax or casts to integers on the path from features to the value")
    if gradient is None:
        raise ContractError(f"{label}: gradient w.r.t. the image is None; {hint}")
    gradient = gradient.numpy()
    if not np.isfinite(gradient).all():
        raise ContractError(f"{label}: gradient w.r.t. the image has NaN or Inf values")
    if not np.any(gradient):
        raise ContractError(f"{label}: gradient w.r.t. the image is zero everywhere; {hint}")
    # central finite difference along the gradient's own direction
    direction = gradient / np.linalg.norm(gradient)
    analytic = float(np.sum(gradient * direction))
    for eps in (1e-2, 3e-3, 3e-2):
        plus = float(value(tf.constant(start[None] + eps * direction)))
        minus = float(value(tf.constant(start[None] - eps * direction)))
        numeric = (plus - minus) / (2 * eps)
        if np.isclose(numeric, analytic, rtol=rtol, atol=1e-6 * max(1.0, abs(analytic))):
            return
    raise ContractError(f"{label}: gradient does not match finite differences (autodiff"
                        f" {analytic:.6g}, numeric {numeric:.6g}); {hint}")


class QuadraticObjective:
    """``sum((image - target)^2)``, a convex objective for solver tests: its minimum is known.

    ``target`` is a [1, h, w, 3] array; an image of another size is compared with the target
    resized to it (for coarse-to-fine tests).
    """

    term_names = ("distance",)

    def __init__(self, target: Any) -> None:
        self.target = _tf().constant(np.asarray(target, np.float32))

    def __call__(self, image: Any) -> tuple[Any, dict[str, Any]]:
        tf = _tf()
        target = self.target
        if tuple(image.shape[1:3]) != tuple(target.shape[1:3]):
            target = tf.image.resize(target, image.shape[1:3])
        distance = tf.reduce_sum(tf.square(image - target))
        return distance, {"distance": distance}


def check_solver(factory: Callable[..., Any] | Any, *, steps: int = 5, size: int = 8) -> None:
    """A solver lowers a convex objective, calls back every step, and keeps pixels in [0, 1]."""
    tf = _tf()
    solver = factory() if isinstance(factory, type) else factory
    label = f"solver {type(solver).__name__}"
    rng = np.random.default_rng(1)
    objective = QuadraticObjective(rng.uniform(-0.5, 1.5, (1, size, size, 3)))  # partly out of range
    target = objective.target

    start = tf.constant(np.full((1, size, size, 3), 0.5, np.float32))
    seen: list[tuple[int, float]] = []
    seen_images: list[np.ndarray] = []

    def callback(step, image, total, terms, evaluations):
        array = np.asarray(image)
        if array.shape != (1, size, size, 3):
            raise ContractError(f"{label} passed an image of shape {array.shape} to the callback")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ContractError(f"{label} left pixels outside [0, 1] at step {step}: clip or project")
        seen.append((step, float(total)))
        seen_images.append(array)
        return True

    from nstcore.solver import SolverStopped

    try:
        final = np.asarray(solver.minimize(objective, start, steps, callback))
    except SolverStopped as stop:
        if not stop.converged or not seen:
            raise ContractError(f"{label} stopped after {len(seen)} step(s) on a convex objective:"
                                f" {stop.reason}") from None
        final = np.asarray(seen_images[-1])
    if [s for s, _ in seen] != list(range(1, len(seen) + 1)) or not seen:
        raise ContractError(f"{label} must call the callback once per step with step = 1, 2, ...")
    if len(seen) > steps:
        raise ContractError(f"{label} ran {len(seen)} steps; asked for {steps}")
    if final.min() < 0.0 or final.max() > 1.0:
        raise ContractError(f"{label} returned pixels outside [0, 1]")
    first = float(tf.reduce_sum(tf.square(start - target)))
    last = float(tf.reduce_sum(tf.square(tf.constant(final) - target)))
    if not last < first:
        raise ContractError(f"{label} did not lower a convex objective ({first:.4g} -> {last:.4g})")


def check_extractor(extractor: FeatureExtractor, *, size: int = 32) -> None:
    """An extractor returns exactly the selected layers, finite, batch 1, differentiably."""
    tf = _tf()
    label = f"extractor {type(extractor).__name__}"
    if not extractor.layers or len(set(extractor.layers)) != len(extractor.layers):
        raise ContractError(f"{label}.layers must list distinct layer names")
    chosen = [extractor.layers[0], extractor.layers[-1]]
    extractor.select(chosen)
    content, _, _ = tiny_images(size)
    image = tf.constant(content[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        features = extractor(image)
        total = tf.add_n([tf.reduce_sum(v) for v in features.values()])
    if set(features) != set(chosen):
        raise ContractError(f"{label} returned {sorted(features)}; select() asked for {chosen}")
    for name, value in features.items():
        if value.shape.rank != 4 or value.shape[0] != 1:
            raise ContractError(f"{label} layer {name} has shape {value.shape}; want [1, h, w, c]")
        if not bool(tf.reduce_all(tf.math.is_finite(value))):
            raise ContractError(f"{label} layer {name} has NaN or Inf values")
    if tape.gradient(total, image) is None:
        raise ContractError(f"{label}: features are not differentiable w.r.t. the image")
    again = extractor(image)
    if any(not np.array_equal(again[n].numpy(), features[n].numpy()) for n in chosen):
        raise ContractError(f"{label} is not deterministic")
