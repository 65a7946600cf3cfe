"""Measure every trained model: EEG time-resolved RSA, fMRI ROI RSA, individual variability and
FGSM robustness, reusing the ``compare`` / ``variability`` / ``robustness`` analyses.

fMRI follows the paper: each personalised (EEG-aligned) model is scored against every fMRI
subject and the scores are averaged over fMRI subjects (the fMRI subjects need not be the EEG
subjects), so a model's fMRI score is (n_rois,).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from ..eeg import compare_eeg
from ..fmri import compare_fmri
from ..model_sources import ModelEntry
from ..results import EEGResult, FMRIResult
from .settings import ReproduceSettings
from .training import TrainedModels


@dataclass
class Evaluation:
    """Everything the figures need.

    eeg: EEGResult, models = ['unaligned', *variants] (personalised), significance vs 'unaligned'.
    fmri: FMRIResult over fMRI subjects with one model per (variant, EEG subject), or None.
    fmri_scores: {label: (n_eeg_subjects, n_rois)} best-layer Spearman averaged over fMRI subjects
        ('unaligned': (1, n_rois)).
    variability: {label: {layer: (n_subjects, n_subjects)}} between the subjects' models.
    robustness: {label: [RobustnessCurve per subject]} ('unaligned': one curve).
    """

    settings: ReproduceSettings
    subjects: list
    eeg: EEGResult
    fmri: FMRIResult | None
    fmri_scores: dict = field(default_factory=dict)
    variability: dict = field(default_factory=dict)
    robustness: dict = field(default_factory=dict)
    label_note: str = ""
    attack_metric: str = "top1"

    def window(self) -> np.ndarray:
        """(n_times,) bool: the EEG time points inside settings.window_ms (all when none are)."""
        t = self.eeg.times_ms
        lo, hi = self.settings.window_ms
        win = (t >= lo) & (t <= hi)
        return win if win.any() else np.ones_like(t, dtype=bool)

    def eeg_window(self, label: str) -> np.ndarray:
        """(n_layers, n_subjects) EEG RSA averaged over the window."""
        return self.eeg.values[label][:, :, self.window()].mean(axis=2)

    def eeg_gain(self, label: str) -> np.ndarray:
        """(n_subjects,) EEG RSA gain over the unaligned model: window mean, mean over layers."""
        return (self.eeg_window(label) - self.eeg_window("unaligned")).mean(axis=0)

    def fmri_gain(self, label: str) -> np.ndarray:
        """(n_subjects, n_rois) fMRI gain of each subject's model over the unaligned model."""
        return self.fmri_scores[label] - self.fmri_scores["unaligned"]

    def accuracy(self, label: str, eps: float, *, baseline_aligned: bool = False) -> np.ndarray:
        """(n_models,) attack accuracy (``attack_metric``) at ``eps`` (minus eps 0 when baseline_aligned)."""
        out = []
        for c in self.robustness[label]:
            acc = c.baseline_aligned(self.attack_metric) if baseline_aligned else getattr(c, self.attack_metric)
            out.append(acc[c.eps.index(eps)])
        return np.asarray(out, dtype=float)

    def variability_by_layer(self, label: str) -> np.ndarray:
        """(n_subjects, n_layers): each subject's model's mean variability to the other subjects' models."""
        mats = self.variability[label]
        cols = []
        for m in mats.values():
            n = len(m)
            cols.append(m.sum(axis=1) / (n - 1))
        return np.stack(cols, axis=1)


def evaluate(s: ReproduceSettings, data, models: TrainedModels, *, device=None, cache_dir=None,
             progress: bool = True, log=print, stages=None) -> Evaluation:
    from ..variability import compute_variability

    stage = stages if stages is not None else (lambda name: contextlib.nullcontext())
    with stage("EEG RSA + cluster tests"):
        eeg = compare_eeg(models.entries(s.labels), data.eeg_test, cache_dir=cache_dir, device=device,
                          n_permutations=s.n_permutations, seed=s.seed, progress=progress, log=log)
    ev = Evaluation(settings=s, subjects=list(data.subjects), eeg=eeg, fmri=None)
    if data.fmri_test:
        with stage("fMRI RSA"):
            ev.fmri, ev.fmri_scores = fmri_scores(models, s.labels, data, device=device, progress=progress, log=log)
    with stage("variability"):
        for label in s.sweep_labels:
            srcs = [models.personal[label][k] for k in data.subjects]
            ev.variability[label] = compute_variability(srcs, data.test_images, device=device, progress=False)
    with stage("FGSM robustness"):
        ev.robustness, ev.label_note, ev.attack_metric = robustness(s, data, models, device=device,
                                                                    progress=progress, log=log)
    return ev


def fmri_scores(models: TrainedModels, labels, data, *, device=None, progress=True, log=print):
    """(FMRIResult, {label: (n_eeg_subjects, n_rois)}): every model against every fMRI subject."""
    entries = [ModelEntry("unaligned", shared=models.unaligned)]
    keys = {}
    for label in labels:
        for subj in data.subjects:
            src = models.personal[label][subj]
            entries.append(ModelEntry(src.label, shared=src))
            keys.setdefault(label, []).append(src.label)
    res = compare_fmri(entries, data.fmri_test, device=device, progress=False, log=log)
    scores = {"unaligned": res.best("unaligned").mean(axis=0, keepdims=True)}
    for label, names in keys.items():
        scores[label] = np.stack([res.best(n).mean(axis=0) for n in names])
    return res, scores


def robustness(s: ReproduceSettings, data, models: TrainedModels, *, device=None, progress=True, log=print):
    """FGSM curves of the unaligned model and every beta-sweep model on the attack images, through
    the registered ``robustness`` analysis.

    Labels: ground truth when the attack images have it in the model's classes (class folders;
    the synthetic brain's coarse classes), else the unaligned model's clean top-1 predictions
    (said in ``label_note``). Returns ({label: [RobustnessCurve]}, label note, metric).
    """
    from ...analyses import AnalysisContext, get_analysis
    from ...analyses.robustness import attack_targets
    from ..robustness_run import build_classifier

    def classifier(src):
        return build_classifier(src, device=device, progress=False, log=log)

    d = data
    targets = attack_targets(d.attack_images, classifier(models.unaligned), class_names=d.attack_class_names,
                             class_labels=d.attack_labels, n_label_classes=d.attack_n_classes,
                             source=d.attack_source, synthetic=d.synthetic, reference_name="the unaligned model",
                             device=device)
    metric = "top5" if targets.n_classes >= 50 else "top1"  # top-5 of a handful of classes is nearly always right
    log(f"  labels: {targets.note}; metric {metric}")
    order = [("unaligned", models.unaligned)] + [(label, models.personal[label][k]) for label in s.sweep_labels
                                                 for k in data.subjects]
    result = get_analysis("robustness").run(AnalysisContext(
        data={"images": targets}, models=[src for _, src in order], out=None, seed=s.seed, progress=False,
        log=lambda *a, **k: None, options={"classifier": classifier, "eps": s.eps, "device": device, "figure": False}))
    out: dict = {}
    for (label, _), curve in zip(order, result.value):
        out.setdefault(label, []).append(curve)
    return out, targets.note + clean_accuracy_note(out["unaligned"][0], targets), metric


def clean_accuracy_note(curve, targets) -> str:
    """'; the unaligned model's clean top-1 is 4.7 % (chance 12.5 %) ...' for ground-truth labels
    (model-predicted labels make it 100 % by construction), else ''."""
    if not targets.ground_truth or 0.0 not in curve.eps or not targets.n_classes:
        return ""
    acc, chance = curve.top1[curve.eps.index(0.0)], 1.0 / targets.n_classes
    note = f"; the unaligned model's clean top-1 is {100 * acc:.1f} % (chance {100 * chance:.1f} %)"
    if acc < 2 * chance:
        note += ", so these curves say little about robustness"
    return note
