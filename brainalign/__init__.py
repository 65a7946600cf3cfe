"""brainalign: make any vision model more human-brain-like by aligning it with neural data.

Public API (imported lazily so ``import brainalign`` stays fast)::

    brainalign.load_backbone(name, pretrained=..., weights=...)   # registry of backbones
    brainalign.available_backbones()
    brainalign.LayerTap(model, layers)                            # forward hooks
    brainalign.extract_features(model, images, layers)            # batched extraction
    brainalign.align(model, layers=[...], eeg=dataset)            # ReAlnet-style alignment
    brainalign.load_aligned(path)                                 # an AlignedModel (file, folder, hf-hub:owner/name)
    brainalign.rsa                                                # RDMs, decoding, stats
    brainalign.hookimpl                                           # for plugins
"""
from __future__ import annotations

import importlib

from .errors import BrainAlignError
from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "load_backbone": "brainalign.models.registry",
    "available_backbones": "brainalign.models.registry",
    "get_backbone_spec": "brainalign.models.registry",
    "BackboneSpec": "brainalign.models.spec",
    "Preprocessing": "brainalign.models.spec",
    "LayerTap": "brainalign.taps",
    "extract_features": "brainalign.features",
    "align": "brainalign.alignment",
    "load_aligned": "brainalign.alignment",
    "AlignedModel": "brainalign.alignment",
    "save_aligned": "brainalign.alignment",
    "NeuralDataset": "brainalign.data.dataset",
    "ImageSet": "brainalign.data.images",
    "use_image_cache": "brainalign.data.image_cache",
}
_DEPRECATED = {"AlignResult": "brainalign.alignment"}  # alias of AlignedModel: warns on every use
_SUBMODULES = {"rsa", "data", "models", "alignment", "evaluate", "cli"}

__all__ = ["BrainAlignError", "hookimpl", "__version__", *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _DEPRECATED:
        return getattr(importlib.import_module(_DEPRECATED[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"brainalign.{name}")
    raise AttributeError(f"module 'brainalign' has no attribute {name!r}")
