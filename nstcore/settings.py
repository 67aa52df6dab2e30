"""The run options: defined once here, and from this table come ``nstcore run``'s flags,
:class:`Settings`, the keywords of :func:`nstcore.stylize` and the report's ``settings``.

Options that belong to one plugin (VGG19's weights file, Adam's learning rate) are not here: the
plugin declares them (:mod:`nstcore.options`) and they reach it through ``--extractor-option``,
``--loss-option``, ``--solver-option`` or the shorthand flag the plugin declares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from nstcore.errors import InputError
from nstcore.options import Option, OptionValueError, did_you_mean

DEFAULT_LOSSES = ("content", "gram", "tv")
#: ``--optimizer auto`` picks lbfgs up to this long side and adam above (memory: L-BFGS keeps
#: 2 x 10 curvature vectors of the image in float64).
AUTO_LBFGS_MAX_SIZE = 1024
#: Which core weight and layer options apply to a loss, by the loss's declared role.
ROLE_WEIGHT = {"content": "content_weight", "style": "style_weight", "regularizer": "tv_weight"}
ROLE_LAYERS = {"content": "content_layers", "style": "style_layers"}

@dataclass(frozen=True)
class Preset:
    """A named set of ordinary options: run options (``run``) and the options of particular
    plugin components (``components``, keyed ``"kind:name"``, applied only when the run uses that
    component). A preset fills what the user did not give; every explicit option overrides it."""

    name: str
    help: str
    run: Mapping[str, Any]
    components: Mapping[str, Mapping[str, Any]]

    def flags(self) -> str:
        """The preset as the command-line flags it stands for."""
        parts = [f"{flag_of(k)} {','.join(v) if isinstance(v, tuple) else v}" for k, v in self.run.items()]
        for key, options in self.components.items():
            kind, _, name = key.partition(":")
            given = " ".join(f"{k}={v}" for k, v in options.items())
            parts.append(f"[{kind} {name}: {given}]")
        return " ".join(parts)


#: ``--preset``: the TensorFlow tutorial's run exactly, for comparison and the parity tests.
PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tutorial", "the TensorFlow tutorial's run: one 512-px scale, 1000 Adam steps"
           " (0.02/0.99/0.1), float32, zero padding (no margin), its losses, weights and layers",
           run={"size": 512, "scales": "1", "steps": 1000, "optimizer": "adam", "margin": 0,
                "losses": DEFAULT_LOSSES, "init": "content", "start_noise": 0.0,
                "style_scale": 1.0},
           components={"solver:adam": {"learning_rate": 0.02, "beta_1": 0.99, "beta_2": 0.999,
                                       "epsilon": 0.1},
                       "extractor:vgg19": {"precision": "float32", "pooling": "max",
                                           "padding": "zero"}}),
)}

RUN_OPTIONS: tuple[Option, ...] = (
    Option("preset", str, None, "a named set of the options below (explicit options override"
           " it): " + ", ".join(PRESETS) + "; none gives nstcore's defaults, which are not the"
           " tutorial's", choices=tuple(PRESETS)),
    Option("optimizer", str, "auto", "solver plugin: lbfgs, adam or any registered; auto: lbfgs"
           f" up to {AUTO_LBFGS_MAX_SIZE} px (fastest to a given loss; it keeps 20 float64 copies"
           " of the image, 0.5 GiB at 1024 px), adam above"),
    Option("steps", int, 28, "solver steps at each scale", minimum=1),
    Option("size", int, 512, "long side of the output in pixels", minimum=16),
    Option("scales", str, "auto", "sizes to optimise at, coarse to fine, --steps at each: auto"
           " (from 128 px up by factors of sqrt(2) to half --size, then --size: 128,181,256,512"
           " for 512), 1 (one scale: the tutorial's), or a list"
           " such as 128,256,512 ending at --size"),
    Option("scale_steps", str, None, "steps at each scale, one number per scale of --scales"
           " (e.g. 16,6,3 for 256,362,512: more where steps are cheap); overrides --steps"),
    Option("style_scale", float, 1.0, "long side of the style image relative to the output's",
           above=0, maximum=8),
    Option("extractor", str, "vgg19", "feature extractor plugin"),
    Option("losses", "names", DEFAULT_LOSSES, "loss plugins to use"),
    Option("content_weight", float, None, "weight of content losses (default: each loss's own;"
           " the built-in content loss: 1e4)", minimum=0),
    Option("style_weight", float, None, "weight of style losses (default: each loss's own;"
           " the built-in gram loss: 1e-2)", minimum=0),
    Option("tv_weight", float, None, "weight of regularisers (default: each loss's own;"
           " the built-in tv loss: 30)", minimum=0),
    Option("content_layers", "names", None, "layers of content losses, each NAME or NAME:WEIGHT"
           " (relative weights; default: each loss's own, equally weighted; the built-in content"
           " loss: block5_conv2)"),
    Option("style_layers", "names", None, "layers of style losses, each NAME or NAME:WEIGHT, e.g."
           " block1_conv1:1,block2_conv1:0.5 (relative weights; default: each loss's own, equally"
           " weighted; the built-in gram loss: block1_conv1,...,block5_conv1)"),
    Option("style_blend", str, None, "with several style images: one weight each, e.g. 0.7,0.3"
           " (normalised to sum 1; default: equal)"),
    Option("init", str, "content", "starting image: content, noise, style (the first style"
           " image) or an image FILE, stretched to the output's shape"),
    Option("start_noise", float, 0.1, "standard deviation of Gaussian noise (0-1 pixel scale)"
           " added to the first scale's start, margin included, drawn from --seed (0 if not"
           " given): a start mirror-symmetric about the picture's edge lines the style's texture up"
           " along the edges; 0: none, the tutorial's", minimum=0, maximum=1),
    Option("preserve_color", str, "none", "keep the content's colours: luminance (optimise"
           " luminance, then the content's chroma) or histogram (style recoloured to the"
           " content's colour mean and covariance first)", choices=("none", "luminance", "histogram")),
    Option("style_mask", "path", None, "image whose grey levels say where the picture may change:"
           " white takes the style, black keeps the content exactly, grey moves part of the way"
           " (same aspect ratio as the content)"),
    Option("seed", int, None, "random seed (noise init, determinism)", minimum=0),
    Option("device", str, "auto", "where to compute", choices=("auto", "cpu", "gpu")),
    Option("backend", str, None, "numeric backend, chosen once per process: tensorflow (the"
           " tutorial's), jax or torch (through Keras 3); default: $NSTCORE_BACKEND, else"
           " tensorflow", choices=("tensorflow", "jax", "torch")),
    Option("tile", str, "auto", "evaluate the image in tiles of this many px (exact; memory"
           " bounded by the tile): auto (only when the memory estimate exceeds the limit), off,"
           " or PX such as 512"),
    Option("memory_limit", float, None, "tile (with --tile off: refuse) runs estimated above"
           " this many GiB (default: available memory)", above=0),
    Option("margin", int, 16, "px of free canvas optimised around the picture at every scale"
           " and cropped away, so the network's border (zero padding) paints no band along the"
           " picture's edges; 0: none, the tutorial's", minimum=0, maximum=256),
)


@dataclass(frozen=True)
class MapOption:
    """A repeatable ``--flag KEY=VALUE`` option collected into a dict."""

    name: str
    flag: str
    metavar: str
    help: str


MAP_OPTIONS: tuple[MapOption, ...] = (
    MapOption("loss_weights", "--weight", "LOSS=W", "weight of one loss by name (repeatable)"),
    MapOption("extractor_options", "--extractor-option", "KEY=V",
              "option of the extractor plugin (repeatable; see `nstcore plugins --options NAME`)"),
    MapOption("loss_options", "--loss-option", "LOSS.KEY=V", "option of one loss plugin (repeatable)"),
    MapOption("solver_options", "--solver-option", "KEY=V",
              "option of the solver plugin (repeatable), e.g. learning_rate=0.05"),
)

_BY_NAME = {option.name: option for option in RUN_OPTIONS}
_MAPS = {option.name for option in MAP_OPTIONS}


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


class Settings:
    """Every setting of a run: what was given, else the preset's value, else the default.

    Keywords are the run options above, the four option maps (``solver_options={...}``, ...), and
    the shorthand keywords plugins declare (``weights=``, ``precision=``, ``xla=``), kept in
    :attr:`shorthands` until the plugins are built. A keyword given as None counts as not given.
    Values are converted and checked here. The defaults are nstcore's; ``preset="tutorial"``
    gives the TensorFlow tutorial's run.
    """

    def __init__(self, **values: Any) -> None:
        from nstcore.plugins import get_plugin_manager

        shorthand_keywords = get_plugin_manager().registry.shorthand_keywords()
        self.shorthands: dict[str, Any] = {}
        for key, value in values.items():
            if key in _BY_NAME or key in _MAPS:
                continue
            if key in shorthand_keywords:
                if value is not None and value is not False:
                    self.shorthands[key] = value
                continue
            known = [*_BY_NAME, *_MAPS, *shorthand_keywords]
            raise InputError(f"unknown option {key!r}{did_you_mean(key, known)}"
                             f" (options: {', '.join(sorted(known))})")
        try:
            preset = Option.convert(_BY_NAME["preset"], values.get("preset"))
        except OptionValueError as exc:
            raise InputError(f"preset: {exc}") from None
        chosen = PRESETS[preset].run if preset else {}
        self._components = PRESETS[preset].components if preset else {}
        for option in RUN_OPTIONS:
            value = values.get(option.name)
            if value is None:
                value = chosen.get(option.name, option.default)
            try:
                setattr(self, option.name, option.convert(value))
            except OptionValueError as exc:
                raise InputError(f"{option.name}: {exc}") from None
        for option in MAP_OPTIONS:
            setattr(self, option.name, _checked_map(option, values.get(option.name)))
        self._check()

    def _check(self) -> None:
        from nstcore.pyramid import pyramid_sizes
        from nstcore.tiling import parse_tile

        self.sizes = pyramid_sizes(self.size, self.scales)
        if self.optimizer == "auto":
            self.optimizer = "lbfgs" if self.size <= AUTO_LBFGS_MAX_SIZE else "adam"
        self.content_layers, self.content_layer_weights = parse_layers(self.content_layers, "content")
        self.style_layers, self.style_layer_weights = parse_layers(self.style_layers, "style")
        self.scale_steps = parse_scale_steps(self.scale_steps)
        self.tile = parse_tile(self.tile)
        for name, value in self.loss_weights.items():
            try:
                self.loss_weights[name] = Option(name, float, 0.0, minimum=0).convert(value)
            except OptionValueError as exc:
                raise InputError(f"--weight {name}: {exc}") from None
        for field in ("loss_weights", "loss_options"):
            unknown = sorted(set(getattr(self, field)) - set(self.losses))
            if unknown:
                flag = next(o.flag for o in MAP_OPTIONS if o.name == field)
                raise InputError(f"{flag} names loss '{unknown[0]}', which is not in --losses"
                                 f" ({', '.join(self.losses)})")

    def preset_options(self, kind: str, name: str) -> dict[str, Any]:
        """The preset's options for the component ``name`` of ``kind`` (none without a preset)."""
        return dict(self._components.get(f"{kind}:{name}", {}))

    def as_dict(self) -> dict[str, Any]:
        data = {option.name: getattr(self, option.name) for option in RUN_OPTIONS}
        data["losses"] = list(self.losses)
        for option in MAP_OPTIONS:
            data[option.name] = getattr(self, option.name)
        data["shorthands"] = dict(self.shorthands)
        return data

    def __repr__(self) -> str:
        return f"Settings({self.as_dict()})"


def parse_layers(names: Any, role: str) -> tuple[tuple[str, ...] | None, dict[str, float] | None]:
    """``--style-layers a,b:0.5``: the layer names, and their relative weights when any is given
    (a name without one weighs 1); (None, None) when the option is not set."""
    if names is None:
        return None, None
    layers, weights = [], {}
    for item in names:
        name, sep, weight = str(item).partition(":")
        name = name.strip()
        try:
            value = float(weight) if sep else 1.0
        except ValueError:
            value = float("nan")
        if not name or not (0 <= value < float("inf")):
            raise InputError(f"--{role}-layers: '{item}' must be NAME or NAME:WEIGHT with a"
                             " finite weight >= 0")
        layers.append(name)
        weights[name] = value
    if sum(weights.values()) <= 0:
        raise InputError(f"--{role}-layers: the layer weights must not all be 0")
    explicit = any(":" in str(item) for item in names)
    return tuple(layers), (weights if explicit else None)


def parse_scale_steps(value: Any) -> list[int] | None:
    """``--scale-steps``: None, or whole numbers >= 1 separated by commas."""
    if value is None or isinstance(value, list):
        return value
    parts = [part.strip() for part in str(value).split(",")]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise InputError(f"--scale-steps must be whole numbers >= 1 separated by commas, got '{value}'")
    return [int(part) for part in parts]


def steps_per_scale(settings: "Settings", sizes: list[int]) -> list[int]:
    """Steps at each of the run's ``sizes``: ``--scale-steps`` (one number per size) or
    ``--steps`` at each."""
    if settings.scale_steps is None:
        return [settings.steps] * len(sizes)
    if len(settings.scale_steps) != len(sizes):
        raise InputError(f"--scale-steps has {len(settings.scale_steps)} number(s) but the run has"
                         f" {len(sizes)} scale(s) ({', '.join(map(str, sizes))} px); give one per scale")
    return list(settings.scale_steps)


def _checked_map(option: MapOption, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{option.name} must be a dict, got {type(value).__name__}")
    if option.name == "loss_options":
        if not all(isinstance(v, Mapping) for v in value.values()):
            raise InputError("loss_options must map each loss name to a dict of its options")
        return {str(k): dict(v) for k, v in value.items()}
    return {str(k): v for k, v in value.items()}
