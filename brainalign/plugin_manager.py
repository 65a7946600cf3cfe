"""Plugin discovery: every module registered under the entry-point group ``brainalign``.

First-party plugins (``plugins/``) and third-party packages are found the same way. A
plugin that fails to import is skipped with a warning naming it, so one broken package
never hides the others.
"""
from __future__ import annotations

import importlib.metadata
import threading
import warnings

import pluggy

from . import hookspecs

_PM: pluggy.PluginManager | None = None
_DISTRIBUTIONS: dict[str, str] = {}  # plugin name -> "distribution version"
_LOCK = threading.Lock()


def get_plugin_manager(refresh: bool = False) -> pluggy.PluginManager:
    """The (cached) pluggy PluginManager with all ``brainalign`` entry points registered.

    ``refresh=True`` rebuilds it, e.g. after installing a plugin or changing ``sys.path``.
    """
    global _PM
    with _LOCK:
        if _PM is None or refresh:
            importlib.invalidate_caches()
            _DISTRIBUTIONS.clear()
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            _load_entrypoints(pm, hookspecs.ENTRY_POINT_GROUP)
            _PM = pm
        return _PM


def _load_entrypoints(pm: pluggy.PluginManager, group: str) -> None:
    """Like ``pm.load_setuptools_entrypoints(group)`` but one failing plugin does not stop the rest."""
    for dist in list(importlib.metadata.distributions()):
        for ep in dist.entry_points:
            if ep.group != group or pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue  # first distribution on sys.path wins, as for imports
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
                _DISTRIBUTIONS[ep.name] = f"{dist.metadata['Name']} {dist.version}"
            except Exception as exc:
                dist_name = dist.metadata["Name"] if dist.metadata else "?"
                warnings.warn(f"brainalign plugin {ep.name!r} ({ep.value}, from {dist_name}) could not be "
                              f"loaded and is skipped: {type(exc).__name__}: {exc}", stacklevel=3)


def _names(items) -> list[str]:
    """Display names; datasets also show their kind (one name may exist as 'eeg' and 'fmri')."""
    out = []
    for item in items or []:
        name = str(getattr(item, "name", item))
        kind = getattr(item, "kind", None)
        out.append(f"{name} ({kind})" if isinstance(kind, str) else name)
    return out


def list_plugins(refresh: bool = False) -> list[dict]:
    """One dict per registered plugin: name, module, distribution, backbones, aliases,
    prefixes (dynamic backbone names such as ``timm:``) and datasets."""
    pm = get_plugin_manager(refresh=refresh)
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np_: np_[0]):
        if plugin is None:  # blocked
            continue
        entry = {"name": name, "module": getattr(plugin, "__name__", type(plugin).__name__),
                 "distribution": _DISTRIBUTIONS.get(name, ""), "backbones": [], "aliases": [],
                 "prefixes": [], "datasets": []}
        for hook_name, key in (("brainalign_backbones", "backbones"), ("brainalign_datasets", "datasets")):
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name != name:
                    continue
                try:
                    items = impl.function() or []
                except Exception as exc:
                    warnings.warn(f"brainalign plugin {name!r}: {hook_name}() failed: {type(exc).__name__}: "
                                  f"{exc}", stacklevel=2)
                    continue
                entry[key] += _names(items)
                if key == "backbones":
                    entry["aliases"] += [a for item in items for a in getattr(item, "aliases", ())]
        entry["prefixes"] = list(getattr(plugin, "BRAINALIGN_PREFIXES", ()))
        out.append(entry)
    return out
