"""First-party brainalign plugin: ``clip`` (open_clip RN101 image tower) and ``open_clip:<name>``.

Only the image tower (``model.visual``) is returned; its final embedding is also exposed
as the tappable module ``embedding`` (an identity applied to the tower's output), because
ViT towers compute it with a bare matrix product that has no module of its own.
``open_clip:<name>@<tag>`` picks a pretrained tag (default: 'openai' when it exists, else
open_clip's first tag for that model). Transformer tokens come out batch-first whatever
the open_clip version (see brainalign.taps.sequence_first_modules).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from torch import nn

from brainalign.errors import BackboneError, MissingWeightsError, suggest
from brainalign.hookspecs import hookimpl
from brainalign.models.spec import BackboneSpec, Preprocessing

PREFIX = "open_clip:"
BRAINALIGN_PREFIXES = (f"{PREFIX}<model>[@<pretrained tag>]",)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
RN_LAYERS = ("layer1", "layer2", "layer3", "layer4", "attnpool")
EMBEDDING = "embedding"


def _quiet():
    """open_clip logs a warning for every randomly initialised model; silence it here."""
    import logging

    return _LogLevel(logging.getLogger(), logging.ERROR)


class _LogLevel:
    def __init__(self, logger, level):
        self.logger, self.level = logger, level

    def __enter__(self):
        self.old = self.logger.level
        self.logger.setLevel(max(self.level, self.old))

    def __exit__(self, *exc):
        self.logger.setLevel(self.old)


def _embedding_hook(module, inputs, output):
    # Route the tower's output through the identity `embedding` so taps can see it.
    if isinstance(output, torch.Tensor):
        return module.embedding(output)
    return None


def _with_embedding_module(visual: nn.Module) -> nn.Module:
    if not hasattr(visual, EMBEDDING):
        visual.add_module(EMBEDDING, nn.Identity())
        visual.register_forward_hook(_embedding_hook)
    return visual


def default_tag(model_name: str) -> str | None:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(model_name)
    return "openai" if "openai" in tags else (tags[0] if tags else None)


def _pretrained_cfg(model_name: str, tag: str | None) -> dict:
    import open_clip

    return dict(open_clip.get_pretrained_cfg(model_name, tag) or {}) if tag else {}


def preprocessing_for(model_name: str, tag: str | None) -> Preprocessing:
    """Input size from the model config; mean/std from the tag's config (OpenAI's by default)."""
    import open_clip

    cfg = open_clip.get_model_config(model_name) or {}
    vcfg = cfg.get("vision_cfg", {})
    size = vcfg.get("image_size", 224)
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    pcfg = {**cfg.get("preprocess_cfg", {}), **_pretrained_cfg(model_name, tag)}
    mean = tuple(float(v) for v in pcfg.get("mean", OPENAI_MEAN))
    std = tuple(float(v) for v in pcfg.get("std", OPENAI_STD))
    return Preprocessing(size=size, mean=mean, std=std)


def _cached_weights(pcfg: dict) -> Path | None:
    """A locally cached checkpoint for an open_clip pretrained config, or None (no network)."""
    from urllib.parse import urlparse

    from brainalign.models.weights import hf_cached_file

    hub = pcfg.get("hf_hub", "")
    if hub:
        # 'org/repo/' means open_clip's default file name; 'org/repo/file.bin' names the file
        model_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        safe = ("open_clip_model.safetensors" if filename == "open_clip_pytorch_model.bin"
                else filename.rsplit(".", 1)[0] + ".safetensors")
        found = hf_cached_file(model_id.rstrip("/"), [safe, filename])
        if found is not None:
            return found
    url = pcfg.get("url", "")
    if url:
        p = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(urlparse(url).path)
        if p.is_file():
            return p
    return None


def build_visual(model_name: str, tag: str | None = None, pretrained: bool = False,
                 weights: Path | None = None) -> nn.Module:
    """The image tower of open_clip model ``model_name``: (n, 3, S, S) -> (n, embed_dim)."""
    import open_clip

    from brainalign.models.weights import (ensure_online, hf_cache_dir, load_state_dict_file,
                                           load_state_dict_into, missing_weights_error)

    pcfg = _pretrained_cfg(model_name, tag)
    quick_gelu = bool(pcfg.get("quick_gelu", False))  # the architecture the tag was trained with
    source = None
    if pretrained and weights is None:
        if not pcfg:
            raise MissingWeightsError(f"open_clip has no pretrained weights for {model_name!r}"
                                      f"{' with tag ' + repr(tag) if tag else ''}: use pretrained=False "
                                      "(CLI: --no-pretrained) or weights=PATH (--weights PATH)")
        cached = _cached_weights(pcfg)
        if cached is not None:
            source = str(cached)  # a local file: open_clip loads it without the network
        else:
            hub = pcfg.get("hf_hub", "").rstrip("/")
            where = f"https://huggingface.co/{hub}" if hub else pcfg.get("url", "")
            ensure_online(f"open_clip {model_name!r} ({tag})", where, hf_cache_dir())
            source = tag
    visual = None
    if source is None:  # no CLIP checkpoint to load: build the image tower alone (no text tower)
        visual = _vision_tower_only(model_name, quick_gelu)
    if visual is None:
        with _quiet():
            try:
                model = open_clip.create_model(model_name, pretrained=source, force_quick_gelu=quick_gelu)
            except (OSError, RuntimeError) as exc:
                if source is None or os.path.isfile(source):
                    raise
                raise missing_weights_error(f"open_clip {model_name!r} ({tag})",
                                            str(pcfg.get("hf_hub") or pcfg.get("url")), hf_cache_dir(),
                                            f"download failed: {type(exc).__name__}: {exc}") from exc
        visual = model.visual
        del model  # drop the text tower
    if weights is not None:
        sd = load_state_dict_file(weights)
        if any(k.startswith("visual.") for k in sd):  # a full CLIP state dict: keep the image tower
            sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
        load_state_dict_into(visual, sd, source=str(weights))
    return _with_embedding_module(visual)


def _vision_tower_only(model_name: str, quick_gelu: bool) -> nn.Module | None:
    """The image tower built as open_clip builds it inside CLIP, or None where that helper is missing."""
    import open_clip

    builder = getattr(getattr(open_clip, "model", None), "_build_vision_tower", None)
    cfg = open_clip.get_model_config(model_name) or {}
    if builder is None or "embed_dim" not in cfg or "vision_cfg" not in cfg:
        return None
    try:
        with _quiet():
            return builder(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=quick_gelu)
    except Exception:  # an exotic config: fall back to building the whole model
        return None


def _evenly(names: list[str], k: int = 4) -> list[str]:
    if len(names) <= k:
        return list(names)
    step = (len(names) - 1) / (k - 1)
    return [names[round(i * step)] for i in range(k)]


@functools.lru_cache(maxsize=64)
def default_layers(model_name: str) -> tuple[str, ...]:
    """RN towers: the residual stages and attnpool; ViTs: 4 evenly spaced blocks + embedding."""
    import open_clip

    try:
        with _quiet(), torch.device("meta"):  # only the module tree is needed
            visual = open_clip.create_model(model_name, pretrained=None, device="meta").visual
    except Exception:  # a config whose __init__ computes with tensors: build the tower for real
        visual = _vision_tower_only(model_name, False) or build_visual(model_name)
    children = dict(visual.named_children())
    if all(n in children for n in RN_LAYERS):
        return RN_LAYERS
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks):
        return (*_evenly([f"transformer.resblocks.{i}" for i in range(len(blocks))]), EMBEDDING)
    trunk = getattr(visual, "trunk", None)
    info = getattr(trunk, "feature_info", None) or []
    names = [f"trunk.{f['module']}" for f in info if isinstance(f, dict) and f.get("module")]
    if not names:
        names = [n for n, m in children.items() if any(True for _ in m.parameters())]
    return (*_evenly(names), EMBEDDING)


@hookimpl
def brainalign_backbones():
    return [BackboneSpec(
        name="clip", factory=functools.partial(build_visual, "RN101", "openai"), layers=RN_LAYERS,
        layer_labels=RN_LAYERS, preprocessing=Preprocessing(size=224, mean=OPENAI_MEAN, std=OPENAI_STD),
        output="embedding", aliases=("clip_rn101", "clip-rn101"),
        description="CLIP RN101 image tower (OpenAI weights via open_clip); the ReAlnet comparison CLIP")]


@hookimpl
def brainalign_resolve_backbone(name: str):
    if not name.lower().startswith(PREFIX):
        return None
    import open_clip

    rest = name[len(PREFIX):].strip()
    model_name, _, tag = rest.partition("@")
    models = open_clip.list_models()
    if model_name not in models:
        raise BackboneError(f"unknown open_clip model {model_name!r}.{suggest(model_name, models)} "
                            "List them with python -c \"import open_clip; print(open_clip.list_models())\"")
    tags = open_clip.list_pretrained_tags_by_model(model_name)
    if tag and tag not in tags:
        raise BackboneError(f"open_clip model {model_name!r} has no pretrained tag {tag!r}; available: "
                            f"{', '.join(tags) or 'none'}")
    tag = tag or default_tag(model_name)
    return BackboneSpec(
        name=f"{PREFIX}{model_name}" + (f"@{tag}" if "@" in rest else ""),
        factory=functools.partial(build_visual, model_name, tag), layers=default_layers(model_name),
        preprocessing=preprocessing_for(model_name, tag), output="embedding",
        description=f"open_clip {model_name} image tower ({tag or 'no pretrained tag'})", plugin="open_clip")
