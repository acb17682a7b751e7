"""The plugin host: stevedore finds plugins, pluggy calls them.

Plugins are ordinary distributions that declare an entry point in one of the groups of
:data:`GROUPS`; the entry point names a module (or any object) with ``@hookimpl`` functions for
the hooks of :mod:`streamerp2p.hookspecs`. :func:`load_plugins` finds them with stevedore,
imports them (an import error is recorded in :attr:`PluginHost.failed`, never fatal), honours
``plugins.enabled`` / ``plugins.disabled`` and registers each with one
:class:`pluggy.PluginManager` under the name ``"<group>:<name>"`` (e.g.
``"streamerp2p.codecs:mp3"``). The plugins shipped with Streamer P2P are loaded exactly the same
way as third-party ones.

:class:`PluginHost` then answers the kernel's questions (which codecs exist, which codec fits a
stream, which ingest servers and front ends exist) and broadcasts events to plugins
(:meth:`PluginHost.emit`), containing any plugin's exception.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy
from stevedore import ExtensionManager
from stevedore.extension import Extension

from . import hookspecs
from .types import CodecSpec, IngestSpec, UISpec

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

CODECS_GROUP = "streamerp2p.codecs"
INGEST_GROUP = "streamerp2p.ingest"
UI_GROUP = "streamerp2p.ui"

#: Entry point groups, in load order.
GROUPS: tuple[str, ...] = (CODECS_GROUP, INGEST_GROUP, UI_GROUP)

#: Sniff scores must be above this for :meth:`PluginHost.codec_for` to pick a codec by content.
SNIFF_THRESHOLD = 0.5

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """A plugin that loaded and was registered with pluggy (as ``"<group>:<name>"``)."""

    group: str
    name: str
    distribution: str | None
    version: str | None
    module: str  # the entry point's module, e.g. "streamerp2p_mp3.plugin"
    hooks: tuple[str, ...] = ()  # hooks it implements

    @property
    def plugin_name(self) -> str:
        return f"{self.group}:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin that could not be loaded or registered; ``error`` is ``"Type: message"``."""

    group: str
    name: str
    distribution: str | None
    version: str | None
    error: str
    target: str = ""  # the entry point's value, e.g. "streamerp2p_mp3.plugin"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PluginDisabled:
    """A plugin that was found but not loaded because of ``plugins.enabled``/``disabled``."""

    group: str
    name: str
    distribution: str | None
    version: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _short_group(group: str) -> str:
    return group.removeprefix("streamerp2p.")


def _matches(patterns: Iterable[str], group: str, name: str) -> bool:
    """Does ``name`` in ``group`` match one of ``patterns`` ("name", "codecs:name" or
    "streamerp2p.codecs:name")?"""
    accepted = {name, f"{group}:{name}", f"{_short_group(group)}:{name}"}
    return any(p.strip() in accepted for p in patterns)


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


# --------------------------------------------------------------------------------------------
# Distribution lookup
# --------------------------------------------------------------------------------------------


class _Distributions:
    """Which distribution declares an entry point.

    stevedore's entry point cache builds ``EntryPoint`` objects without ``.dist``, so the
    distribution is looked up by scanning installed distributions' entry points (once, lazily).
    """

    def __init__(self) -> None:
        self._index: dict[tuple[str, str, str], tuple[str | None, str | None]] | None = None

    def _build(self) -> dict[tuple[str, str, str], tuple[str | None, str | None]]:
        index: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
        for dist in importlib.metadata.distributions():
            try:
                eps = dist.entry_points
                name = dist.metadata["Name"]
                version = dist.version
            except Exception:  # a broken installation must not break the node
                continue
            for ep in eps:
                if ep.group in GROUPS:
                    index.setdefault((ep.group, ep.name, ep.value), (name, version))
        return index

    def lookup(self, ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
        dist = getattr(ep, "dist", None)
        if dist is not None:
            try:
                return dist.metadata["Name"], dist.version
            except Exception:
                pass
        if self._index is None:
            self._index = self._build()
        return self._index.get((ep.group, ep.name, ep.value), (None, None))


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


class _PluginLoadError(Exception):
    """Wraps exceptions stevedore would let through (AssertionError, SystemExit) at import."""


class _FilteringExtensionManager(ExtensionManager):
    """An ExtensionManager that asks ``allow(ep)`` *before* importing a plugin.

    (stevedore's EnabledExtensionManager checks after importing, so a disabled but broken
    plugin would still be imported.)
    """

    def __init__(self, namespace: str, allow: Callable[[Any], bool], **kwargs: Any) -> None:
        self._allow = allow
        super().__init__(namespace, **kwargs)

    def _load_one_plugin(
        self,
        ep: importlib.metadata.EntryPoint,
        invoke_on_load: bool,
        invoke_args: Any,
        invoke_kwds: Any,
    ) -> Extension[Any] | None:
        if not self._allow(ep):
            return None
        try:
            return super()._load_one_plugin(ep, invoke_on_load, invoke_args, invoke_kwds)
        except (AssertionError, SystemExit) as err:
            raise _PluginLoadError(_error_text(err)) from err


# --------------------------------------------------------------------------------------------
# The host
# --------------------------------------------------------------------------------------------


@dataclass
class PluginHost:
    """Loaded plugins and the kernel's questions to them.

    Build it with :func:`load_plugins`; an empty host (``PluginHost()``) plus :meth:`register`
    is handy in tests.
    """

    pm: pluggy.PluginManager = field(default_factory=lambda: new_plugin_manager())
    loaded: list[PluginRecord] = field(default_factory=list)
    failed: list[PluginFailure] = field(default_factory=list)
    disabled: list[PluginDisabled] = field(default_factory=list)
    _cache: dict[str, list[Any]] = field(default_factory=dict, init=False, repr=False)

    # ---- registration ------------------------------------------------------------------------

    def register(
        self,
        plugin: object,
        group: str,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
        module: str | None = None,
    ) -> PluginRecord | None:
        """Register ``plugin`` with pluggy as ``"<group>:<name>"``.

        Returns its record, or None after recording a failure (duplicate name, a hook
        implementation whose arguments do not match the spec, an unknown ``streamerp2p_*`` hook).
        """
        plugin_name = f"{group}:{name}"
        module = module or getattr(plugin, "__name__", type(plugin).__module__)

        def fail(error: str) -> None:
            log.warning("plugin %s (%s) not registered: %s", plugin_name, distribution, error)
            self.failed.append(PluginFailure(group, name, distribution, version, error, module))

        if self.pm.has_plugin(plugin_name):
            fail(f"DuplicatePlugin: another plugin is already registered as {plugin_name!r}")
            return None
        if self.pm.is_registered(plugin):
            other = self.pm.get_name(plugin)
            fail(f"DuplicatePlugin: the same object is already registered as {other!r}")
            return None
        try:
            self.pm.register(plugin, name=plugin_name)
        except Exception as err:  # pluggy.PluginValidationError, ValueError...
            fail(_error_text(err))
            return None
        callers = self.pm.get_hookcallers(plugin) or []
        unknown = [c.name for c in callers if c.spec is None]
        if unknown:
            self.pm.unregister(plugin)
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("streamerp2p_")))
            fail(f"UnknownHook: {', '.join(sorted(unknown))} (known hooks: {known})")
            return None
        hooked = {c.name for c in callers}
        for attr in dir(plugin):
            unmarked = attr.startswith("streamerp2p_") and attr not in hooked
            if unmarked and callable(getattr(plugin, attr, None)):
                log.warning(
                    "plugin %s: %s is not marked with @hookimpl; it will not be called",
                    plugin_name,
                    attr,
                )
        record = PluginRecord(
            group,
            name,
            distribution,
            version,
            module,
            tuple(sorted(c.name for c in callers)),
        )
        self.loaded.append(record)
        self._cache.clear()
        return record

    # ---- plugin types ------------------------------------------------------------------------

    def _collect(self, hook_name: str, kind: type[T]) -> list[T]:
        """Call every implementation of a ``streamerp2p_<types>`` hook one by one (in
        registration order), flatten the iterables they return and keep the ``kind`` items.

        A plugin that raises or returns something else is logged and skipped; the first item
        with a given ``.name`` wins.
        """
        if hook_name in self._cache:
            return list(self._cache[hook_name])
        items: list[T] = []
        seen: dict[str, str] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                result = impl.function()
                got = [] if result is None else list(result)
            except Exception:
                log.exception("plugin %s: %s() raised; ignored", impl.plugin_name, hook_name)
                continue
            for item in got:
                if not isinstance(item, kind):
                    log.error(
                        "plugin %s: %s() returned %r, not a %s; ignored",
                        impl.plugin_name,
                        hook_name,
                        item,
                        kind.__name__,
                    )
                    continue
                item_name: str = getattr(item, "name", "")
                if item_name in seen:
                    log.warning(
                        "plugin %s: %s %r already provided by %s; ignored",
                        impl.plugin_name,
                        kind.__name__,
                        item_name,
                        seen[item_name],
                    )
                    continue
                seen[item_name] = impl.plugin_name
                items.append(item)
        self._cache[hook_name] = items
        return list(items)

    @staticmethod
    def _named(items: list[T], name: str, what: str) -> T:
        for item in items:
            if getattr(item, "name", None) == name:
                return item
        known = ", ".join(sorted(getattr(i, "name", "?") for i in items)) or "none"
        raise KeyError(f"no {what} named {name!r} (known: {known}; see `streamer plugins`)")

    def codecs(self) -> list[CodecSpec]:
        """All codecs of all plugins (hook ``streamerp2p_codecs``), in plugin load order."""
        return self._collect("streamerp2p_codecs", CodecSpec)

    def codec(self, name: str) -> CodecSpec:
        """The codec called ``name``; KeyError listing the known ones if there is none."""
        return self._named(self.codecs(), name, "codec")

    def codec_for(self, content_type: str | None, head: bytes = b"") -> CodecSpec | None:
        """The codec for a stream: the first codec listing ``content_type`` (parameters such as
        ``;charset=`` and case ignored), else the codec whose ``sniff(head, content_type)``
        scores highest above :data:`SNIFF_THRESHOLD`, else None."""
        codecs = self.codecs()
        if content_type:
            wanted = _media_type(content_type)
            for spec in codecs:
                if wanted in (_media_type(ct) for ct in spec.content_types):
                    return spec
        best: CodecSpec | None = None
        best_score = SNIFF_THRESHOLD
        for spec in codecs:
            try:
                score = float(spec.sniff(head, content_type))
            except Exception:
                log.exception("codec %s: sniff() raised; treated as 0", spec.name)
                continue
            if score > best_score:
                best, best_score = spec, score
        return best

    def ingest_servers(self) -> list[IngestSpec]:
        """All ingest servers (hook ``streamerp2p_ingest_servers``)."""
        return self._collect("streamerp2p_ingest_servers", IngestSpec)

    def ingest(self, name: str) -> IngestSpec:
        """The ingest server called ``name``; KeyError listing the known ones if none."""
        return self._named(self.ingest_servers(), name, "ingest server")

    def uis(self) -> list[UISpec]:
        """All front ends (hook ``streamerp2p_ui``)."""
        return self._collect("streamerp2p_ui", UISpec)

    def ui(self, name: str) -> UISpec:
        """The front end called ``name``; KeyError listing the known ones if none."""
        return self._named(self.uis(), name, "front end")

    # ---- events ------------------------------------------------------------------------------

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        """Call event hook ``hook_name`` on every plugin implementing it.

        Each implementation is called on its own (in pluggy's call order), so one plugin's
        exception is logged and the others are still called. Raises ValueError for an unknown
        hook and TypeError when arguments of the spec are missing (both are kernel bugs).
        """
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None or caller.spec is None:
            raise ValueError(f"no hook named {hook_name!r} in streamerp2p.hookspecs")
        missing = [a for a in caller.spec.argnames if a not in kwargs]
        if missing:
            raise TypeError(f"{hook_name}() missing arguments: {', '.join(missing)}")
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                log.debug("plugin %s: wrapper for event %s skipped", impl.plugin_name, hook_name)
                continue
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception:
                log.exception("plugin %s: %s raised; ignored", impl.plugin_name, hook_name)

    # ---- reporting ---------------------------------------------------------------------------

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """``{"loaded": [...], "disabled": [...], "failed": [...]}`` (for ``--json``)."""
        return {
            "loaded": [r.as_dict() for r in self.loaded],
            "disabled": [r.as_dict() for r in self.disabled],
            "failed": [r.as_dict() for r in self.failed],
        }


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def new_plugin_manager() -> pluggy.PluginManager:
    """A pluggy PluginManager with the hookspecs of :mod:`streamerp2p.hookspecs`."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(config: Config | None = None, groups: Iterable[str] = GROUPS) -> PluginHost:
    """Find, import and register the plugins of the entry point ``groups``.

    Never raises because of a plugin: import errors go to :attr:`PluginHost.failed`, plugins
    excluded by ``plugins.enabled`` / ``plugins.disabled`` to :attr:`PluginHost.disabled`
    (without being imported).
    """
    enabled: list[str] = config.get("plugins.enabled") if config is not None else []
    disabled: list[str] = config.get("plugins.disabled") if config is not None else []
    host = PluginHost()
    dists = _Distributions()

    for group in groups:

        def allow(ep: importlib.metadata.EntryPoint, group: str = group) -> bool:
            reason = None
            if enabled and not _matches(enabled, group, ep.name):
                reason = "not in plugins.enabled"
            elif _matches(disabled, group, ep.name):
                reason = "in plugins.disabled"
            if reason is None:
                return True
            dist, version = dists.lookup(ep)
            host.disabled.append(PluginDisabled(group, ep.name, dist, version, reason))
            return False

        def on_failure(
            manager: Any,
            ep: importlib.metadata.EntryPoint,
            err: BaseException,
            group: str = group,
        ) -> None:
            dist, version = dists.lookup(ep)
            error = str(err) if isinstance(err, _PluginLoadError) else _error_text(err)
            log.warning("plugin %s:%s (%s) failed to load: %s", group, ep.name, dist, error)
            log.debug("plugin %s:%s traceback", group, ep.name, exc_info=err)
            host.failed.append(PluginFailure(group, ep.name, dist, version, error, ep.value))

        manager = _FilteringExtensionManager(
            group,
            allow,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
        )
        ext: Extension[Any]
        for ext in manager.extensions:
            dist, version = dists.lookup(ext.entry_point)
            host.register(
                ext.plugin,
                group,
                ext.name,
                distribution=dist,
                version=version,
                module=ext.entry_point.module,
            )
    return host
