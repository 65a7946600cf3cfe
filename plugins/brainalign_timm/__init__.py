"""First-party brainalign plugin: ``resnet101`` and any timm model as ``timm:<name>``.

Pretrained weights come from timm's usual source (the Hugging Face hub, or a URL) and its
usual cache; a cached copy is used without touching the network, and with no network and
no cache a MissingWeightsError says which file is missing and how to proceed.
"""
from __future__ import annotations

import functools
from pathlib import Path

from brainalign.errors import BackboneError, MissingWeightsError, suggest
from brainalign.hookspecs import hookimpl
from brainalign.models.spec import BackboneSpec, Preprocessing

PREFIX = "timm:"
BRAINALIGN_PREFIXES = (f"{PREFIX}<model>",)  # shown by 'brainalign plugins'
RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
MAX_DEFAULT_LAYERS = 6


def _pretrained_cfg(model_name: str):
    import timm

    try:
        return timm.models.get_pretrained_cfg(model_name)
    except Exception:  # names without a pretrained tag raise in some timm versions
        return None


def preprocessing_for(model_name: str) -> Preprocessing:
    """Image size and normalisation from timm's pretrained config (ImageNet 224 if none)."""
    cfg = _pretrained_cfg(model_name)
    if cfg is None:
        return Preprocessing()
    size = int(cfg.input_size[-1]) if cfg.input_size else 224
    mean = tuple(float(v) for v in (cfg.mean or Preprocessing().mean))
    std = tuple(float(v) for v in (cfg.std or Preprocessing().std))
    if len(mean) != 3 or len(std) != 3:  # e.g. single-channel models: keep ImageNet RGB stats
        return Preprocessing(size=size)
    return Preprocessing(size=size, mean=mean, std=std)


def _cached_weights(cfg) -> Path | None:
    """A locally cached pretrained file for ``cfg`` (HF cache or torch.hub's), or None."""
    import os
    from urllib.parse import urlparse

    from brainalign.models.weights import hf_cached_file, torch_hub_checkpoint_dir

    if cfg.hf_hub_id:
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        found = hf_cached_file(cfg.hf_hub_id, names)
        if found is not None:
            return found
    if cfg.url:
        p = torch_hub_checkpoint_dir() / os.path.basename(urlparse(cfg.url).path)
        if p.is_file():
            return p
    return None


def build_timm(model_name: str, pretrained: bool = False, weights: Path | None = None, **kwargs):
    """A timm model; ``weights`` (local file) wins over ``pretrained`` (timm's source and cache)."""
    import timm

    from brainalign.models.weights import ensure_online, hf_cache_dir, load_weights_into

    if weights is not None:
        model = timm.create_model(model_name, pretrained=False, **kwargs)
        return load_weights_into(model, weights)
    if not pretrained:
        return timm.create_model(model_name, pretrained=False, **kwargs)
    what = f"timm model {model_name!r}"
    cfg = _pretrained_cfg(model_name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise MissingWeightsError(f"timm has no pretrained weights for {model_name!r}: use pretrained=False "
                                  "(CLI: --no-pretrained) or weights=PATH (--weights PATH)")
    cached = _cached_weights(cfg)
    if cached is not None:  # load the cached file directly: no network round-trip
        return timm.create_model(model_name, pretrained=True, pretrained_cfg_overlay={"file": str(cached)},
                                 **kwargs)
    source = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.url
    ensure_online(what, source, hf_cache_dir() if cfg.hf_hub_id else cfg.url)
    try:
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except Exception as exc:
        from brainalign.models.weights import missing_weights_error

        raise missing_weights_error(what, source, hf_cache_dir(), f"download failed: {type(exc).__name__}: "
                                    f"{exc}") from exc


@functools.lru_cache(maxsize=64)
def default_layers(model_name: str) -> tuple[str, ...]:
    """timm's ``feature_info`` module names (at most 6, evenly spaced, always the last)."""
    import torch
    import timm

    try:
        with torch.device("meta"):  # no memory, no init cost: only the module tree is needed
            model = timm.create_model(model_name, pretrained=False)
    except Exception:  # a model whose __init__ computes with tensors: build it for real
        model = timm.create_model(model_name, pretrained=False)
    info = getattr(model, "feature_info", None) or []
    names = [f["module"] for f in info if isinstance(f, dict) and f.get("module")]
    if not names:  # fall back to the top-level children that hold parameters
        names = [n for n, m in model.named_children() if any(True for _ in m.parameters())]
    if len(names) > MAX_DEFAULT_LAYERS:
        k = 4
        step = (len(names) - 1) / (k - 1)
        names = [names[round(i * step)] for i in range(k)]
    return tuple(names)


@hookimpl
def brainalign_backbones():
    return [BackboneSpec(
        name="resnet101", factory=functools.partial(build_timm, "resnet101"), layers=RESNET_LAYERS,
        layer_labels=RESNET_LAYERS, preprocessing=Preprocessing(size=224), output="logits",
        aliases=("resnet-101", "resnet_101"),
        description="ResNet-101 via timm (ImageNet); the ReAlnet comparison CNN")]


@hookimpl
def brainalign_resolve_backbone(name: str):
    if not name.lower().startswith(PREFIX):
        return None
    import timm

    model_name = name[len(PREFIX):].strip()
    if not timm.is_model(model_name):
        hint = suggest(model_name, timm.list_models())
        raise BackboneError(f"unknown timm model {model_name!r}.{hint} List them with "
                            "python -c \"import timm; print(timm.list_models('*pattern*'))\"")
    return BackboneSpec(
        name=f"{PREFIX}{model_name}", factory=functools.partial(build_timm, model_name),
        layers=default_layers(model_name), preprocessing=preprocessing_for(model_name), output="logits",
        description=f"timm model {model_name}", plugin="timm")
