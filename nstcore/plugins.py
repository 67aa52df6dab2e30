"""The plugin manager: loads ``nstcore`` entry points and collects what plugins register.

Built-ins (distribution ``nstcore``) load through the same entry-point group as third-party
plugins. A third-party plugin that fails to import or to register is reported in one warning line
and skipped. Environment variables:

- ``NSTCORE_DISABLE_PLUGIN_AUTOLOAD=1``: load only nstcore's own entry points (for tests).
- ``NSTCORE_PLUGINS=mod_a,mod_b``: also load these modules as plugins (no packaging needed).
- ``NSTCORE_DISABLE_PLUGINS=name,...``: skip these plugins (entry-point or module names).
"""
from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pluggy

from nstcore import hookspecs
from nstcore.errors import PluginError

GROUP = "nstcore"
OWN_DIST = "nstcore"
KINDS = ("extractor", "loss", "solver")
_HOOK_FOR_KIND = {
    "extractor": "register_extractors",
    "loss": "register_losses",
    "solver": "register_solvers",
}
NO_AUTOLOAD_ENV = "NSTCORE_DISABLE_PLUGIN_AUTOLOAD"
EXTRA_ENV = "NSTCORE_PLUGINS"
DISABLE_ENV = "NSTCORE_DISABLE_PLUGINS"


def warn(message: str) -> None:
    """One warning line on stderr; plugin problems must never drown the user's output."""
    print(f"nstcore: warning: {message}", file=sys.stderr)


@dataclass
class PluginInfo:
    """Where a loaded plugin came from, for ``nstcore plugins`` and for error messages."""

    name: str
    distribution: str
    version: str
    source: str

    def label(self) -> str:
        return f"'{self.name}' ({self.distribution} {self.version})"


@dataclass(frozen=True)
class Component:
    """One registered extractor, loss or solver."""

    kind: str
    name: str
    factory: Callable[..., Any] | str
    plugin: PluginInfo
    description: str = ""

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
            raise PluginError(
                f"{self.kind} '{self.name}' from plugin {self.plugin.label()} cannot be imported"
                f" from '{self.factory}': {type(exc).__name__}: {exc}"
            ) from exc
        return obj

    def create(self, **options: Any) -> Any:
        """Build the component; a failure names the plugin that registered it."""
        factory = self.load()
        try:
            return factory(**options)
        except TypeError as exc:
            raise PluginError(f"{self.kind} '{self.name}': bad options {sorted(options)}: {exc}") from exc


@dataclass
class Registry:
    """Every component registered by the loaded plugins, by kind and name."""

    components: dict[str, dict[str, Component]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> Component:
        try:
            return self.components[kind][name]
        except KeyError:
            known = ", ".join(self.names(kind)) or "none"
            raise PluginError(f"unknown {kind} '{name}' (known: {known})") from None

    def add(self, component: Component) -> None:
        existing = self.components[component.kind].get(component.name)
        if existing is not None:
            raise PluginError(
                f"{component.kind} name '{component.name}' is registered twice: by plugin"
                f" {existing.plugin.label()} and by plugin {component.plugin.label()};"
                f" uninstall or disable one (NSTCORE_DISABLE_PLUGINS={component.plugin.name})"
            )
        self.components[component.kind][component.name] = component

    def all(self) -> Iterable[Component]:
        for kind in KINDS:
            yield from (self.components[kind][n] for n in self.names(kind))


class PluginManager:
    """A pluggy manager plus where each plugin came from."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None

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
        for ep in md.entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist else "(unknown)"
            if only_own and dist != OWN_DIST:
                continue
            if ep.name in disabled_names() or self.pm.has_plugin(ep.name):
                continue
            version = ep.dist.version if ep.dist else ""
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must not stop the rest
                warn(f"plugin '{ep.name}' ({dist} {version}) failed to import and was skipped:"
                     f" {type(exc).__name__}: {exc}")
                continue
            self.register(plugin, ep.name, distribution=dist, version=version, source=ep.value)

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

    # -- registries --------------------------------------------------------------------------
    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = self._collect()
        return self._registry

    def _collect(self) -> Registry:
        registry = Registry()
        for kind in KINDS:
            for impl in getattr(self.pm.hook, _HOOK_FOR_KIND[kind]).get_hookimpls():
                info = self.info.get(impl.plugin_name) or PluginInfo(
                    impl.plugin_name, "(registered in code)", "", repr(impl.plugin))
                found: list[Component] = []

                def register(name: str, factory: Callable[..., Any] | str, *,
                             description: str = "", _kind: str = kind,
                             _info: PluginInfo = info, _found: list = found) -> None:
                    if not isinstance(name, str) or not name:
                        raise ValueError(f"{_kind} name must be a non-empty string, got {name!r}")
                    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
                        raise ValueError(f"{_kind} '{name}' needs a callable or 'module:attr' factory")
                    _found.append(Component(_kind, name, factory, _info, description))

                try:
                    impl.function(register)
                except Exception as exc:
                    if info.distribution == OWN_DIST:
                        raise
                    warn(f"plugin {info.label()} failed in {_HOOK_FOR_KIND[kind]} and its {kind}s"
                         f" were skipped: {type(exc).__name__}: {exc}")
                    continue
                for component in found:
                    registry.add(component)
        return registry

    def hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])

    def call(self, hook: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on each plugin; a failure names the plugin that raised."""
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(*(kwargs[a] for a in impl.argnames))
            except Exception as exc:
                info = self.info.get(impl.plugin_name)
                label = info.label() if info else f"'{impl.plugin_name}'"
                raise PluginError(f"plugin {label} failed in {hook}: {type(exc).__name__}: {exc}") from exc


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
    return "(not installed)", ""


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
