"""Plugin discovery: every module registered under the entry-point group ``brainalign``.

First-party plugins (``plugins/``) and third-party packages are found the same way.

* A plugin that fails to *import* is skipped with a warning naming it, so one broken
  package never hides the others.
* A plugin that imports but is *malformed* is rejected at registration with a PluginError
  naming the plugin and the hook: a hook implementation whose name matches no hook
  specification (a misspelling: pluggy's ``check_pending``), or whose arguments do not
  match the specification (pluggy's ``_verify_hook``).
* Hook results are collected one way everywhere (:func:`hook_results` for the list hooks,
  :func:`first_result` for ``brainalign_resolve_backbone``): an implementation that raises a
  BrainAlignError passes it on (its message is for the user), one that raises anything else
  is skipped with a warning naming it; a return value of the wrong type is a PluginError
  naming the plugin, the hook and what was returned.
"""
from __future__ import annotations

import importlib.metadata
import threading
import warnings

import pluggy

from . import hookspecs
from .errors import BrainAlignError, PluginError, suggest

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
            except Exception as exc:
                dist_name = dist.metadata["Name"] if dist.metadata else "?"
                warnings.warn(f"brainalign plugin {ep.name!r} ({ep.value}, from {dist_name}) could not be "
                              f"loaded and is skipped: {type(exc).__name__}: {exc}", stacklevel=3)
                continue
            register_plugin(pm, plugin, ep.name, f"{dist.metadata['Name']} {dist.version}")


def register_plugin(pm: pluggy.PluginManager, plugin, name: str, distribution: str = "") -> None:
    """Register ``plugin`` under ``name``, rejecting unknown hook names and wrong signatures."""
    known = sorted(n for n in dir(hookspecs) if n.startswith("brainalign_"))
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # arguments that the specification does not have
        raise PluginError(f"brainalign plugin {name!r} ({distribution or getattr(plugin, '__name__', '')}) is "
                          f"malformed: {'; '.join(str(exc).splitlines())}; fix the hook's signature to match brainalign/hookspecs.py") from exc
    for hook_name in sorted(n for n in dir(pm.hook) if not n.startswith("_")):
        caller = getattr(pm.hook, hook_name)
        if caller.spec is None and any(impl.plugin_name == name for impl in caller.get_hookimpls()):
            pm.unregister(name=name)
            raise PluginError(f"brainalign plugin {name!r} ({distribution or getattr(plugin, '__name__', '')}) "
                              f"implements {hook_name}(), which is not a brainalign hook.{suggest(hook_name, known)} "
                              f"Hooks: {', '.join(known)}; rename it or uninstall the plugin")
    _DISTRIBUTIONS[name] = distribution


def hook_results(hook_name: str, item_type: type, *, refresh: bool = False) -> list[tuple[str, object]]:
    """[(plugin name, item)] from every implementation of list-returning hook ``hook_name``,
    in registration order.

    An implementation that raises is skipped with a warning (one broken plugin must not hide
    the others; a BrainAlignError passes on); one that returns something other than a list/tuple of ``item_type`` raises
    PluginError naming the plugin, the hook and the offending value.
    """
    pm = get_plugin_manager(refresh=refresh)
    out = []
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        provided = _call(impl, hook_name)
        if provided is None:
            continue
        if not isinstance(provided, (list, tuple)):
            raise PluginError(f"brainalign plugin {impl.plugin_name!r}: {hook_name}() returned "
                              f"{type(provided).__name__}; it must return a list of {item_type.__name__}")
        out += [(impl.plugin_name, _checked(impl, hook_name, item, item_type)) for item in provided]
    return out


def first_result(hook_name: str, item_type: type, **kwargs) -> tuple[str, object] | tuple[None, None]:
    """(plugin name, item) from the first implementation of hook ``hook_name`` (in pluggy's call
    order: last registered first) that answers ``kwargs`` with something other than None;
    (None, None) when none does. Failures and wrong types are handled as in :func:`hook_results`."""
    pm = get_plugin_manager()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        item = _call(impl, hook_name, **kwargs)
        if item is not None:
            return impl.plugin_name, _checked(impl, hook_name, item, item_type)
    return None, None


def _call(impl, hook_name: str, **kwargs):
    """One hook implementation's answer. A BrainAlignError it raises is the plugin's message for
    the user and passes on; any other exception skips it (None) with a warning naming the plugin."""
    try:
        return impl.function(**kwargs)
    except BrainAlignError:
        raise
    except Exception as exc:
        warnings.warn(f"brainalign plugin {impl.plugin_name!r}: {hook_name}() failed and is skipped "
                      f"({type(exc).__name__}: {exc})", stacklevel=3)
        return None


def _checked(impl, hook_name: str, item, item_type: type):
    if not isinstance(item, item_type):
        raise PluginError(f"brainalign plugin {impl.plugin_name!r}: {hook_name}() returned a "
                          f"{type(item).__name__} ({item!r:.60}); it must return {item_type.__name__} objects")
    missing = item.missing() if callable(getattr(item, "missing", None)) else []
    if missing:  # an incomplete subclass fails here, naming what to define, not later mid-run
        raise PluginError(f"brainalign plugin {impl.plugin_name!r}: {hook_name}() returned a "
                          f"{type(item).__name__} that does not define {', '.join(missing)}; define it in the class")
    return item


def _provided_hooks() -> dict[str, tuple[str, type]]:
    """{list key: (hook name, item type)} of the list-returning hooks that ``brainalign plugins`` shows."""
    from .alignment.objectives import ObjectiveSpec
    from .analyses import Analysis
    from .data.registry import DatasetSpec
    from .models.spec import BackboneSpec

    return {"backbones": ("brainalign_backbones", BackboneSpec), "datasets": ("brainalign_datasets", DatasetSpec),
            "objectives": ("brainalign_objectives", ObjectiveSpec), "analyses": ("brainalign_analyses", Analysis)}


def _display_name(item) -> str:
    """A provided item's name; datasets also show their modality (one name may exist as 'eeg' and 'fmri')."""
    name = str(getattr(item, "name", item))
    modality = getattr(item, "modality", None)
    return f"{name} ({modality})" if isinstance(modality, str) else name


def list_plugins(refresh: bool = False) -> list[dict]:
    """One dict per registered plugin: name, module, distribution, backbones, aliases,
    prefixes (dynamic backbone names such as ``timm:``), datasets, objectives and analyses.

    Every list comes from :func:`hook_results`, so a bad return value is reported the way
    every other use of the hook reports it.
    """
    pm = get_plugin_manager(refresh=refresh)
    hooks = _provided_hooks()
    provided = {key: hook_results(hook, item_type) for key, (hook, item_type) in hooks.items()}
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np_: np_[0]):
        if plugin is None:  # blocked
            continue
        entry = {"name": name, "module": getattr(plugin, "__name__", type(plugin).__name__),
                 "distribution": _DISTRIBUTIONS.get(name, ""), "aliases": [],
                 "prefixes": list(getattr(plugin, "BRAINALIGN_PREFIXES", ()))}
        for key, items in provided.items():
            mine = [item for owner, item in items if owner == name]
            entry[key] = [_display_name(item) for item in mine]
            if key == "backbones":
                entry["aliases"] = [a for item in mine for a in getattr(item, "aliases", ())]
        out.append(entry)
    return out
