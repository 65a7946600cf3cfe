"""The backbone registry: specs contributed by plugins, looked up by name, built into models.

    spec = get_backbone_spec("cornet_s")          # aliases and timm:/open_clip: prefixes work
    model = load_backbone("cornet", pretrained=False)
    spec_of(model) is not None                     # the model carries its spec
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ..device import resolve_device
from ..errors import BackboneError, ConfigError, MissingWeightsError, suggest
from .spec import BackboneSpec

SPEC_ATTR = "_brainalign_spec"


def available_backbones(refresh: bool = False) -> dict[str, BackboneSpec]:
    """Canonical name -> :class:`BackboneSpec` of every backbone the installed plugins provide.

    ``spec.plugin`` names the providing plugin. Two plugins providing the same name or
    alias raise BackboneError naming both.
    """
    from ..plugin_manager import hook_results

    specs: dict[str, BackboneSpec] = {}
    owner: dict[str, str] = {}  # lower-cased name or alias -> "plugin:name"
    for plugin, spec in hook_results("brainalign_backbones", BackboneSpec, refresh=refresh):
        spec = dataclasses.replace(spec, plugin=plugin)
        for key in (spec.name, *spec.aliases):
            k = key.lower()
            if k in owner:
                other = owner[k]
                raise BackboneError(f"backbone name {key!r} is provided twice: by plugin "
                                    f"{other.split(':', 1)[0]!r} ({other.split(':', 1)[1]}) and by plugin "
                                    f"{plugin!r} ({spec.name}); uninstall or rename one of them")
            owner[k] = f"{plugin}:{spec.name}"
        specs[spec.name] = spec
    return specs


def get_backbone_spec(name: str | BackboneSpec) -> BackboneSpec:
    """The spec for a canonical name, an alias (case-insensitive) or a dynamic name.

    Dynamic names (e.g. ``timm:convnext_tiny``, ``open_clip:ViT-B-32``) are resolved by the
    plugins' ``brainalign_resolve_backbone`` hook. Unknown names raise BackboneError with
    the closest names.
    """
    if isinstance(name, BackboneSpec):
        return name
    if not isinstance(name, str) or not name.strip():
        raise BackboneError(f"backbone name must be a non-empty string, got {name!r}; "
                            "run 'brainalign backbones' for the list")
    name = name.strip()
    specs = available_backbones()
    if name in specs:
        return specs[name]
    by_alias = {}
    for spec in specs.values():
        for key in (spec.name, *spec.aliases):
            by_alias[key.lower()] = spec
    if name.lower() in by_alias:
        return by_alias[name.lower()]

    from ..plugin_manager import first_result

    # firstresult hook: the first plugin that recognises the name answers
    plugin, spec = first_result("brainalign_resolve_backbone", BackboneSpec, name=name)
    if spec is not None:
        return spec if spec.plugin else dataclasses.replace(spec, plugin=plugin)
    if ":" in name:
        prefix = name.split(":", 1)[0]
        raise BackboneError(f"no installed plugin handles the prefix {prefix + ':'!r} in {name!r}; "
                            "known prefixes: timm:<model>, open_clip:<model> (run 'brainalign backbones')")
    hint = suggest(name, [*specs, *(a for s in specs.values() for a in s.aliases)])
    raise BackboneError(f"unknown backbone {name!r}.{hint} Run 'brainalign backbones' for the list "
                        "(any timm model works as timm:<name>, any open_clip model as open_clip:<name>)")


def load_backbone(name: str | BackboneSpec, pretrained: bool = True, weights: str | Path | None = None,
                  device: str | torch.device | None = None, **options) -> nn.Module:
    """Build backbone ``name`` in eval mode on ``device`` (default: CUDA if available).

    Args:
        name: canonical name, alias or dynamic name (see :func:`get_backbone_spec`).
        pretrained: load the standard pretrained weights (downloaded once into the usual
            cache; offline without a cache raises MissingWeightsError).
        weights: a local weights file (state dict / checkpoint); takes precedence over
            ``pretrained``.
        device: 'cpu', 'cuda', 'auto' or None.
        **options: passed on to the spec's factory when it accepts them (e.g.
            ``num_classes`` for the CORnet backbones).

    Returns:
        the model; ``spec_of(model)`` gives its spec.
    """
    spec = get_backbone_spec(name)
    if weights is not None:
        weights = Path(weights).expanduser()
        if not weights.is_file():
            raise MissingWeightsError(f"weights file not found: {weights}; check the path, or use "
                                      "pretrained=True / --pretrained for the standard weights")
    dev = resolve_device(device)
    if options:
        import inspect

        params = inspect.signature(spec.factory).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [k for k in options if k not in params and not takes_any]
        if unknown:
            accepted = [k for k in params if k not in ("pretrained", "weights")]
            raise ConfigError(f"backbone {spec.name!r} does not take option(s) {unknown}; it accepts "
                              f"{accepted or 'no options'}")
    model = spec.factory(pretrained=bool(pretrained) and weights is None, weights=weights, **options)
    if not isinstance(model, nn.Module):
        raise BackboneError(f"the factory of backbone {spec.name!r} (plugin {spec.plugin!r}) returned "
                            f"{type(model).__name__}, not an nn.Module")
    model = model.to(dev)
    model.eval()
    attach_spec(model, spec)
    return model


def attach_spec(model: nn.Module, spec: BackboneSpec) -> nn.Module:
    """Store ``spec`` on ``model`` as a plain attribute (not a parameter or buffer)."""
    object.__setattr__(model, SPEC_ATTR, spec)
    return model


def spec_of(model: nn.Module) -> BackboneSpec | None:
    """The :class:`BackboneSpec` a model was loaded with (looks through DDP/DataParallel and
    an AlignedModel to its backbone)."""
    from ..taps import tap_root

    spec = getattr(model, SPEC_ATTR, None)
    if spec is None and isinstance(getattr(model, "module", None), nn.Module):
        spec = getattr(model.module, SPEC_ATTR, None)
    if spec is None and tap_root(model) is not model:
        spec = getattr(tap_root(model), SPEC_ATTR, None)
    return spec if isinstance(spec, BackboneSpec) else None
