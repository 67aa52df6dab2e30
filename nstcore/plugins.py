"""The plugin manager: loads ``nstcore`` entry points and calls hooks through pluggy.

Built-ins (distribution ``nstcore``) load through the same entry-point group as third-party
plugins. Every hook is called as ``pm.hook.<name>(...)``, so pluggy's ``tryfirst``/``trylast``
order, hook wrappers and tracing apply. A third-party plugin that fails to import or fails
inside a registration hook is reported in one warning line and left out of that hook; the rest
load. Environment variables:

- ``NSTCORE_DISABLE_PLUGIN_AUTOLOAD=1``: load only nstcore's own entry points (for tests).
- ``NSTCORE_PLUGINS=mod_a,mod_b``: also load these modules as plugins (no packaging needed).
- ``NSTCORE_DISABLE_PLUGINS=name,...``: skip these plugins (entry-point or module names).
- ``NSTCORE_TRACE_PLUGINS=1``: print every hook call and its result on stderr.
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import pluggy

from nstcore import hookspecs
from nstcore.console import warn
from nstcore.errors import InputError, NstError, PluginError
from nstcore.options import Option

GROUP = "nstcore"
OWN_DIST = "nstcore"
KINDS = ("extractor", "loss", "solver", "executor")
#: The kinds one run is built from; their declared shorthand flags are ``run`` flags.
RUN_KINDS = ("extractor", "loss", "solver")
_HOOK_FOR_KIND = {
    "extractor": "register_extractors",
    "loss": "register_losses",
    "solver": "register_solvers",
    "executor": "register_executors",
}
NO_AUTOLOAD_ENV = "NSTCORE_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_ENV = "NSTCORE_PLUGINS"
DISABLE_ENV = "NSTCORE_DISABLE_PLUGINS"
TRACE_ENV = "NSTCORE_TRACE_PLUGINS"


@dataclass
class PluginInfo:
    """Where a loaded plugin came from, for ``nstcore plugins`` and for error messages."""

    name: str
    distribution: str
    version: str
    source: str

    def label(self) -> str:
        origin = " ".join(filter(None, (self.distribution, self.version)))
        return f"'{self.name}' ({origin})" if origin else f"'{self.name}'"


@dataclass(frozen=True)
class Component:
    """One registered extractor, loss or solver, with the options it declares."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    plugin: PluginInfo
    description: str = ""
    options: tuple[Option, ...] = ()
    #: the backends it runs on, declared at registration (default: TensorFlow alone)
    backends: tuple[str, ...] = ("tensorflow",)

    def label(self) -> str:
        return f"{self.kind} '{self.name}' from plugin {self.plugin.label()}"

    def load(self) -> Callable[..., Any]:
        """The factory itself, importing it now if it was registered as ``"module:attr"``."""
        if not isinstance(self.factory, str):
            return self.factory
        module_name, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(f"{self.label()} cannot be imported from '{self.factory}':"
                              f" {type(exc).__name__}: {exc}") from exc
        return obj

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """The declared options with the user's values, checked (see :mod:`nstcore.options`)."""
        from nstcore.options import resolve_options

        return resolve_options(self.label(), self.options, given)

    def create(self, **kwargs: Any) -> Any:
        """Build the component; any failure inside its constructor names the plugin."""
        factory = self.load()
        if self.kind == "loss":
            from nstcore.loss import ROLES

            role = getattr(factory, "role", None)
            if role not in ROLES:
                raise PluginError(f"{self.label()} has role {role!r}; a loss's role must be one"
                                  f" of {', '.join(ROLES)}")
        try:
            return factory(**kwargs)
        except NstError:  # the plugin's own one-line message (a missing optional dependency)
            raise
        except Exception as exc:
            raise PluginError(f"{self.label()} failed to build: {type(exc).__name__}: {exc}") from exc


@dataclass
class Registry:
    """Every component the loaded plugins registered, by kind and name.

    Two plugins may register one name: both are kept and listed, and only using that name is
    an error, so ``nstcore plugins`` still shows what clashes.
    """

    components: dict[str, dict[str, list[Component]]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Component:
        found = self.components[kind].get(name)
        if not found:
            known = ", ".join(self.names(kind)) or "none"
            raise InputError(f"unknown {kind} '{name}' (known: {known})")
        if len(found) > 1:
            labels = " and by plugin ".join(c.plugin.label() for c in found)
            others = [c.plugin.name for c in found if c.plugin.distribution != OWN_DIST]
            raise PluginError(
                f"{kind} name '{name}' is registered by plugin {labels}; rename one of them"
                f" (register it under another name) or disable one"
                f" (NSTCORE_DISABLE_PLUGINS={(others or [found[-1].plugin.name])[-1]})")
        return found[0]

    def add(self, component: Component) -> None:
        self.components[component.kind].setdefault(component.name, []).append(component)

    def clashes(self, component: Component) -> bool:
        return len(self.components[component.kind][component.name]) > 1

    def all(self, kinds: Iterable[str] = KINDS) -> Iterable[Component]:
        for kind in kinds:
            for name in self.names(kind):
                yield from self.components[kind][name]

    def shorthand_keywords(self, kinds: Iterable[str] = RUN_KINDS) -> dict[str, list[Component]]:
        """Shorthand keyword (``weights``) -> the components of ``kinds`` declaring that flag
        (by default the run's kinds: executors' flags belong to ``nstcore batch``)."""
        found: dict[str, list[Component]] = {}
        for component in self.all(kinds):
            for option in component.options:
                if option.keyword:
                    found.setdefault(option.keyword, []).append(component)
        return found

    def shorthand_flag(self, keyword: str, kinds: Iterable[str] = RUN_KINDS) -> str:
        """The flag (``--weights``) of a shorthand keyword components of ``kinds`` declare."""
        owner = self.shorthand_keywords(kinds)[keyword][0]
        return next(o.flag for o in owner.options if o.keyword == keyword)


class PluginManager:
    """A pluggy manager plus where each plugin came from."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        if os.environ.get(TRACE_ENV, "") not in ("", "0"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)

    # -- loading -----------------------------------------------------------------------------
    def register(self, plugin: object, name: str, *, distribution: str = "(registered in code)",
                 version: str = "", source: str = "") -> None:
        """Register a plugin object (module, class or instance with hook implementations)."""
        if name in disabled_names():
            return
        self.pm.register(plugin, name=name)
        self.info[name] = PluginInfo(name, distribution, version, source or repr(plugin))
        self._registry = None

    def load_entry_points(self) -> None:
        only_own = os.environ.get(NO_AUTOLOAD_ENV, "") not in ("", "0")
        found = md.entry_points(group=GROUP)
        # nstcore's own first: the built-ins keep their names whatever else is installed
        for ep in sorted(found, key=lambda ep: (ep.dist.name if ep.dist else "") != OWN_DIST):
            dist = ep.dist.name if ep.dist else "(unknown)"
            if only_own and dist != OWN_DIST:
                continue
            if ep.name in disabled_names():
                continue
            name = ep.name
            if self.pm.has_plugin(name):
                if self.info[name].distribution == dist:
                    continue  # loaded already
                # another distribution's entry point of the same name (two packages may both
                # call theirs "losses"): both load, this one under a name that says whose it is
                name = f"{dist}:{ep.name}"
                if self.pm.has_plugin(name) or name in disabled_names():
                    continue
            version = ep.dist.version if ep.dist else ""
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not stop the rest
                warn(f"plugin '{ep.name}' ({dist} {version}) failed to import and was skipped:"
                     f" {type(exc).__name__}: {exc}")
                continue
            self.register(plugin, name, distribution=dist, version=version, source=ep.value)

    def load_env_modules(self) -> None:
        for module_name in filter(None, (m.strip() for m in os.environ.get(EXTRA_ENV, "").split(","))):
            if module_name in disabled_names() or self.pm.has_plugin(module_name):
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                warn(f"plugin module '{module_name}' from {EXTRA_ENV} failed to import and was"
                     f" skipped: {type(exc).__name__}: {exc}")
                continue
            dist, version = _distribution_of(module_name)
            self.register(module, module_name, distribution=dist, version=version,
                          source=f"{EXTRA_ENV}={module_name}")

    def label(self, plugin_name: str) -> str:
        info = self.info.get(plugin_name)
        return info.label() if info else f"'{plugin_name}'"

    # -- calling hooks -----------------------------------------------------------------------
    def _impl_owner(self, hook: str, frames: Iterable[Any]) -> str | None:
        """The plugin whose implementation of ``hook`` is running in ``frames`` (innermost last)."""
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        owner = None
        for frame in frames:
            for impl in impls:
                function = getattr(impl.function, "__func__", impl.function)
                if getattr(function, "__code__", None) is frame.f_code:
                    bound = getattr(impl.function, "__self__", None)
                    if bound is None or frame.f_locals.get("self") is bound:
                        owner = impl.plugin_name
        return owner

    def caller_of(self, hook: str) -> str | None:
        """Inside a hook call: the plugin whose implementation called us."""
        frames = []
        frame = sys._getframe(1)
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        return self._impl_owner(hook, reversed(frames))

    def call_isolated(self, hook: str, _before_each: Callable[[], Any] | None = None,
                      **kwargs: Any) -> list[Any]:
        """``pm.hook.<hook>(**kwargs)``; a third-party plugin that raises is warned about and
        left out of this hook (the call is repeated without it, after ``_before_each()``);
        nstcore's own errors propagate.
        """
        left_out: list[object] = []
        while True:
            if _before_each is not None:
                _before_each()
            caller = (self.pm.subset_hook_caller(hook, left_out) if left_out
                      else getattr(self.pm.hook, hook))
            try:
                return caller(**kwargs)
            except Exception as exc:
                frames = [f for f, _ in traceback.walk_tb(exc.__traceback__)]
                culprit = self._impl_owner(hook, frames)
                info = self.info.get(culprit or "")
                if culprit is None or info is None or info.distribution == OWN_DIST:
                    raise
                warn(f"plugin {info.label()} failed in {hook} and was left out of it:"
                     f" {type(exc).__name__}: {exc}")
                left_out.append(self.pm.get_plugin(culprit))

    def call(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call a lifecycle hook through pluggy; a failure names the plugin that raised."""
        try:
            return getattr(self.pm.hook, hook)(**kwargs)
        except Exception as exc:
            frames = [f for f, _ in traceback.walk_tb(exc.__traceback__)]
            culprit = self._impl_owner(hook, frames)
            label = self.label(culprit) if culprit else "(unknown)"
            raise PluginError(f"plugin {label} failed in {hook}: {type(exc).__name__}: {exc}") from exc

    # -- registries --------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        registry = Registry()
        for kind in KINDS:
            hook = _HOOK_FOR_KIND[kind]
            for component in self._registered(kind, hook):
                registry.add(component)
        return registry

    def _registered(self, kind: str, hook: str) -> list[Component]:
        found: list[Component] = []

        def register(name: str, factory: Callable[..., Any] | str, *, description: str = "",
                     options: Sequence[Option] = (), backends: Sequence[str] | None = None) -> None:
            plugin_name = self.caller_of(hook) or "(unknown)"
            info = self.info.get(plugin_name) or PluginInfo(plugin_name, "(registered in code)", "", "")
            if not isinstance(name, str) or not name:
                raise ValueError(f"{kind} name must be a non-empty string, got {name!r}")
            if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
                raise ValueError(f"{kind} '{name}' needs a callable or 'module:attr' factory")
            options = tuple(options)
            if not all(isinstance(o, Option) for o in options):
                raise ValueError(f"{kind} '{name}': options must be nstcore.options.Option objects")
            from nstcore.backends import LEGACY, NAMES

            if backends is None:  # a class passed itself may say it; a lazy string cannot
                backends = getattr(factory, "backends", None) if not isinstance(factory, str) else None
            declared = tuple(backends or LEGACY)
            unknown = [b for b in declared if b not in NAMES]
            if unknown:
                raise ValueError(f"{kind} '{name}': unknown backend(s) {', '.join(unknown)}"
                                 f" (known: {', '.join(NAMES)})")
            found.append(Component(kind, name, factory, info, description, options, declared))

        self.call_isolated(hook, _before_each=found.clear, register=register)
        return list(found)

    def commands(self, subparsers: Any) -> None:
        """Let plugins add subcommands (``register_commands``)."""
        self.call_isolated("register_commands", subparsers=subparsers)

    def hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])


_trace_started: list[float] = []


def _trace_before(hook: str, impls: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """One line per hook call: which plugins' implementations pluggy will call, in its order."""
    import time

    order = ", ".join(impl.plugin_name for impl in reversed(impls)) or "no implementations"
    print(f"nstcore: trace: {hook}({', '.join(kwargs)}) -> {order}", file=sys.stderr)
    _trace_started.append(time.perf_counter())


def _trace_after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: dict[str, Any]) -> None:
    import time

    seconds = time.perf_counter() - _trace_started.pop()
    failed = outcome.exception
    status = f"raised {type(failed).__name__}: {failed}" if failed else "returned"
    print(f"nstcore: trace: {hook} {status} in {seconds * 1000:.1f} ms", file=sys.stderr)


def disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _distribution_of(module_name: str) -> tuple[str, str]:
    top = module_name.split(".")[0]
    dists = md.packages_distributions().get(top) or []
    if dists:
        try:
            return dists[0], md.version(dists[0])
        except md.PackageNotFoundError:
            pass
    return EXTRA_ENV, ""


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    if _manager is None:
        manager = PluginManager()
        manager.load_entry_points()
        manager.load_env_modules()
        _manager = manager
    return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests change the environment between runs)."""
    global _manager
    _manager = None
