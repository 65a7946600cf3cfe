"""Resolve MODEL strings of the command line into loaded models.

A MODEL is one of:
  * a registered backbone name or alias: ``cornet``, ``resnet101``, ``clip`` ...
  * a dynamic backbone: ``timm:<name>`` or ``open_clip:<name>``;
  * a backbone with a weights file: ``NAME@PATH`` (e.g. ``cornet_tiny@demo/models/unaligned.pt``;
    classifier layers are resized to the saved weights, e.g. a demo model with 24 classes);
  * a saved aligned model: a file written by ``brainalign align`` / ``AlignedModel.save``,
    a folder holding exactly one such file (``aligned.pt`` / ``aligned.safetensors``), a
    ``save_pretrained`` / ``brainalign export`` folder, or ``hf-hub:owner/name``;
  * a personalised set: a path containing ``{subject}`` (Python format syntax, e.g.
    ``runs/sub-{subject:02d}_beta-100``), expanded per subject -- each subject's data is
    then compared with that subject's own model, as for the paper's ReAlnets.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from torch import nn

from ..alignment.hub import HUB_PREFIX, is_pretrained_dir
from ..errors import BackboneError, CheckpointError, ConfigError

ALIGNED_SUFFIXES = (".pt", ".pth", ".safetensors", ".ckpt", ".bin")
ALIGNED_NAMES = ("aligned.pt", "aligned.safetensors", "model.pt")


@dataclass
class ModelSource:
    """A loaded model ready for evaluation.

    Attributes:
        label: display name (backbone name, or the aligned file's run name).
        model: the nn.Module (eval mode), carrying its BackboneSpec when registered.
        spec: its BackboneSpec (None for unregistered custom modules).
        layers: module names to read, early to late.
        layer_labels: display names of ``layers`` (e.g. V1..IT).
        origin: 'backbone' or 'aligned'.
        path: the aligned-model file, if any.
        config: the aligned model's saved config (empty for plain backbones).
    """

    label: str
    model: nn.Module
    spec: object | None
    layers: list[str]
    layer_labels: list[str]
    origin: str = "backbone"
    path: Path | None = None
    config: dict = field(default_factory=dict)

    def describe(self) -> dict:
        d = {"label": self.label, "origin": self.origin, "backbone": getattr(self.spec, "name", None),
             "layers": self.layers, "layer_labels": self.layer_labels}
        if self.path is not None:
            d["path"] = str(self.path)
        for k in ("subject", "beta", "epochs", "unpaired", "contrastive", "seed", "lr"):
            if k in self.config:
                d[k] = self.config[k]
        return d


def looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith(".") or text.endswith(ALIGNED_SUFFIXES)
            or os.path.exists(text))


def find_aligned_file(path: str | Path) -> Path:
    """The aligned-model file of ``path`` (a file, or a folder holding exactly one)."""
    p = Path(path).expanduser()
    if p.is_file() or is_pretrained_dir(p):  # a file, or a save_pretrained / 'brainalign export' folder
        return p
    if p.is_dir():
        cands = [p / n for n in ALIGNED_NAMES if (p / n).is_file()]
        if not cands:
            cands = sorted(q for q in p.iterdir() if q.is_file() and q.suffix in ALIGNED_SUFFIXES)
        if len(cands) == 1:
            return cands[0]
        what = "no" if not cands else f"{len(cands)}"
        raise CheckpointError(f"folder {p} holds {what} aligned-model files ({', '.join(c.name for c in cands)}); "
                              "name the file itself (e.g. .../aligned.pt)")
    raise CheckpointError(f"aligned-model file not found: {p}; check the path (a file written by "
                          "'brainalign align' or AlignedModel.save), or give a backbone name "
                          "('brainalign backbones' lists them)")


def _layer_labels(spec, layers: Sequence[str]) -> list[str]:
    if spec is None:
        return list(layers)
    names = dict(zip(spec.layers, spec.labels()))
    return [names.get(layer, layer) for layer in layers]


def _label_for_path(path: Path) -> str:
    stem = path.stem
    if stem.lower() in ("aligned", "model", "checkpoint", "weights") and path.parent.name:
        return path.parent.name
    return stem


def resolve_model(text: str, *, pretrained: bool = True, weights: str | Path | None = None,
                  layers: Sequence[str] | None = None, device=None, label: str | None = None,
                  seed: int = 0) -> ModelSource:
    """Load one MODEL (backbone name / timm: / open_clip: / aligned-model path).

    Random (``pretrained=False``) weights are drawn after seeding with ``seed``, so runs repeat.

    Raises BackboneError for unknown names (with close names), CheckpointError for a path
    that is missing or not an aligned-model file, LayerError for unknown layers.
    """
    from ..models.registry import load_backbone, spec_of
    from ..taps import resolve_layers

    text = str(text).strip()
    if not text:
        raise BackboneError("empty MODEL name: give a backbone name (see 'brainalign backbones') or a path")
    if "{subject" in text:
        raise ConfigError(f"MODEL {text!r} contains a {{subject}} placeholder: it needs subjects "
                          "(use resolve_model_group or pass --subjects)")
    if "@" in text and not os.path.exists(text) and looks_like_path(text.split("@", 1)[1]):
        name, wpath = text.split("@", 1)  # NAME@WEIGHTS (open_clip:NAME@TAG goes to the registry)
        model = _backbone_with_weights(name, wpath, device)
        spec, config, path, origin, lab = spec_of(model), {}, Path(wpath), "backbone", label or Path(wpath).stem
    elif text.startswith(HUB_PREFIX) or (looks_like_path(text) and not _is_dynamic(text)):
        path = text if text.startswith(HUB_PREFIX) else find_aligned_file(text)
        model, config = _load_aligned(path, device)
        spec = spec_of(model)
        hub_name = text[len(HUB_PREFIX):].split("@")[0].rsplit("/", 1)[-1] if text.startswith(HUB_PREFIX) else None
        origin, lab = "aligned", label or hub_name or _label_for_path(path)
        if layers is None and config.get("layers") and spec is None:
            layers = list(config["layers"])
    else:
        if not pretrained and weights is None:
            from ..seeding import seed_everything

            seed_everything(seed)
        model = load_backbone(text, pretrained=pretrained, weights=weights, device=device)
        spec, config, path, origin, lab = spec_of(model), {}, None, "backbone", label or text
    names = resolve_layers(model, list(layers) if layers is not None else None)
    return ModelSource(label=lab, model=model, spec=spec, layers=names, layer_labels=_layer_labels(spec, names),
                       origin=origin, path=path, config=config)


def unique_labels(sources: list[ModelSource]) -> None:
    """Make labels unique in place ('cornet', 'cornet (2)'), so tables and legends stay unambiguous."""
    seen: dict[str, int] = {}
    for s in sources:
        k = seen.get(s.label, 0)
        seen[s.label] = k + 1
        if k:
            s.label = f"{s.label} ({k + 1})"


def resolve_model_group(text: str, subjects: Sequence, **kw) -> dict:
    """``{subject}``-templated MODEL -> {subject: ModelSource}, one personalised model each."""
    out = {}
    for s in subjects:
        try:
            filled = text.format(subject=s)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"cannot fill MODEL template {text!r} with subject {s!r} ({exc}); use "
                              "{subject} or e.g. {subject:02d}") from exc
        src = resolve_model(filled, **kw)
        out[s] = src
    return out


def group_label(text: str) -> str:
    """A display label for a ``{subject}`` template: the path with the placeholder as 'XX'."""
    p = Path(re.sub(r"\{subject[^}]*\}", "XX", text))
    return _label_for_path(p) if p.suffix else p.name


def _is_dynamic(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z_]+:(?![\\/])", text)) and not os.path.exists(text)


def _backbone_with_weights(name: str, wpath: str, device) -> nn.Module:
    """``NAME@PATH``: build NAME without pretrained weights, then load the state dict at PATH."""
    from ..alignment.api import resize_linears_to
    from ..device import resolve_device
    from ..models.registry import load_backbone
    from ..models.weights import load_state_dict_file

    p = Path(wpath).expanduser()
    if not p.is_file():
        raise CheckpointError(f"weights file not found in MODEL {name}@{wpath}: check the path")
    model = load_backbone(name, pretrained=False, device="cpu")
    sd = load_state_dict_file(p)
    resize_linears_to(model, sd)
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise CheckpointError(f"{p} does not hold {name} weights ({str(exc).splitlines()[0]}); give the "
                              "matching backbone name before the @") from exc
    return model.to(resolve_device(device)).eval()


def _load_aligned(path: Path, device) -> tuple[nn.Module, dict]:
    """load_aligned with a uniform error for files that are not aligned models."""
    from ..alignment import load_aligned

    try:
        loaded = load_aligned(path)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot use {path} as a MODEL: {exc} (expected an aligned-model file written by "
                              "'brainalign align' / AlignedModel.save, or a backbone name)") from exc
    except Exception as exc:  # not a checkpoint at all (text, image, foreign pickle ...)
        raise CheckpointError(f"{path} is not a brainalign aligned-model file ({type(exc).__name__}: {exc}); "
                              "give a file written by 'brainalign align' / AlignedModel.save, or a backbone "
                              "name") from exc
    from ..device import resolve_device

    model = loaded.backbone.to(resolve_device(device)).eval()  # the aligned backbone, as any model
    return model, dict(loaded.config)


@dataclass
class ModelEntry:
    """One compared model: a single model for all subjects, or one personalised model each."""

    label: str
    shared: ModelSource | None = None
    personal: dict | None = None  # subject -> ModelSource

    def for_subject(self, subject) -> ModelSource:
        if self.shared is not None:
            return self.shared
        for key in (subject, str(subject)):
            if key in self.personal:
                return self.personal[key]
        raise ConfigError(f"model {self.label!r} has no personalised model for subject {subject!r} "
                          f"(it has {', '.join(map(str, self.personal))}); align that subject or drop it "
                          "from --subjects")

    @property
    def sources(self) -> list[ModelSource]:
        return [self.shared] if self.shared is not None else list(self.personal.values())

    @property
    def layer_labels(self) -> list[str]:
        labels = [s.layer_labels for s in self.sources]
        if any(lab != labels[0] for lab in labels):
            raise ConfigError(f"the personalised models of {self.label!r} read different layers "
                              f"({labels}); give the same --layers for all")
        return labels[0]

    def describe(self) -> dict:
        if self.shared is not None:
            return self.shared.describe() | {"label": self.label}
        return {"label": self.label, "personalised": {str(s): m.describe() for s, m in self.personal.items()}}


def resolve_entries(texts: Sequence[str], subjects: Sequence | None = None, **kw) -> list[ModelEntry]:
    """MODEL strings -> ModelEntry list (``{subject}`` templates become personalised sets).

    Labels are made unique (a suffix is added to repeated names).
    """
    entries, seen = [], {}
    for text in texts:
        if "{subject" in text:
            if not subjects:
                raise ConfigError(f"MODEL {text!r} has a {{subject}} placeholder but no subjects were given")
            e = ModelEntry(group_label(text), personal=resolve_model_group(text, subjects, **kw))
        else:
            src = resolve_model(text, **kw)
            e = ModelEntry(src.label, shared=src)
        k = seen.get(e.label, 0)
        seen[e.label] = k + 1
        if k:
            e.label = f"{e.label} ({k + 1})"
            if e.shared is not None:
                e.shared.label = e.label
        entries.append(e)
    return entries
