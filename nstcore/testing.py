"""Contract checks for plugin authors: call them from your tests.

    from nstcore.testing import check_loss
    from my_plugin.loss import MyLoss

    def test_my_loss_honours_the_contract():
        check_loss(MyLoss)

Each check runs at tiny size on :class:`TinyVGG`, a small fixed-seed network with VGG19's layer
names and pooling (no weights file needed), and raises :class:`ContractError` with a message that
says what to fix. Pass ``extractor=`` to check against a real extractor instead.

The checks run on the process's backend (:mod:`nstcore.backends`: run your tests with
``NSTCORE_BACKEND=jax`` or ``torch`` to check a ``keras.ops`` loss there); the tiled check needs
TensorFlow and says SKIPPED elsewhere.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from nstcore import backends
from nstcore.extractor import FeatureExtractor, Features
from nstcore.resize import resize_tensor

#: VGG19's conv layers, block by block (how many per block): the names losses ask for.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG19_LAYER_NAMES = tuple(f"block{b}_conv{i}" for b, n in enumerate(VGG19_BLOCKS, 1)
                          for i in range(1, n + 1))


class ContractError(AssertionError):
    """A plugin breaks the nstcore contract; the message says what to fix."""


def _gradient(function: Callable[[Any], Any], image: Any) -> tuple[Any, Any]:
    """(value, gradient) of a scalar ``function`` at ``image``, by the backend's autodiff; the
    gradient is None where the value does not depend on the image."""
    backend = backends.get()
    try:
        total, _, gradient = backend.value_and_grad(lambda x: (function(x), {}))(image)
    except RuntimeError as exc:  # PyTorch: "does not require grad": no path from the image
        if "require grad" not in str(exc):
            raise
        return function(image), None
    return total, gradient


class TinyVGG(FeatureExtractor):
    """VGG19's layer names and pooling with ``width`` channels per layer and fixed random weights.

    The kit's own network, so plugin tests need no weights file and no particular extractor.
    """

    layers = VGG19_LAYER_NAMES
    backends = ("tensorflow", "jax", "torch")

    def __init__(self, width: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.kernels, cin = [], 3
        for _ in self.layers:
            scale = np.sqrt(2.0 / (9 * cin))
            self.kernels.append((backends.constant(rng.normal(0, scale, (3, 3, cin, width))),
                                 backends.constant(rng.normal(0, 0.1, (width,)))))
            cin = width
        self.selected: tuple[str, ...] = ()

    def select(self, layers: Sequence[str]) -> None:
        self.selected = tuple(layers)

    @classmethod
    def tile_geometry(cls, layers: Sequence[str]) -> Any:
        from nstcore.tiling import conv_pool_geometry

        network: list[tuple[str, Any]] = []  # 3x3 convolutions, a 2x2 pool before each block
        for name in cls.layers:
            if name.endswith("_conv1") and network:
                network.append(("pool", 2))
            network.append(("conv", (name, 3)))
        return conv_pool_geometry(network, layers)

    def preprocess(self, image: Any) -> Any:
        return image - 0.5

    def __call__(self, image: Any) -> Features:
        ops = backends.ops()
        x = self.preprocess(ops.convert_to_tensor(image, "float32"))
        features, remaining = {}, set(self.selected)
        for name, (kernel, bias) in zip(self.layers, self.kernels):
            if not remaining:
                break
            if name.endswith("_conv1") and name != self.layers[0]:
                x = ops.max_pool(x, 2, 2, "valid")  # between blocks, as in VGG19
            x = ops.relu(ops.conv(x, kernel, 1, "same") + bias)
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
               size: int = 32, rtol: float = 1e-2, name: str | None = None) -> list[str]:
    """Check a loss (its class, a factory, or an instance) against the Loss contract.

    Returns the checks that ran, one line each, and those skipped with the reason (print them
    with ``-s``, or assert on them: a loss without ``statistics()`` is checked untiled only).
    ``name``: the name your plugin registers the loss under; it must not be taken by another
    installed plugin (a clash makes ``--losses NAME`` an error for every user who has both).
    """
    from nstcore.errors import PluginError
    from nstcore.loss import ROLES

    loss = _build(factory, name="under_test")
    label = f"loss {type(loss).__name__}"
    ran: list[str] = []
    if name is not None:
        ran.append(_check_name_free("loss", name, type(loss), label))
    for attr in ("name", "weight", "layers", "prepare"):
        if not hasattr(loss, attr):
            raise ContractError(f"{label} has no '{attr}': subclass nstcore.loss.Loss")
    if getattr(loss, "role", None) not in ROLES:
        raise ContractError(f"{label} has role {getattr(loss, 'role', None)!r}; it must be one of"
                            f" {', '.join(ROLES)} (the role decides which --*-weight applies)")
    extractor = extractor or TinyVGG()
    unknown = [n for n in loss.layers if n not in extractor.layers]
    if unknown:
        from nstcore.options import did_you_mean

        raise ContractError(f"{label} asks for layers {unknown} that the extractor lacks"
                            f" (it has: {', '.join(extractor.layers)})"
                            + did_you_mean(unknown[0], extractor.layers))
    ran.append(f"interface: name, weight, layers, prepare; role {loss.role!r}; layers known")
    content, style, start = tiny_images(size)
    layers = [n for n in extractor.layers if n in loss.layers]
    try:
        if layers:
            extractor.select(layers)
            loss.prepare(extractor(content[None]), extractor(style[None]))
        else:
            loss.prepare({}, {})
    except PluginError as exc:  # e.g. hold() given a tuple
        raise ContractError(f"{label}.prepare(): {getattr(exc, 'detail', exc)}") from None
    ran.append("prepare: targets from content and style features")

    def value(image: Any) -> Any:
        features = extractor(image) if layers else {}
        return loss(features, image)

    image = backends.constant(start[None])
    result = backends.ops().convert_to_tensor(_called(label, "eagerly", value, image))
    if len(result.shape) != 0:
        raise ContractError(f"{label} returned shape {list(result.shape)}, not a scalar:"
                            " reduce it (keras.ops.sum or keras.ops.mean; tf.reduce_sum in"
                            " TensorFlow code)")
    if not np.isfinite(float(result)):
        raise ContractError(f"{label} returned {float(result)} for an ordinary image; it must be finite")
    again = float(value(image))
    if again != float(result):
        raise ContractError(f"{label} is not deterministic: {float(result)} then {again} for the same"
                            " image (avoid random ops, or seed them statelessly)")
    ran.append(f"eager call on {backends.current()}: a finite scalar, the same twice")
    tracer = backends.get().TRACER
    if tracer:
        traced = float(_called(label, f"inside {tracer}", backends.get().compile(value), image))
        if not np.isclose(traced, float(result), rtol=1e-4, atol=1e-6):
            raise ContractError(f"{label} gives {traced} inside {tracer} but {float(result)}"
                                f" eagerly: {_TRACE_HINT}")
        ran.append(f"traced call ({tracer}): the eager value within 1e-4")
    else:
        ran.append(f"traced call: none on {backends.current()} (its steps run eagerly)")
    ran.append(_check_gradient(label, value, start, rtol))
    if not layers:
        ran.append("tiled: skipped (the loss uses no layers: it sees the whole image)")
    else:
        ran.append(check_tiled(loss, extractor=extractor, size=size, tile=16))
    return ran


def _check_name_free(kind: str, name: str, cls: type, label: str) -> str:
    """The registered ``name`` is not taken by a component of another installed plugin."""
    from nstcore.plugins import get_plugin_manager

    own = f"{cls.__module__}:{cls.__qualname__}"
    found = get_plugin_manager().registry.components.get(kind, {}).get(name, [])
    others = [c for c in found if not (isinstance(c.factory, str) and c.factory == own)
              and c.factory is not cls]
    if others:
        raise ContractError(f"{label}: the {kind} name '{name}' is already registered by plugin"
                            f" {others[0].plugin.label()}; register yours under another name"
                            " (a clash makes that name an error for anyone who has both)")
    return f"name: '{name}' is not taken by another installed plugin"


def check_tiled(factory: Callable[..., Any] | Any, *, extractor: FeatureExtractor | None = None,
                size: int = 32, tile: int = 16, rtol: float = 1e-4) -> None:
    """Check that a loss's statistics give the untiled value and gradient (and targets from
    tiled features in ``prepare``) when the image is evaluated in ``tile``-px tiles.

    A loss without :meth:`~nstcore.loss.Loss.statistics` passes (it runs untiled only: the
    returned line says the check was skipped and why); one that defines just one of the two
    methods fails. ``check_loss`` calls this. Returns what was checked, in one line.
    """
    from nstcore.objective import Objective
    from nstcore.tiling import TiledFeatures, TiledObjective, can_tile, statistics_methods

    loss = _build(factory, name="under_test")
    label = f"loss {type(loss).__name__}"
    defines = statistics_methods(loss)
    if len(defines) == 1:
        raise ContractError(f"{label} defines {defines[0]}() but not the other of statistics() and"
                            " from_statistics(): tiling needs both")
    extractor = extractor or TinyVGG()
    geometry = extractor.tile_geometry(loss.layers) if loss.layers else None
    if not loss.layers:
        return "tiled: skipped (the loss uses no layers: it sees the whole image)"
    if not can_tile(loss):
        return ("tiled: SKIPPED: no statistics()/from_statistics(), so runs that need tiling"
                " (large pictures, --tile) refuse this loss; see 'Large pictures' in the guide")
    if geometry is None:
        return "tiled: skipped (the extractor gives no tile geometry for these layers)"
    if backends.current() != "tensorflow":
        return (f"tiled: SKIPPED on {backends.current()}: exact tiling runs on the tensorflow"
                " backend only")
    import tensorflow as tf

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
    return (f"tiled ({tile}-px tiles, a partial last tile): value within {rtol:g} of untiled"
            f" ({abs(tiled - whole) / max(abs(whole), 1e-30):.1e}), gradient within {rtol * 10:g}"
            f" ({worst:.1e})")


_TRACE_HINT = ("avoid Python side effects, .numpy() and Python if/for on tensor values in"
               " __call__: the engine runs it inside tf.function (jax.jit on JAX)")


def _called(label: str, how: str, function: Callable[[Any], Any], image: Any) -> Any:
    """``function(image)``; a crash becomes a ContractError with the hint that fits it."""
    try:
        return function(image)
    except ContractError:
        raise
    except Exception as exc:
        from nstcore.errors import one_line

        first = one_line(exc)[:200]
        raise ContractError(f"{label} raised {type(exc).__name__} when called {how}: {first};"
                            f" {_TRACE_HINT}; and do not assume the style image has the content"
                            " image's size") from exc


def _check_gradient(label: str, value: Callable[[Any], Any], start: np.ndarray, rtol: float) -> str:
    _, gradient = _gradient(value, backends.constant(start[None]))
    hint = ("the loss must be differentiable w.r.t. the image: no .numpy(), stop_gradient,"
            " round, argmax or casts to integers on the path from features to the value")
    if gradient is None:
        raise ContractError(f"{label}: gradient w.r.t. the image is None; {hint}")
    gradient = backends.to_numpy(gradient)
    if not np.isfinite(gradient).all():
        raise ContractError(f"{label}: gradient w.r.t. the image has NaN or Inf values")
    if not np.any(gradient):
        raise ContractError(f"{label}: gradient w.r.t. the image is zero everywhere; {hint}")
    # Central differences along the gradient's own direction. In float32 the error is large
    # steps' truncation or small steps' rounding, so the best of four step sizes is judged (for
    # the built-in and example losses it is 1e-6 to 4e-3); a gradient off by 2 % fails.
    direction = (gradient / np.linalg.norm(gradient)).astype(np.float32)
    analytic = float(np.sum(gradient * direction))
    best = None
    for eps in (3e-2, 1e-2, 3e-3, 1e-3):
        plus = float(value(backends.constant(start[None] + eps * direction)))
        minus = float(value(backends.constant(start[None] - eps * direction)))
        numeric = (plus - minus) / (2 * eps)
        error = abs(numeric - analytic) / max(abs(analytic), 1e-30)
        if best is None or error < best[0]:
            best = (error, numeric, eps)
    error, numeric, eps = best
    if error > rtol:
        raise ContractError(f"{label}: gradient does not match finite differences (autodiff"
                            f" {analytic:.6g}, numeric {numeric:.6g}: {error:.1e} relative, more"
                            f" than {rtol:g}); {hint}")
    return f"gradient: autodiff matches central differences to {error:.1e} (limit {rtol:g})"


class QuadraticObjective:
    """``sum((image - target)^2)``, a convex objective for solver tests: its minimum is known.

    ``target`` is a [1, h, w, 3] array; an image of another size is compared with the target
    resized to it (for coarse-to-fine tests).
    """

    term_names = ("distance",)

    def __init__(self, target: Any) -> None:
        self.target = backends.constant(target)

    def __call__(self, image: Any) -> tuple[Any, dict[str, Any]]:
        target = self.target
        if tuple(image.shape[1:3]) != tuple(target.shape[1:3]):
            target = resize_tensor(target, tuple(image.shape[1:3]), "bilinear", antialias=False)
        distance = backends.ops().sum(backends.ops().square(image - target))
        return distance, {"distance": distance}


def check_solver(factory: Callable[..., Any] | Any, *, steps: int = 8, size: int = 8) -> list[str]:
    """Drive a solver as the engine does, on a convex objective whose minimum lies partly outside
    [0, 1]: every step reports the terms and a growing evaluation count and leaves pixels in
    [0, 1]; ``steps`` steps lower the objective by at least 10 %; then the stepper's
    :meth:`~nstcore.solver.Stepper.carry` state (if any) goes to ``start(..., state=)`` at twice
    the size, where the solver keeps lowering it. Returns the checks that ran, one line each.
    """
    solver = factory() if isinstance(factory, type) else factory
    label = f"solver {type(solver).__name__}"
    rng = np.random.default_rng(1)
    objective = QuadraticObjective(rng.uniform(-0.5, 1.5, (1, size, size, 3)))  # partly out of range
    start = backends.constant(np.full((1, size, size, 3), 0.5, np.float32))
    first, last, stepper = _steps(label, objective, solver.start(objective, start), steps, size)
    ran = [f"{steps} steps at {size} px: terms reported, pixels in [0, 1], objective"
           f" {first:.4g} -> {last:.4g}"]
    if not last <= 0.9 * first:
        raise ContractError(f"{label} lowered a convex objective only from {first:.4g} to"
                            f" {last:.4g} in {steps} steps (want at least 10 %)")

    def twice(tensor: Any, method: str) -> Any:
        return resize_tensor(tensor, (2 * size, 2 * size), method)

    try:
        state = stepper.carry(twice)
    except Exception as exc:
        raise ContractError(f"{label}: carry(resize) raised {type(exc).__name__}: {exc}") from None
    image = twice(backends.constant(backends.to_numpy(stepper.image())), "bilinear")
    stepper.close()
    try:
        larger = solver.start(objective, image) if state is None else solver.start(
            objective, image, state=state)
    except TypeError as exc:
        raise ContractError(f"{label}: its stepper carries state but start() does not take it"
                            f" (def start(self, objective, image, state=None)): {exc}") from None
    first, last, stepper = _steps(label, objective, larger, max(2, steps // 2), 2 * size)
    stepper.close()
    if not last < first:
        raise ContractError(f"{label} did not lower the objective at the next scale"
                            f" ({first:.4g} -> {last:.4g}) after carry")
    ran.append(f"next scale ({2 * size} px) from carry(): "
               + ("no state (restarts)" if state is None else "state passed to start(state=)")
               + f", objective {first:.4g} -> {last:.4g}")
    return ran


def _steps(label: str, objective: Any, stepper: Any, steps: int, size: int
           ) -> tuple[float, float, Any]:
    """Step ``stepper`` up to ``steps`` times as the engine does; (objective at the start
    image, objective at the last image, the stepper). A solver may stop early only by
    converging."""
    from nstcore.solver import SolverStopped

    def distance(image: Any) -> float:
        return float(objective(backends.constant(backends.to_numpy(image)))[0])

    first = distance(stepper.image())
    evaluations_before = 0
    for step in range(1, steps + 1):
        try:
            total, terms, evaluations = stepper.step()
        except SolverStopped as stop:
            if not stop.converged or step == 1:
                raise ContractError(f"{label} stopped at step {step} on a convex objective:"
                                    f" {stop.reason}") from None
            break
        image = backends.to_numpy(stepper.image())
        if image.shape != (1, size, size, 3):
            raise ContractError(f"{label}: image() has shape {image.shape} at step {step};"
                                f" want {(1, size, size, 3)}")
        if image.min() < 0.0 or image.max() > 1.0:
            raise ContractError(f"{label} left pixels outside [0, 1] at step {step}: clip or project")
        if set(terms) != set(objective.term_names) or not np.isfinite(float(total)):
            raise ContractError(f"{label}: step {step} returned terms {sorted(terms)} and total"
                                f" {float(total)}; want the objective's terms"
                                f" {list(objective.term_names)} and a finite total")
        if int(evaluations) < max(1, evaluations_before):
            raise ContractError(f"{label}: step {step} reported {evaluations} evaluations so far"
                                f" after {evaluations_before}; the count must grow from 1")
        evaluations_before = int(evaluations)
    return first, distance(stepper.image()), stepper


def check_extractor(extractor: FeatureExtractor, *, size: int = 32) -> None:
    """An extractor returns exactly the selected layers, finite, batch 1, differentiably."""
    label = f"extractor {type(extractor).__name__}"
    if not extractor.layers or len(set(extractor.layers)) != len(extractor.layers):
        raise ContractError(f"{label}.layers must list distinct layer names")
    chosen = [extractor.layers[0], extractor.layers[-1]]
    extractor.select(chosen)
    content, _, _ = tiny_images(size)
    image = backends.constant(content[None])
    features = extractor(image)
    if set(features) != set(chosen):
        raise ContractError(f"{label} returned {sorted(features)}; select() asked for {chosen}")
    for name, value in features.items():
        if len(value.shape) != 4 or value.shape[0] != 1:
            raise ContractError(f"{label} layer {name} has shape {tuple(value.shape)}; want [1, h, w, c]")
        if not np.isfinite(backends.to_numpy(value)).all():
            raise ContractError(f"{label} layer {name} has NaN or Inf values")
    ops = backends.ops()
    _, gradient = _gradient(lambda x: sum(ops.sum(v) for v in extractor(x).values()), image)
    if gradient is None:
        raise ContractError(f"{label}: features are not differentiable w.r.t. the image")
    again = extractor(image)
    if any(not np.array_equal(backends.to_numpy(again[n]), backends.to_numpy(features[n]))
           for n in chosen):
        raise ContractError(f"{label} is not deterministic")
