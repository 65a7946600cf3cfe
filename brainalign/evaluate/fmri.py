"""fMRI comparison: per subject and ROI, the max over layers of the RDM Spearman (Figure 2B).

ROI RDMs are 1 - Pearson across voxels of the repetition-averaged responses; the noise
ceiling per ROI (lower: leave-one-subject-out, upper: each subject vs the mean of all)
needs at least two subjects who saw the same images.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .eeg import _check_conditions
from .model_sources import ModelEntry
from .models_rdm import ModelRDMCache
from .results import FMRIResult


def roi_rdm(dataset) -> np.ndarray:
    """(n_pairs,) 1 - Pearson RDM of a ROI's responses (n_images, n_voxels)."""
    from ..rsa import rdm

    return rdm(dataset.responses.reshape(len(dataset), -1), "correlation").vectors[0]


def roi_datasets(dataset) -> dict:
    """{roi: NeuralDataset} of one subject's fMRI: a dataset with a 'roi' descriptor is split
    by ROI, one without counts as one ROI ('all'), an old {roi: dataset} dict passes through."""
    if isinstance(dataset, dict):
        return dict(dataset)
    if not dataset.rois:
        return {"all": dataset}
    return dict(dataset.iter_rois())


def compare_fmri(entries: list[ModelEntry], fmri: dict, *, batch_size: int = 32, device=None,
                 pooling: str = "flatten", progress: bool = True, log=print) -> FMRIResult:
    """RSA of every model's layers against every subject's ROI RDMs.

    Args:
        entries: models to compare.
        fmri: {subject: NeuralDataset (n_images, n_voxels) with a 'roi' channel descriptor}
            (old {subject: {roi: NeuralDataset}} dicts work too).
    Returns FMRIResult with values[model] (n_layers, n_subjects, n_rois).
    """
    from ..rsa import compare

    subjects = list(fmri)
    per_roi = {s: roi_datasets(fmri[s]) for s in subjects}
    rois = list(per_roi[subjects[0]])
    for s in subjects:
        if list(per_roi[s]) != rois:
            raise DataError(f"subject {s} has ROIs {list(per_roi[s])} but subject {subjects[0]} has {rois}: "
                            "load the same ROIs for every subject")
    neural = {s: {r: roi_rdm(per_roi[s][r]) for r in rois} for s in subjects}
    prints = {s: per_roi[s][rois[0]].images.fingerprint() for s in subjects}
    rdm_cache = ModelRDMCache(batch_size=batch_size, device=device, pooling=pooling)
    values, layers = {}, {}
    for e in entries:
        layers[e.label] = e.layer_labels
        v = np.zeros((len(e.layer_labels), len(subjects), len(rois)))
        for si, s in enumerate(subjects):
            src = e.for_subject(s)
            first = per_roi[s][rois[0]]
            for r in rois[1:]:
                if per_roi[s][r].images is not first.images and per_roi[s][r].images.fingerprint() != prints[s]:
                    raise DataError(f"subject {s}'s ROI {r} has a different image set than ROI {rois[0]}")
            mv = rdm_cache.get(src, first, prints[s], progress=progress)
            for ri, r in enumerate(rois):
                _check_conditions(mv, neural[s][r][None], e.label, s)
                v[:, si, ri] = compare(mv, neural[s][r][None])[:, 0]
        values[e.label] = v
    ceiling = {}
    same = len(set(prints.values())) == 1
    if len(subjects) >= 2 and same:
        from ..rsa import stats

        for r in rois:
            lo, hi = stats.noise_ceiling(np.stack([neural[s][r] for s in subjects]))
            ceiling[r] = (float(np.asarray(lo).reshape(-1)[0]), float(np.asarray(hi).reshape(-1)[0]))
    elif len(subjects) >= 2:
        log("  note: subjects saw different fMRI images, so no noise ceiling is computed")
    return FMRIResult(rois=rois, subjects=subjects, models=[e.label for e in entries], layers=layers,
                      values=values, noise_ceiling=ceiling,
                      settings={"roi_rdm": "1 - Pearson across voxels", "model_rdm": "1 - Pearson",
                                "score": "max over layers of Spearman", "pooling": pooling,
                                "n_images": int(len(per_roi[subjects[0]][rois[0]]))})
