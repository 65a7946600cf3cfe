"""What an analysis runs on: the data, the models' RDMs and the run settings.

Models enter analyses as :class:`ModelRDMSet` objects (layer RDMs on the images the
analyses asked for), never as loaded networks: :func:`model_rdm_sets` loads one model at a
time, streams its features into RDMs and frees it before the next, so a comparison of
several large backbones holds one network and the small RDMs (n_layers, n_pairs) only.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..progress import Stages


@dataclass
class ModelRDMSet:
    """One compared model's layer RDMs.

    Attributes:
        label: display name (unique among the compared models).
        layer_labels: layer names, in the order of the RDM rows.
        description: what the model is (for results.json).
        rdms: {(subject, image fingerprint): float64 (n_layers, n_pairs)}; a model shared by
            all subjects stores one array per image set, referenced by every subject.
    """

    label: str
    layer_labels: list[str]
    description: dict = field(default_factory=dict)
    rdms: dict = field(default_factory=dict)

    def for_subject(self, subject, fingerprint: str) -> np.ndarray:
        """(n_layers, n_pairs) RDMs of this model (subject's own, if personalised) on those images."""
        for key in ((subject, fingerprint), (str(subject), fingerprint)):
            if key in self.rdms:
                return self.rdms[key]
        raise ConfigError(f"model {self.label!r} has no RDMs for subject {subject!r} on image set {fingerprint}: "
                          "declare the images in the analysis' stimuli(data)")


@dataclass
class AnalysisContext:
    """Everything :meth:`brainalign.analyses.Analysis.run` may use.

    Attributes:
        data: {subject: dataset} of the source this analysis runs on (NeuralDataset, NeuralRDMs ...).
        models: ModelRDMSet per compared model (the first is the reference of tests).
        out: output folder for figures.
        source: the source string the data came from ('things-eeg2:/data', ...).
        role: which option gave the data ('eeg', 'fmri', 'rdms').
        cache_dir, n_permutations, seed, progress, log: run settings.
        stages: per-stage wall times (``with context.stages("statistics"): ...``).
        options: analysis-specific settings.
    """

    data: dict
    models: list[ModelRDMSet]
    out: Path
    source: str | None = None
    role: str = ""
    cache_dir: Any = None
    n_permutations: int = 1000
    seed: int = 0
    progress: bool = True
    log: Callable = print
    stages: Stages = field(default_factory=lambda: Stages(log_fn=None))
    options: dict = field(default_factory=dict)


def merge_stimuli(requests: Sequence[dict]) -> dict:
    """{subject: {fingerprint: images}} of several analyses' stimuli(), without repeats."""
    out: dict = {}
    for req in requests:
        for s, by_print in req.items():
            out.setdefault(s, {}).update(by_print)
    return out


def entry_rdm_set(entry, stimuli: dict, *, batch_size: int = 32, device=None, pooling: str = "flatten",
                  progress: bool = True) -> ModelRDMSet:
    """A loaded ModelEntry's RDMs on ``stimuli`` ({subject: {fingerprint: images}})."""
    from ..evaluate.models_rdm import ModelRDMCache

    cache = ModelRDMCache(batch_size=batch_size, device=device, pooling=pooling)
    rdms = {}
    for s, by_print in stimuli.items():
        src = entry.for_subject(s)
        for fp, images in by_print.items():
            rdms[(s, fp)] = cache.get(src, images, fp, progress=progress)
    return ModelRDMSet(entry.label, list(entry.layer_labels), entry.describe(), rdms)


def model_rdm_sets(models: Sequence, stimuli: dict, *, load: Callable | None = None, check: Callable | None = None,
                   batch_size: int = 32, device=None, pooling: str = "flatten", progress: bool = True,
                   stages: Stages | None = None, log: Callable = print) -> list[ModelRDMSet]:
    """Every model's RDMs on ``stimuli``, loading one model at a time.

    Args:
        models: ModelEntry objects (already loaded) or MODEL strings, loaded by
            ``load(text) -> ModelEntry`` only when their turn comes and freed after.
        stimuli: {subject: {fingerprint: images}} (see :func:`merge_stimuli`).
        check: ``check(entry)`` called on each loaded entry before its features (e.g. refusing
            a model aligned to another subject).
        stages: times 'load' (models) and 'features' (extraction + RDMs).
    """
    stages = stages or Stages(log_fn=None)
    out, seen = [], {}
    for item in models:
        if isinstance(item, ModelRDMSet):
            out.append(item)
            continue
        if isinstance(item, str):
            if load is None:
                raise ConfigError("model strings need load= (a function MODEL string -> ModelEntry)")
            log(f"Loading model {item} ...")
            with stages("load"):
                entry = load(item)
        else:
            entry = item
        k = seen.get(entry.label, 0)
        seen[entry.label] = k + 1
        if k:  # repeated names: 'cornet', 'cornet (2)'
            entry.label = f"{entry.label} ({k + 1})"
            if entry.shared is not None:
                entry.shared.label = entry.label
        if check is not None:
            check(entry)
        with stages("features"):
            out.append(entry_rdm_set(entry, stimuli, batch_size=batch_size, device=device, pooling=pooling,
                                     progress=progress))
        if isinstance(item, str):  # ours to free: the next model loads into the memory this one held
            del entry
            release_memory()
    return out


def release_memory() -> None:
    """Free what a dropped model held: collect cycles, hand glibc's free heap pages back to the
    system (``malloc_trim``; freed small blocks otherwise stay in the process' RSS) and empty
    the CUDA cache."""
    import torch

    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _find_malloc_trim():
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        return None


_malloc_trim = _find_malloc_trim()
