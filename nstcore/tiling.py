"""Exact tiled evaluation: the objective and its gradient computed a tile at a time.

Losses that are functions of sums over positions (a Gram matrix is a sum of f fᵀ and a count; the
content loss a sum of squared differences) expose those sums (:meth:`nstcore.loss.Loss.statistics`).
Then a large image never needs its whole activation stack in memory:

1. each tile (its core plus a halo of context) runs forward without a gradient and its core's
   statistics are summed;
2. the losses are formed once from the sums, with their gradient with respect to the sums;
3. each tile runs forward and backward again with that gradient, and its input gradient is added
   into the whole image's gradient.

The halo covers the receptive field of the deepest selected layer and tiles start on the pooling
grid, so every core activation equals the untiled one and the result matches the untiled value
and gradient up to float rounding. Memory is bounded by the tile, not the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from nstcore.errors import InputError, PluginError


@dataclass(frozen=True)
class TileGeometry:
    """What an extractor tells the tiler about its network for a set of layers.

    ``align``: tile windows start and tile cores end on multiples of it (the pooling grid: 16
    for VGG19's block5); ``halo``: pixels of context each side of a core (a multiple of
    ``align``) so the core's activations are exact; ``strides``: input pixels per feature
    position for each layer.
    """

    align: int
    halo: int
    strides: Mapping[str, int]


def conv_pool_geometry(network: Sequence[tuple[str, Any]], layers: Sequence[str]) -> TileGeometry:
    """Geometry of a plain stack of 'same'-padded convolutions and aligned 2x2 poolings.

    ``network`` lists ``("conv", (name, kernel_size))`` and ``("pool", 2)`` in order, up to at
    least the deepest of ``layers``. A cut edge spoils ``(k - 1) / 2`` more positions per
    convolution (it zero-pads where the untiled network saw real activations) and a pool halves
    the spoiled band (rounded up); the halo is the widest band among ``layers``, in input pixels.
    """
    wanted, band, stride, halo, strides = set(layers), 0, 1, 0, {}
    for kind, value in network:
        if not wanted - strides.keys():
            break
        if kind == "pool":
            band, stride = math.ceil(band / value), stride * value
            continue
        name, kernel = value
        band += (kernel - 1) // 2
        if name in wanted:
            strides[name] = stride
            halo = max(halo, band * stride)
    missing = wanted - strides.keys()
    if missing:
        raise ValueError(f"layers not in the network: {sorted(missing)}")
    align = max(strides.values())
    return TileGeometry(align, math.ceil(halo / align) * align, strides)


@dataclass(frozen=True)
class Tile:
    """A tile's core (the positions whose statistics it contributes) and window (core + halo),
    each as (top, bottom, left, right) in image pixels; ``last_row``/``last_col`` mark cores that
    reach the image's bottom or right edge."""

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]
    last_row: bool
    last_col: bool


def _cuts(length: int, tile: int, align: int) -> list[int]:
    """Core boundaries along one axis: equal cores (a multiple of ``align``, at most ``tile`` when
    ``tile`` is one) and a smaller last one. Equal cores mean few distinct window shapes, and a
    step traces one tile body per shape (:func:`group_tiles`), not one per tile."""
    count = max(1, math.ceil(length / tile))
    core = math.ceil(length / count / align) * align
    return list(range(0, length, core)) + [length]


def plan_tiles(height: int, width: int, tile: int, geometry: TileGeometry) -> list[Tile]:
    """Tiles covering a ``height`` x ``width`` image, row by row."""
    rows, cols = _cuts(height, tile, geometry.align), _cuts(width, tile, geometry.align)
    tiles = []
    for top, bottom in zip(rows, rows[1:]):
        for left, right in zip(cols, cols[1:]):
            window = (max(0, top - geometry.halo), min(height, bottom + geometry.halo),
                      max(0, left - geometry.halo), min(width, right + geometry.halo))
            tiles.append(Tile((top, bottom, left, right), window, bottom == height, right == width))
    return tiles


def group_tiles(tiles: Sequence[Tile]) -> list[list[Tile]]:
    """``tiles`` grouped so that one traced body serves a whole group: same window size, same
    core placement inside the window, same edge flags (interior, edge and corner tiles: at most
    nine groups for a grid of equal cores). Order within a group is kept."""
    groups: dict[tuple, list[Tile]] = {}
    for tile in tiles:
        (top, bottom, left, right), (wtop, wbottom, wleft, wright) = tile.core, tile.window
        key = (wbottom - wtop, wright - wleft, top - wtop, left - wleft, bottom - wtop, right - wleft,
               tile.last_row, tile.last_col)
        groups.setdefault(key, []).append(tile)
    return list(groups.values())


@dataclass(frozen=True)
class Region:
    """Where a tile's core features sit in the whole image's feature maps: ``offsets[layer]`` is
    the (row, column) of the core's first position (ints, or scalar int32 tensors when the tiles
    run in a loop). A loss with position-dependent targets (the content loss) takes the matching
    part of its target with :meth:`take`."""

    offsets: Mapping[str, tuple[int, int]]

    def take(self, target: Any, layer: str, like: Any) -> Any:
        """The part of ``target`` (a whole-image [1, h, w, c] map of ``layer``) under this region,
        shaped like ``like`` (the core's features)."""
        if not self.offsets:  # the whole image (:data:`WHOLE`): the whole target, any backend
            return target
        tf = _tf()
        row, col = self.offsets.get(layer, (0, 0))
        height, width = like.shape[1], like.shape[2]
        if height is None or width is None:
            dynamic = tf.shape(like)
            height, width = dynamic[1], dynamic[2]
        # taken once the tile's features exist: in a graph, a slice that waited for nothing would
        # run at the start, and every tile's slice (the whole target, twice) would wait in memory
        with tf.control_dependencies([like]):
            return tf.slice(target, tf.stack([0, row, col, 0]), tf.stack([-1, height, width, -1]))


#: The region of an untiled evaluation: the whole feature maps.
WHOLE = Region({})


def crop_core(features: Mapping[str, Any], tile: Tile, geometry: TileGeometry,
              origin: tuple[Any, Any] | None = None) -> tuple[dict, Region]:
    """The core's part of a window's features, and where it sits in the whole maps. ``origin``
    (the core's top-left pixel, tensors in a loop) overrides ``tile``'s for any tile of its
    :func:`group_tiles` group: the crop inside the window is the same for all of them."""
    top, _, left, _ = tile.core
    if origin is not None:
        top, left = origin
    crops, offsets = {}, {}
    for layer, value in features.items():
        stride = geometry.strides[layer]
        row, col = (tile.core[0] - tile.window[0]) // stride, (tile.core[2] - tile.window[2]) // stride
        bottom = None if tile.last_row else (tile.core[1] - tile.window[0]) // stride
        right = None if tile.last_col else (tile.core[3] - tile.window[2]) // stride
        crops[layer] = value[:, row:bottom, col:right, :]
        offsets[layer] = (top // stride, left // stride)
    return crops, Region(offsets)


def _tf():
    import tensorflow as tf

    return tf


def _window(image: Any, tile: Tile, after: Sequence[Any], origin: tuple[Any, Any] | None = None) -> Any:
    """The tile's window of ``image`` (or, with ``origin``, the window of that size starting
    there), taken only once ``after`` is computed: in a graph this makes tiles run one after
    another, so only one tile's activations are alive at a time."""
    tf = _tf()
    top, bottom, left, right = tile.window
    row, col = (top, left) if origin is None else origin
    begin = tf.stack([0, row, col, 0])
    return _after(tf.slice(image, begin, [-1, bottom - top, right - left, -1]), after)


def _after(value: Any, after: Sequence[Any]) -> Any:
    """``value``, available only once ``after`` (tensors or operations) has run."""
    tf = _tf()
    with tf.control_dependencies(list(after)):
        return tf.identity(value)


def _add_into(total: Any, origin: tuple[Any, Any], value: Any) -> Any:
    """``total`` with ``value`` added into the window of its size at ``origin`` (row, column).
    TensorFlow updates the slice in ``total``'s own buffer when nothing else holds it, so adding a
    tile's gradient costs no whole-image temporary (a padded copy of the tile would cost two)."""
    tf = _tf()
    size = tf.shape(value)
    begin = tf.stack([0, origin[0], origin[1], 0])
    end = begin + tf.stack([0, size[1], size[2], 0])
    return tf.raw_ops.TensorStridedSliceUpdate(
        input=total, begin=begin, end=end, strides=[1, 1, 1, 1],
        value=tf.slice(total, begin, size) + value, begin_mask=0b1001, end_mask=0b1001)


def for_each_tile(tiles: Sequence[Tile], body: Callable[..., Any], state: Any) -> Any:
    """``state = body(tile, window_origin, core_origin, state)`` over ``tiles``, one at a time.

    Each :func:`group_tiles` group runs as one ``tf.while_loop`` whose body is traced once, with
    the tile's window and core origins (row, column) as tensors, and ``tile`` its group's first
    tile (for sizes and crops, which the group shares). A step's graph then holds a few tile
    bodies instead of one per tile: with every tile unrolled, a 64-tile gradient of a 512-px image
    kept about 0.5 GiB more after its first run. ``parallel_iterations=1``: one tile's activations at a time.
    """
    tf = _tf()
    for group in group_tiles(tiles):
        origins = tf.constant([[t.window[0], t.window[2], t.core[0], t.core[2]] for t in group],
                              tf.int32)

        def step(i, state, tile=group[0], origins=origins):
            at = origins[i]
            return i + 1, body(tile, (at[0], at[1]), (at[2], at[3]), state)

        state = tf.while_loop(lambda i, _, count=len(group): i < count, step, (tf.constant(0), state),
                              parallel_iterations=1)[1]
    return state


class TiledFeatures(Mapping):
    """An image's features, computed tile by tile: what :meth:`Loss.prepare` gets in a tiled run.

    ``features[layer]`` stitches the whole map of one layer (memory of that map only);
    :func:`sum_statistics` sums a function of each tile's core features without stitching.
    """

    def __init__(self, extractor: Any, image: Any, layers: Sequence[str], tile: int,
                 geometry: TileGeometry) -> None:
        self.extractor, self.image, self.layers = extractor, image, tuple(layers)
        self.geometry = geometry
        self.tiles = plan_tiles(int(image.shape[1]), int(image.shape[2]), tile, geometry)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def cores(self) -> Iterator[tuple[dict, Region, Tile]]:
        previous: list[Any] = []
        for tile in self.tiles:
            features = self.extractor(_window(self.image, tile, previous))
            crops, region = crop_core(features, tile, self.geometry)
            yield crops, region, tile
            previous = list(crops.values())

    def sum_over_tiles(self, function: Callable[[Mapping[str, Any], Region], Any]) -> Any:
        """``function(core features, region)`` summed over the tiles (the first tile's sum gives
        the running sum's structure; the rest run in :func:`for_each_tile` loops); each tile
        starts only once the running sum includes the previous one."""
        tf = _tf()
        first = self.tiles[0]
        total = function(*crop_core(self.extractor(_window(self.image, first, [])), first,
                                    self.geometry))
        total = tf.nest.map_structure(tf.convert_to_tensor, total)

        def add(tile, window_origin, core_origin, total):
            window = _window(self.image, tile, tf.nest.flatten(total), window_origin)
            part = function(*crop_core(self.extractor(window), tile, self.geometry, core_origin))
            return tf.nest.map_structure(tf.add, total, part)

        return for_each_tile(self.tiles[1:], add, total)

    def __getitem__(self, layer: str) -> Any:
        if layer not in self.layers:
            raise KeyError(layer)
        tf = _tf()
        rows: dict[int, list[Any]] = {}
        for crops, _, tile in self.cores():
            rows.setdefault(tile.core[0], []).append(crops[layer])
        return tf.concat([tf.concat(row, axis=2) for _, row in sorted(rows.items())], axis=1)


def sum_statistics(function: Callable[[Mapping[str, Any], Region], Any],
                   features: Mapping[str, Any]) -> Any:
    """``function(features, region)`` summed over the tiles of a :class:`TiledFeatures`, or called
    once with :data:`WHOLE` on ordinary features: how a tileable loss computes targets in
    ``prepare`` (a Gram target from the style's sums) without stitching whole maps."""
    if not isinstance(features, TiledFeatures):
        return function(features, WHOLE)
    return features.sum_over_tiles(function)


def statistics_methods(loss: Any) -> list[str]:
    """Which of ``statistics``/``from_statistics`` the loss's class defines itself (for a
    blended loss, :class:`nstcore.blend.BlendedLoss`, the class of the loss it blends)."""
    from nstcore.loss import Loss

    cls = type(getattr(loss, "original", loss))
    return [name for name in ("statistics", "from_statistics")
            if getattr(cls, name, None) is not getattr(Loss, name)]


def can_tile(loss: Any) -> bool:
    """Whether ``loss`` implements the statistics interface (or needs no features)."""
    return not loss.layers or len(statistics_methods(loss)) == 2


def require_tileable(losses: Sequence[Any], origins: Mapping[str, str], where: str = "") -> None:
    """Refuse, naming each loss and its plugin, when a loss with layers cannot be tiled."""
    refused = [loss for loss in losses if not can_tile(loss)]
    if refused:
        names = ", ".join(f"'{loss.name}' from plugin {origins.get(loss.name, '?')}" for loss in refused)
        raise InputError(f"this run needs tiling{where} but loss {names} has no statistics() to"
                         " tile with (use a smaller --size or another loss)")


class TiledObjective:
    """The engine's objective (``objective(image) -> (total, terms)``), evaluated by tiles.

    Losses with layers are summed tile by tile through their statistics; image-level losses (TV)
    run on the whole image, after the tiles rather than alongside them (their whole-image
    temporaries would otherwise add to a tile's peak). The gradient comes from a custom gradient
    (pass 2), each tile's part added in place into one whole-image tensor, so solvers use it
    exactly like the untiled objective's.
    """

    def __init__(self, objective: Any, tile: int, geometry: TileGeometry) -> None:
        self.objective = objective
        self.extractor, self.losses = objective.extractor, objective.losses
        self.term_names, self.origins = objective.term_names, objective.origins
        self.tile, self.geometry = tile, geometry
        self.feature_losses = [loss for loss in self.losses if loss.layers]
        self.image_losses = [loss for loss in self.losses if not loss.layers]
        require_tileable(self.feature_losses, self.origins)
        wanted = {name for loss in self.feature_losses for name in loss.layers}
        self.layers = [name for name in self.extractor.layers if name in wanted]

    def __call__(self, image: Any) -> tuple[Any, dict[str, Any]]:
        tf = _tf()
        image = tf.convert_to_tensor(image, tf.float32)
        values = self._tiled_values(image)
        position = {id(loss): i for i, loss in enumerate(self.feature_losses + self.image_losses)}
        terms = {loss.name: values[position[id(loss)]] for loss in self.losses}
        return tf.add_n(list(terms.values())), terms

    def _statistics(self, loss: Any, crops: Mapping[str, Any], region: Region) -> Any:
        try:
            return loss.statistics({n: crops[n] for n in loss.layers}, region)
        except Exception as exc:
            raise PluginError(f"loss '{loss.name}' from plugin {self.origins.get(loss.name, '?')}"
                              f" failed in statistics(): {type(exc).__name__}: {exc}") from exc

    def _region_statistics(self, crops: Mapping[str, Any], region: Region) -> list:
        """Each feature loss's statistics of one tile's core features."""
        return [self._statistics(loss, crops, region) for loss in self.feature_losses]

    def _values(self, statistics: list) -> list:
        tf = _tf()
        values = []
        for loss, stats in zip(self.feature_losses, statistics):
            try:
                value = tf.cast(loss.from_statistics(stats), tf.float32)
            except Exception as exc:
                raise PluginError(f"loss '{loss.name}' from plugin {self.origins.get(loss.name, '?')}"
                                  f" failed in from_statistics(): {type(exc).__name__}: {exc}") from exc
            values.append(loss.weight * tf.reshape(value, []))
        return values

    def _image_values(self, image: Any) -> list:
        return [loss.weight * self.objective._term(loss, {}, image) for loss in self.image_losses]

    def _tiled_values(self, image: Any) -> Any:
        tf = _tf()
        count = len(self.feature_losses)

        @tf.custom_gradient
        def values(image):
            features = TiledFeatures(self.extractor, image, self.layers, self.tile, self.geometry)
            # pass 1: sums of every tile's core statistics, no gradient
            total = features.sum_over_tiles(self._region_statistics) if count else []
            flat = tf.nest.flatten(total)
            result = self._values(total) + self._image_values(_after(image, flat))

            def gradient(upstream, variables=None):
                grad = tf.zeros_like(image)
                if count:
                    with tf.GradientTape() as tape:
                        tape.watch(flat)
                        again = tf.stack(self._values(tf.nest.pack_sequence_as(total, flat)))
                    upstream_stats = tape.gradient(again, flat, output_gradients=upstream[:count],
                                                   unconnected_gradients="zero")
                    # pass 2: each tile forward and backward with the gradient w.r.t. the sums
                    def add_tile_gradient(tile, window_origin, core_origin, grad):
                        with tf.GradientTape() as tile_tape:
                            window = _window(image, tile, [grad], window_origin)
                            tile_tape.watch(window)
                            part = self._region_statistics(*crop_core(
                                self.extractor(window), tile, self.geometry, core_origin))
                        window_grad = tile_tape.gradient(tf.nest.flatten(part), window,
                                                         output_gradients=upstream_stats,
                                                         unconnected_gradients="zero")
                        return _add_into(grad, window_origin, window_grad)

                    grad = for_each_tile(features.tiles, add_tile_gradient, grad)
                if self.image_losses:  # recomputed here so no intermediates wait through pass 2
                    with tf.GradientTape() as tape:
                        after = _after(image, [grad])
                        tape.watch(after)
                        again = tf.stack(self._image_values(after))
                    grad = grad + tape.gradient(again, after, output_gradients=upstream[count:],
                                                unconnected_gradients="zero")
                if variables:
                    return grad, [tf.zeros_like(v) for v in variables]
                return grad

            return tf.stack(result), gradient

        return values(image)


#: ``--tile auto`` keeps a tile's working set (TensorFlow, the model and one window's activations)
#: within this, plus the whole-image buffers (or within the memory limit, if lower): one 4096-px
#: pyramid peaked at 5.62 GiB resident (CHANGELOG), and larger tiles would cut the halo's
#: overhead only a little further.
AUTO_TILE_BUDGET_GIB = 3.0


def parse_tile(value: Any) -> str | int:
    """``auto``, ``off`` or a tile size in pixels (at least 16)."""
    text = str(value).strip().lower()
    if text in ("auto", "off"):
        return text
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 16 or str(size) != text:
        raise InputError(f"--tile must be auto, off or a whole number of pixels >= 16, got '{value}'")
    return size


@dataclass
class TilePolicy:
    """Decides, for each image size of a run, whether to tile and with which core size.

    ``mode``: ``auto`` tiles only when the untiled estimate exceeds ``limit_bytes`` (then the
    largest tile whose working set fits :data:`AUTO_TILE_BUDGET_GIB`), ``off`` never, an int
    always (rounded down to the extractor's pooling grid; an image one tile covers runs untiled).
    """

    mode: str | int
    geometry: TileGeometry | None
    floats_per_pixel: float | None
    limit_bytes: float | None

    def tile_for(self, height: int, width: int) -> int | None:
        from nstcore.resources import GIB, IMAGE_BYTES_PER_PIXEL, estimate_bytes

        if self.mode == "off" or self.geometry is None:
            return None
        align = self.geometry.align
        if isinstance(self.mode, int):
            tile = max(align, self.mode // align * align)
            return tile if tile < max(height, width) else None
        if self.floats_per_pixel is None or self.limit_bytes is None:
            return None
        if estimate_bytes(height * width, self.floats_per_pixel) <= self.limit_bytes:
            return None
        budget = min(self.limit_bytes,
                     AUTO_TILE_BUDGET_GIB * GIB + IMAGE_BYTES_PER_PIXEL * height * width)
        tile = max(align, max(height, width) // align * align)
        while tile > align and self.estimate(height, width, tile) > budget:
            tile -= align
        return tile

    def cap_at_final(self, height: int, width: int) -> None:
        """Under ``auto``, when the final image (``height`` x ``width``) is tiled, no coarser
        scale may need more memory than it: lower the limit to the final scale's tiled estimate,
        so a scale whose untiled estimate is above it is tiled too. (Without this, a 4096-px
        pyramid on a 23.5-GiB machine ran 1024 and 1448 px untiled, far above its final
        scale's estimate.)"""
        if self.mode != "auto" or self.limit_bytes is None:
            return
        tile = self.tile_for(height, width)
        if tile is not None:
            self.limit_bytes = min(self.limit_bytes, self.estimate(height, width, tile))

    def estimate(self, height: int, width: int, tile: int) -> float:
        """Estimated peak bytes of a step with ``tile``-px cores."""
        from nstcore.resources import estimate_tiled_bytes

        side = min(tile + 2 * self.geometry.halo, max(height, width))
        window = min(side, height) * min(side, width)
        return estimate_tiled_bytes(height * width, self.floats_per_pixel or 0.0, window)
