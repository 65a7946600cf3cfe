"""What a backbone plugin returns: :class:`BackboneSpec` and its :class:`Preprocessing`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Resize to ``size`` x ``size`` and normalise with ``mean``/``std`` (per RGB channel)."""

    size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) float in [0, 1] -> (n, 3, size, size) normalised."""
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear",
                                   align_corners=False, antialias=True)
        mean = torch.as_tensor(self.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        std = torch.as_tensor(self.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std

    def to_dict(self) -> dict:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        return cls(size=int(d["size"]), mean=tuple(d["mean"]), std=tuple(d["std"]))


Factory = Callable[..., nn.Module]  # factory(pretrained: bool, weights: Path | None) -> nn.Module


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone as a plugin describes it.

    Attributes:
        name: canonical name, e.g. 'cornet'.
        factory: ``factory(pretrained: bool, weights: Path | None) -> nn.Module``.
        layers: default brain-mapped layers, ordered early to late (module names).
        layer_labels: display labels for ``layers`` (e.g. V1, V2, V4, IT); defaults to the names.
        preprocessing: image size and normalisation the model expects.
        output: 'logits' (a classifier) or 'embedding' (e.g. CLIP's image tower).
        aliases: other names that resolve to this spec.
        description: one line for ``brainalign backbones``.
        plugin: name of the plugin that provided it (filled in by the registry).
    """

    name: str
    factory: Factory
    layers: tuple[str, ...]
    preprocessing: Preprocessing = Preprocessing()
    output: Literal["logits", "embedding"] = "logits"
    aliases: tuple[str, ...] = ()
    layer_labels: tuple[str, ...] | None = None
    description: str = ""
    plugin: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def labels(self) -> tuple[str, ...]:
        return tuple(self.layer_labels) if self.layer_labels else tuple(self.layers)

    def build(self, pretrained: bool = False, weights: str | Path | None = None) -> nn.Module:
        return self.factory(pretrained=pretrained, weights=Path(weights) if weights is not None else None)
