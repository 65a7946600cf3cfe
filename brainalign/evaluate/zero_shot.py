"""Zero-shot ImageNet classification for embedding models (CLIP image towers).

An image tower alone has no classes. As in CLIP, class weights come from the *text*
tower: each ImageNet class name is put into prompt templates, embedded, averaged and
normalised (open_clip's ``build_zero_shot_classifier`` with its ``IMAGENET_CLASSNAMES``
and templates). This needs the full open_clip model with its text tower: with
pretrained weights that is open_clip's 'openai' checkpoint; with ``pretrained=False``
the text tower is random (the pipeline still runs; accuracies are then meaningless).

Embedding 1000 classes x 80 templates is slow on a CPU, so the class weights are
cached on disk (keyed by model, weights and templates); ``templates='simple'`` (7
templates, open_clip's reduced set) is the default, 'openai' the full 80, 'single' one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..device import resolve_device
from ..errors import BackboneError, ConfigError, MissingWeightsError
from ..progress import interactive

TEMPLATE_SETS = ("simple", "openai", "single")


class ZeroShotHead(nn.Module):
    """embedding (n, d) -> logits (n, n_classes) = scale * normalize(embedding) @ weights."""

    def __init__(self, weights: torch.Tensor, logit_scale: float = 100.0):
        super().__init__()
        self.register_buffer("weights", weights.float())  # (d, n_classes), columns unit-norm
        self.logit_scale = float(logit_scale)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        emb = emb.flatten(1).float()
        emb = emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self.logit_scale * emb @ self.weights


def templates_for(name: str):
    import open_clip

    if name == "simple":
        return list(open_clip.SIMPLE_IMAGENET_TEMPLATES)
    if name == "openai":
        return list(open_clip.OPENAI_IMAGENET_TEMPLATES)
    if name == "single":
        return ["a photo of a {}."]
    raise ConfigError(f"unknown template set {name!r}: use one of {', '.join(TEMPLATE_SETS)}")


def open_clip_identity(spec) -> tuple[str, str]:
    """(open_clip model name, pretrained tag) of an embedding backbone spec.

    Uses ``spec.extra['open_clip_model']`` / ``['pretrained_tag']`` when the plugin set
    them; otherwise 'clip' -> ('RN101', 'openai') and 'open_clip:<name>' -> (<name>, 'openai').
    """
    extra = dict(getattr(spec, "extra", {}) or {})
    name = extra.get("open_clip_model") or extra.get("model_name")
    tag = extra.get("pretrained_tag") or extra.get("pretrained") or "openai"
    if not name:
        if spec.name.startswith("open_clip:"):
            name = spec.name.split(":", 1)[1]
            if "@" in name:  # open_clip:<model>@<tag>
                name, tag = name.split("@", 1)
        elif spec.name in ("clip", "clip_rn101"):
            name = "RN101"
    if not name:
        raise BackboneError(f"backbone {spec.name!r} outputs embeddings but is not an open_clip model, so "
                            "there is no text tower for zero-shot classification: evaluate robustness "
                            "with a classifier (output 'logits') or an open_clip model")
    return str(name), str(tag)


def zero_shot_head(spec, *, pretrained: bool = True, templates: str = "simple",
                   classnames: Sequence[str] | None = None, device=None,
                   cache_dir: str | Path | None = None, progress: bool = True) -> ZeroShotHead:
    """Build (or load from cache) the zero-shot ImageNet head for an open_clip image tower."""
    import open_clip

    name, tag = open_clip_identity(spec)
    names = list(classnames) if classnames is not None else list(open_clip.IMAGENET_CLASSNAMES)
    tmpl = templates_for(templates)
    key = hashlib.sha256(json.dumps([name, tag if pretrained else "random", templates, names]).encode()).hexdigest()[:20]
    cache = Path(cache_dir) / "zero_shot" / f"{key}.pt" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        try:
            blob = torch.load(cache, map_location="cpu", weights_only=True)
            return ZeroShotHead(blob["weights"], float(blob["logit_scale"]))
        except Exception:  # corrupted cache: rebuild below
            pass
    dev = resolve_device(device)
    try:
        clip = open_clip.create_model(name, pretrained=tag if pretrained else None)
    except RuntimeError as exc:
        raise MissingWeightsError(f"cannot load open_clip {name!r} weights {tag!r} for the zero-shot text "
                                  f"tower ({exc}); connect once to download them, or pass --no-pretrained "
                                  "(random text tower: accuracies are then meaningless)") from exc
    clip = clip.to(dev).eval()
    tokenizer = open_clip.get_tokenizer(name)
    with torch.no_grad():  # not inference_mode: the weights take part in attacks' autograd graphs later
        weights = open_clip.build_zero_shot_classifier(clip, tokenizer, names, tmpl, num_classes_per_batch=10,
                                                       device=dev, use_tqdm=progress and interactive())
    scale = float(clip.logit_scale.detach().exp()) if hasattr(clip, "logit_scale") else 100.0
    head = ZeroShotHead(weights.detach().cpu(), scale)
    if cache is not None:
        from ..io import atomic_write_bytes
        import io

        buf = io.BytesIO()
        torch.save({"weights": head.weights, "logit_scale": torch.tensor(scale)}, buf)
        atomic_write_bytes(cache, buf.getvalue())
    del clip
    return head
