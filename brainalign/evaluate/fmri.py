"""fMRI comparison: per subject and ROI, the max over layers of the RDM Spearman (Figure 2B).

ROI RDMs are 1 - Pearson across voxels of the repetition-averaged responses; the noise
ceiling per ROI (lower: leave-one-subject-out, upper: each subject vs the mean of all)
needs at least two subjects who saw the same images.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..rsa.rdms import n_conditions_from_pairs
from .eeg import _check_conditions
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


def compare_fmri(models: list, fmri: dict, *, batch_size: int = 32, device=None,
                 pooling: str = "flatten", progress: bool = True, log=print, stages=None) -> FMRIResult:
    """RSA of every model's layers against every subject's ROI RDMs.

    Args:
        models: ModelRDMSet objects (see :mod:`brainalign.analyses`) or loaded ModelEntry objects.
        fmri: {subject: NeuralDataset (n_images, n_voxels) with a 'roi' channel descriptor}
            (old {subject: {roi: NeuralDataset}} dicts work too).
    Returns FMRIResult with values[model] (n_layers, n_subjects, n_rois).
    """
    per_roi = fmri_roi_datasets(fmri)
    neural = {s: {r: roi_rdm(d) for r, d in rois.items()} for s, rois in per_roi.items()}
    stimuli = {s: {rois[next(iter(rois))].images.fingerprint(): rois[next(iter(rois))]}
               for s, rois in per_roi.items()}
    res = rsa_per_label(models, neural, stimuli, batch_size=batch_size, device=device, pooling=pooling,
                        progress=progress, log=log, stages=stages, what="ROI")
    res.settings.update({"roi_rdm": "1 - Pearson across voxels"})
    return res


def fmri_roi_datasets(fmri: dict) -> dict:
    """{subject: {roi: NeuralDataset}}; DataError when subjects differ in ROIs or a subject's ROIs in images."""
    subjects = list(fmri)
    per_roi = {s: roi_datasets(fmri[s]) for s in subjects}
    rois = list(per_roi[subjects[0]])
    for s in subjects:
        if list(per_roi[s]) != rois:
            raise DataError(f"subject {s} has ROIs {list(per_roi[s])} but subject {subjects[0]} has {rois}: "
                            "load the same ROIs for every subject")
        first = per_roi[s][rois[0]]
        for r in rois[1:]:
            if per_roi[s][r].images is not first.images and \
                    per_roi[s][r].images.fingerprint() != first.images.fingerprint():
                raise DataError(f"subject {s}'s ROI {r} has a different image set than ROI {rois[0]}")
    return per_roi


def rsa_per_label(models: list, neural: dict, stimuli: dict, *, batch_size: int = 32, device=None,
                  pooling: str = "flatten", progress: bool = True, log=print, stages=None,
                  what: str = "ROI") -> FMRIResult:
    """Spearman of each model layer's RDM with each subject's labelled neural RDMs.

    Shared by fMRI ROI RSA and precomputed-RDM RSA.

    Args:
        neural: {subject: {label: (n_pairs,) RDM}} (labels: ROIs, or RDM names), same labels for all.
        stimuli: {subject: {fingerprint: images}}, one image set per subject.
    Returns FMRIResult with rois = the labels and values[model] (n_layers, n_subjects, n_labels);
    noise ceiling per label when >= 2 subjects saw the same images.
    """
    from ..progress import Stages
    from ..rsa import compare
    from .eeg import as_model_rdm_sets

    stages = stages or Stages(log_fn=None)
    subjects = list(neural)
    labels = list(neural[subjects[0]])
    for s in subjects:
        if list(neural[s]) != labels:
            raise DataError(f"subject {s} has {what}s {list(neural[s])} but subject {subjects[0]} has {labels}: "
                            f"give the same {what}s for every subject")
    prints = {s: next(iter(stimuli[s])) for s in subjects}
    models = as_model_rdm_sets(models, stimuli, batch_size=batch_size, device=device, pooling=pooling,
                               progress=progress, stages=stages)
    values, layers = {}, {}
    with stages("RSA"):
        for m in models:
            layers[m.label] = m.layer_labels
            v = np.zeros((len(m.layer_labels), len(subjects), len(labels)))
            for si, s in enumerate(subjects):
                mv = m.for_subject(s, prints[s])
                for ri, r in enumerate(labels):
                    _check_conditions(mv, neural[s][r][None], m.label, s)
                    v[:, si, ri] = compare(mv, neural[s][r][None])[:, 0]
            values[m.label] = v
    ceiling = {}
    with stages("statistics"):
        if len(subjects) >= 2 and len(set(prints.values())) == 1:
            from ..rsa import stats

            for r in labels:
                lo, hi = stats.noise_ceiling(np.stack([neural[s][r] for s in subjects]))
                ceiling[r] = (float(np.asarray(lo).reshape(-1)[0]), float(np.asarray(hi).reshape(-1)[0]))
        elif len(subjects) >= 2:
            log("  note: subjects saw different images, so no noise ceiling is computed")
    n_images = n_conditions_from_pairs(len(neural[subjects[0]][labels[0]]))
    return FMRIResult(rois=labels, subjects=subjects, models=[m.label for m in models], layers=layers,
                      values=values, noise_ceiling=ceiling,
                      settings={"model_rdm": "1 - Pearson", "score": "max over layers of Spearman",
                                "pooling": pooling, "n_images": int(n_images)})
