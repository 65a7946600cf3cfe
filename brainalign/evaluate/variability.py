"""Individual variability between (personalised) models: per layer, 1 - Spearman of their RDMs.

As in the paper, personalised aligned models (one per subject) are compared on the same
test images: for each layer, every model's RDM (1 - Pearson) is correlated (Spearman)
with every other model's RDM of the same layer; variability = 1 - rho.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.image_cache import accepts_image_cache
from ..errors import ConfigError, DataError, LayerError
from ..validation import check_int, check_seed
from .model_sources import ModelSource, resolve_model, unique_labels
from .models_rdm import model_rdms
from ..io import prepare_output_dir, removes_new_folders_on_failure


@dataclass
class VariabilityOutcome:
    out: Path | None
    labels: list[str]
    layers: list[str]
    matrices: dict[str, np.ndarray]  # layer -> (n_models, n_models)
    paths: dict = field(default_factory=dict)
    table: str = ""


def variability_matrix(rdm_vectors: np.ndarray) -> np.ndarray:
    """(n_models, n_pairs) RDMs of one layer -> (n_models, n_models) 1 - Spearman (zero diagonal)."""
    from ..rsa import compare

    m = 1.0 - compare(rdm_vectors, rdm_vectors, "spearman")
    np.fill_diagonal(m, 0.0)
    return (m + m.T) / 2  # remove float asymmetry


def common_layers(srcs: Sequence[ModelSource]) -> list[str]:
    """Layer labels every model has, in the first model's order; LayerError if none."""
    shared = [lab for lab in srcs[0].layer_labels if all(lab in s.layer_labels for s in srcs[1:])]
    if not shared:
        raise LayerError("the models share no layer (by label): variability compares the same layer across "
                         "models, e.g. personalised models of one backbone; pass --layers")
    return shared


MIN_IMAGES = 3  # 3 images give 3 image pairs: the fewest between which RDMs can be correlated


def check_n_images(n_images: int) -> None:
    """DataError when ``n_images`` RDMs could not be correlated (fewer than 3 images)."""
    if n_images < MIN_IMAGES:
        raise DataError(f"variability needs at least {MIN_IMAGES} images ({MIN_IMAGES} image pairs) to correlate "
                        f"two models' RDMs, got {n_images}: use more images (the paper used 200)")


def compute_variability(srcs: Sequence[ModelSource], images, *, layers: Sequence[str] | None = None,
                        batch_size: int = 32, device=None, progress: bool = True) -> dict[str, np.ndarray]:
    """{layer label: (n_models, n_models)} on ``images`` (ImageSet / tensor, >= 3 images)."""
    check_n_images(len(images))
    if len(srcs) < 2:
        raise ConfigError("variability needs at least two models (e.g. personalised models of several subjects)")
    labels = list(layers) if layers else common_layers(srcs)
    stacks = {lab: [] for lab in labels}
    for s in srcs:
        missing = [lab for lab in labels if lab not in s.layer_labels]
        if missing:
            raise LayerError(f"model {s.label!r} has no layer {missing}; its layers: {', '.join(s.layer_labels)}")
        sub = ModelSource(s.label, s.model, s.spec, [s.layers[s.layer_labels.index(lab)] for lab in labels],
                          labels, s.origin, s.path, s.config)
        vecs = model_rdms(sub, images, batch_size=batch_size, device=device, progress=progress)
        for lab, v in zip(labels, vecs):
            stacks[lab].append(v)
    return {lab: variability_matrix(np.stack(v)) for lab, v in stacks.items()}


@accepts_image_cache  # image_cache=None|folder|False for every image file read
@removes_new_folders_on_failure("out")  # a failed run leaves no empty folder
def run_variability(models: Sequence[str], *, images: str | None = "synthetic", layers=None, out=None,
                    overwrite: bool = False, pretrained: bool = True, device=None, batch_size: int = 32,
                    max_images: int | None = None, seed: int = 0, progress: bool = True, log=print,
                    argv=None) -> VariabilityOutcome:
    from .image_sources import load_image_source
    from ..io import provenance
    from ..progress import Stages
    from .report import write_variability_report

    if len(models) < 2:
        raise ConfigError("variability needs at least two MODELs (e.g. the personalised models of two subjects)")
    check_seed(seed)
    check_int("batch_size", batch_size, minimum=1)
    out_dir = prepare_output_dir(out, overwrite=overwrite, command="variability")
    t0 = time.time()
    stages = Stages(log_fn=log)
    with stages("load"):
        data = load_image_source(images, max_images=max_images, seed=seed)
        check_n_images(len(data.images))
        log(f"Images: {len(data.images)} from {data.source}")
    with stages("models"):
        srcs = [resolve_model(m, pretrained=pretrained, device=device, layers=layers, seed=seed) for m in models]
        unique_labels(srcs)
    from ..analyses import AnalysisContext
    from ..analyses.context import model_rdm_sets
    from ..analyses.variability import Variability
    from .model_sources import ModelEntry

    stimuli = {1: {data.images.fingerprint(): data.images}}
    with stages("RDMs"):
        sets = model_rdm_sets([ModelEntry(s.label, shared=s) for s in srcs], stimuli, batch_size=batch_size,
                              device=device, progress=progress)
    with stages("variability"):
        result = Variability().run(AnalysisContext(data={1: data.images}, models=sets, out=out_dir,
                                                   progress=progress, log=log, seed=seed))
    mats, labels, fig = result.value, [s.label for s in srcs], result.figures["variability"]
    meta = {"images": data.source, "n_images": len(data.images), "synthetic": data.synthetic,
            "model_args": list(models), "models": [s.describe() for s in srcs], "pretrained": pretrained,
            "stages": stages.times, "provenance": provenance(argv)}
    with stages("report"):
        paths = write_variability_report(out_dir, mats, labels, meta, fig)
    log(f"Done in {time.time() - t0:.0f} s ({stages.summary()}).")
    return VariabilityOutcome(out=out_dir, labels=labels, layers=list(mats), matrices=mats, paths=paths,
                              table=variability_table(mats))


def variability_table(mats: dict[str, np.ndarray]) -> str:
    from .report import _table

    rows = []
    for lab, m in mats.items():
        off = m[~np.eye(len(m), dtype=bool)]
        rows.append([lab, f"{off.mean():.3f}", f"{off.min():.3f}", f"{off.max():.3f}"])
    return _table(["layer", "mean 1-ρ", "min", "max"], rows)
