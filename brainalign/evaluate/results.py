"""Result containers shared by the analyses, the figures and the report writers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rsa.stats import mean_sem


@dataclass
class EEGResult:
    """Time-resolved RSA of model layers against EEG decoding RDMs.

    Attributes:
        times_ms: (n_times,) time of each EEG RDM in milliseconds.
        subjects: subject ids, in the order of the subject axis.
        models: model labels, in the order given (the first is the reference).
        layers: model -> layer labels (display names), in the order of the layer axis.
        values: model -> float (n_layers, n_subjects, n_times) Spearman rho.
        significance: list of dicts, one per tested difference ``model - reference`` with
            keys model, reference, layer, mask ((n_times,) bool), clusters (list of dicts
            start_ms, stop_ms, mass, p), n_permutations.
        noise_ceiling: {'lower': (n_times,), 'upper': (n_times,)} or None (needs >= 2 subjects).
    """

    times_ms: np.ndarray
    subjects: list
    models: list[str]
    layers: dict[str, list[str]]
    values: dict[str, np.ndarray]
    significance: list[dict] = field(default_factory=list)
    noise_ceiling: dict | None = None
    settings: dict = field(default_factory=dict)

    def best_layer(self, model: str) -> np.ndarray:
        """(n_subjects, n_times): per subject and time point, the max over layers."""
        return self.values[model].max(axis=0)

    def summary(self, window_ms: tuple[float, float] | None = None) -> list[dict]:
        """Per model and layer: peak mean rho, its time, and the mean over ``window_ms``."""
        t = self.times_ms
        win = np.ones_like(t, dtype=bool) if window_ms is None else (t >= window_ms[0]) & (t <= window_ms[1])
        if not win.any():
            win = np.ones_like(t, dtype=bool)
        rows = []
        for m in self.models:
            for li, layer in enumerate(self.layers[m]):
                mean = self.values[m][li].mean(axis=0)
                k = int(np.argmax(mean))
                per_subject = self.values[m][li][:, win].mean(axis=1)
                rows.append({"model": m, "layer": layer, "peak": float(mean[k]), "peak_ms": float(t[k]),
                             "window_mean": float(per_subject.mean()),
                             "window_sem": float(mean_sem(per_subject)[1])})
        return rows


@dataclass
class FMRIResult:
    """RSA of model layers against fMRI ROI RDMs.

    Attributes:
        rois: ROI names (early to late).
        subjects: subject ids.
        models: model labels.
        layers: model -> layer labels.
        values: model -> float (n_layers, n_subjects, n_rois) Spearman rho per layer.
        noise_ceiling: roi -> (lower, upper) or None where undefined (one subject).
    """

    rois: list[str]
    subjects: list
    models: list[str]
    layers: dict[str, list[str]]
    values: dict[str, np.ndarray]
    noise_ceiling: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def best(self, model: str) -> np.ndarray:
        """(n_subjects, n_rois): the max over layers (the paper's Figure 2B score)."""
        return self.values[model].max(axis=0)

    def best_layer_names(self, model: str) -> list[list[str]]:
        """[subject][roi] label of the layer that reached the max."""
        idx = self.values[model].argmax(axis=0)
        return [[self.layers[model][int(i)] for i in row] for row in idx]


def tidy_rows_eeg(res: EEGResult) -> list[dict]:
    """One row per model, layer, subject and time point (the results.csv columns)."""
    rows = []
    for m in res.models:
        for li, layer in enumerate(res.layers[m]):
            for si, s in enumerate(res.subjects):
                for ti, t in enumerate(res.times_ms):
                    rows.append({"analysis": "eeg", "model": m, "layer": layer, "subject": s,
                                 "time_ms": float(t), "roi": "", "measure": "spearman",
                                 "value": float(res.values[m][li, si, ti])})
    return rows


def tidy_rows_fmri(res: FMRIResult, analysis: str = "fmri") -> list[dict]:
    """One row per model, layer, subject and ROI (or RDM label, with ``analysis='rdms'``)."""
    rows = []
    for m in res.models:
        for li, layer in enumerate(res.layers[m]):
            for si, s in enumerate(res.subjects):
                for ri, roi in enumerate(res.rois):
                    rows.append({"analysis": analysis, "model": m, "layer": layer, "subject": s,
                                 "time_ms": "", "roi": roi, "measure": "spearman",
                                 "value": float(res.values[m][li, si, ri])})
    return rows
