"""Model inference by bootstrap (rsatoolbox-style): over subjects, or over subjects and stimuli.

Each bootstrap sample draws subjects (groups) with replacement, and with ``over='both'`` also
conditions with replacement (keeping the pairs of two different original conditions, as
rsatoolbox's ``bootstrap_sample`` does by leaving self-pairs out). Per sample, every model's
evaluation is the mean over the drawn subjects' RDMs of compare(model, subject), and the noise
ceiling is recomputed on the drawn RDMs (grouped by subject, as ``boot_noise_ceiling``).

    ev = rsa.inference.bootstrap_models(models, subjects, over="both", n_boot=1000, seed=0)
    ev.estimate, ev.ci()                       # (n_models,), ((n_models,), (n_models,))
    ev.test_models(0, 1)                       # paired: diff, low, high, p
    ev.test_ceiling(0)                         # model vs the lower noise-ceiling bound
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ._util import numpy_rng
from .compare import check_method, correlate_rows
from .rdms import as_vectors, triu_indices
from .stats import _ceiling, _group_codes

__all__ = ["bootstrap_models", "ModelEvaluation", "PairedTest", "BOOTSTRAP_OVER"]

BOOTSTRAP_OVER = ("subjects", "both")


@dataclass
class PairedTest:
    """diff: observed difference; low/high: percentile CI of the bootstrap differences;
    p: two-sided bootstrap p: twice the smaller tail (differences <= 0 or >= 0), counted as
    (count + 1) / (n_boot + 1), at most 1."""
    diff: float
    low: float
    high: float
    p: float


@dataclass
class ModelEvaluation:
    """estimate (n_models,): mean similarity to the subjects; distribution (n_boot, n_models);
    ceiling (2,) lower/upper on all data, ceiling_distribution (n_boot, 2); ci_level."""
    estimate: np.ndarray
    distribution: np.ndarray
    ceiling: np.ndarray
    ceiling_distribution: np.ndarray
    ci_level: float

    def ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Percentile confidence interval (low, high), each (n_models,)."""
        q = [50 * (1 - self.ci_level), 50 * (1 + self.ci_level)]
        lo, hi = np.nanpercentile(self.distribution, q, axis=0)
        return lo, hi

    def _paired(self, diff: float, boot: np.ndarray) -> PairedTest:
        boot = boot[np.isfinite(boot)]
        q = [50 * (1 - self.ci_level), 50 * (1 + self.ci_level)]
        lo, hi = np.percentile(boot, q)
        k = len(boot)  # (count + 1) / (k + 1): never p = 0 from a finite number of samples
        p = min(1.0, 2.0 * (min(np.sum(boot <= 0), np.sum(boot >= 0)) + 1) / (k + 1))
        return PairedTest(float(diff), float(lo), float(hi), float(p))

    def test_models(self, i: int, j: int) -> PairedTest:
        """Model i minus model j, paired within each bootstrap sample."""
        return self._paired(self.estimate[i] - self.estimate[j],
                            self.distribution[:, i] - self.distribution[:, j])

    def test_ceiling(self, i: int) -> PairedTest:
        """Model i minus the lower noise-ceiling bound (negative diff, small p: the model falls
        short of what the data can support)."""
        return self._paired(self.estimate[i] - self.ceiling[0],
                            self.distribution[:, i] - self.ceiling_distribution[:, 0])


def _evaluate(models: np.ndarray, subjects: np.ndarray, method: str, codes: np.ndarray):
    """models (M, P), subjects (S, P) -> per-model mean similarity (M,), ceiling (2,)."""
    sims = correlate_rows(models[:, None], subjects[None], method)        # (M, S)
    lower, upper = _ceiling(subjects[:, None], method, codes)
    return np.nanmean(sims, axis=1), np.array([lower[0], upper[0]])


def bootstrap_models(model_rdms: Any, subject_rdms: Any, method: str = "spearman", *,
                     over: str = "subjects", groups: Any = None, n_boot: int = 1000,
                     ci: float = 0.95, seed: int = 0) -> ModelEvaluation:
    """Bootstrap the evaluation of model RDMs against subjects' RDMs.

    model_rdms: (n_models, n_pairs) / (n_models, n, n) / RDMs; subject_rdms: (n_subjects, ...)
        the same way, over the same conditions (one RDM per subject, or per session with groups).
    over: 'subjects' (resample subjects) or 'both' (subjects and conditions).
    groups: one label per subject RDM (e.g. the subject of each session): drawn together.
    Returns a :class:`ModelEvaluation` (estimate, CI, model-vs-model and model-vs-ceiling tests).
    """
    method = check_method(method)
    if over not in BOOTSTRAP_OVER:
        raise ConfigError(f"over must be one of {BOOTSTRAP_OVER}, got {over!r}")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1), got {ci}")
    if int(n_boot) < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    vm, n = as_vectors(model_rdms, "model RDM")
    vs, ns = as_vectors(subject_rdms, "subject RDM")
    if n != ns:
        raise DataError(f"model RDMs have {n} conditions, subject RDMs {ns}: use the same images")
    if not (np.isfinite(vm).all() and np.isfinite(vs).all()):
        raise DataError("RDMs contain NaN/inf: bootstrap_models needs finite RDMs")
    codes = _group_codes(groups, vs.shape[0])
    n_groups = codes.max() + 1
    members = [np.flatnonzero(codes == g) for g in range(n_groups)]
    estimate, ceiling = _evaluate(vm, vs, method, codes)
    rng = numpy_rng(seed)
    iu = triu_indices(n)
    pos = np.full((n, n), -1)
    pos[iu] = np.arange(len(iu[0]))
    pos[iu[1], iu[0]] = pos[iu]                               # pair index of (i, j) either order
    dist = np.full((int(n_boot), vm.shape[0]), np.nan)
    ceil = np.full((int(n_boot), 2), np.nan)
    for b in range(int(n_boot)):
        drawn = rng.integers(0, n_groups, size=n_groups)
        rows = np.concatenate([members[g] for g in drawn])
        # a subject drawn twice stays one group: left out together from the ceiling's pool
        new_codes = np.unique(np.repeat(drawn, [len(members[g]) for g in drawn]), return_inverse=True)[1]
        ms, ss = vm, vs[rows]
        if over == "both":
            idx = np.sort(rng.integers(0, n, size=n))
            i, j = idx[iu[0]], idx[iu[1]]
            pairs = pos[i[i != j], j[i != j]]                 # self-pairs of a drawn-twice condition left out
            ms, ss = vm[:, pairs], ss[:, pairs]
        if n_groups > 1 and len(np.unique(drawn)) < 2:
            continue  # one subject drawn n times: no ceiling and no spread; left out (NaN)
        with np.errstate(invalid="ignore"):
            dist[b], ceil[b] = _evaluate(ms, ss, method, new_codes)
    return ModelEvaluation(estimate=estimate, distribution=dist, ceiling=ceiling,
                           ceiling_distribution=ceil, ci_level=ci)
