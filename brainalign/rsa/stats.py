"""Statistics for RSA results; every random choice takes ``seed``.

Subjects are the random-effects unit: permutation tests flip the sign of whole subjects'
difference curves (never single time points), which keeps the temporal autocorrelation
of each subject intact under the null.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as _sps

from ..errors import ConfigError, DataError
from ._util import numpy_rng
from .compare import (
    _KENDALL,
    _kernel,
    _prepare,
    check_method,
    compare,
    correlate_rows,
    rank_rows,
)
from .rdms import RDMs, as_vectors, triu_indices

__all__ = ["mean_sem", "paired_ttest", "sign_flip_test", "cluster_permutation_test",
           "ClusterResult", "fdr", "bootstrap_ci", "BootstrapResult", "noise_ceiling", "pool_rdms",
           "individual_variability"]

TAILS = ("two-sided", "greater", "less")


def _finite(x: Any, name: str, min_subjects: int = 2) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] < min_subjects:
        raise DataError(f"{name} needs at least {min_subjects} subjects along axis 0, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN/inf: drop those subjects or time points first")
    return arr


def _check_tail(tail: str) -> None:
    if tail not in TAILS:
        raise ConfigError(f"tail must be one of {TAILS}, got {tail!r}")


def mean_sem(x: Any, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean (ddof=1) along ``axis`` (subjects).

    NaN entries are ignored (nanmean; the SEM uses the count of finite values).
    """
    arr = np.asarray(x, dtype=np.float64)
    n = np.sum(np.isfinite(arr), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, quietly
        mean = np.nanmean(arr, axis=axis)
        sem = np.nanstd(arr, axis=axis, ddof=1) / np.sqrt(n)
    return mean, sem


def paired_ttest(a: Any, b: Any, tail: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test of a vs b over subjects (axis 0), per remaining index (e.g. time).

    a, b: (n_subjects, ...) -> t, p of shape (...). Same as scipy.stats.ttest_rel.
    """
    _check_tail(tail)
    a, b = _finite(a, "a"), _finite(b, "b")
    if a.shape != b.shape:
        raise DataError(f"paired_ttest needs equal shapes, got {a.shape} and {b.shape}")
    res = _sps.ttest_rel(a, b, axis=0, alternative=tail)
    return np.asarray(res.statistic), np.asarray(res.pvalue)


def _t_stat(sums: np.ndarray, sumsq: np.ndarray, n: int) -> np.ndarray:
    """One-sample t from sums (..., T) and sums of squares (T,) over n subjects."""
    mean = sums / n
    var = (sumsq - n * mean ** 2) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return mean / np.sqrt(np.maximum(var, 0) / n)


def _sign_matrix(n_subjects: int, n_permutations: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(n_perm, n_subjects) of +-1; all 2^n patterns when that is <= n_permutations (exact)."""
    if 2 ** n_subjects <= n_permutations:
        codes = np.arange(2 ** n_subjects)[:, None] >> np.arange(n_subjects)[None, :] & 1
        return 1.0 - 2.0 * codes, True  # row 0 is the identity (observed data)
    return rng.choice([-1.0, 1.0], size=(n_permutations, n_subjects)), False


def _p_from_null(obs: np.ndarray, null: np.ndarray, tail: str, exact: bool) -> np.ndarray:
    """p of obs (...) against null (n_perm, ...) of the same statistic."""
    if tail == "two-sided":
        hits = np.abs(null) >= np.abs(obs) - 1e-12
    elif tail == "greater":
        hits = null >= obs - 1e-12
    else:
        hits = null <= obs + 1e-12
    if exact:  # the full set of sign patterns includes the observed one
        return hits.mean(axis=0)
    return (hits.sum(axis=0) + 1.0) / (null.shape[0] + 1.0)


def sign_flip_test(diff: Any, n_permutations: int = 10000, seed: int = 0,
                   tail: str = "two-sided") -> np.ndarray:
    """Sign-flip permutation test of mean(diff) = 0 over subjects, per time point (uncorrected).

    diff: (n_subjects, n_times) (e.g. model A minus model B). Whole subjects are flipped.
    With 2^n_subjects <= n_permutations all patterns are enumerated (exact p); otherwise
    p = (hits + 1) / (n_permutations + 1). Returns p (n_times,).
    """
    _check_tail(tail)
    d = _finite(diff, "diff")
    d2 = d.reshape(d.shape[0], -1)
    signs, exact = _sign_matrix(d2.shape[0], int(n_permutations), numpy_rng(seed))
    obs = d2.mean(axis=0)
    null = signs @ d2 / d2.shape[0]
    return _p_from_null(obs, null, tail, exact).reshape(d.shape[1:])


@dataclass
class ClusterResult:
    """Result of :func:`cluster_permutation_test`.

    clusters: list of (start, stop, mass, p) -- time indices [start, stop), summed t, p.
    mask: (n_times,) True inside clusters with p < alpha.
    t_obs: (n_times,) observed one-sample t.
    threshold: cluster-forming |t| threshold used.
    null: (n_permutations,) max |cluster mass| (or signed, for one tail) per permutation.
    """

    clusters: list = field(default_factory=list)
    mask: np.ndarray = None
    t_obs: np.ndarray = None
    threshold: float = 0.0
    null: np.ndarray = None


def _clusters_1d(stat: np.ndarray, above: np.ndarray) -> list[tuple[int, int, float]]:
    out, t = [], 0
    n = len(stat)
    while t < n:
        if above[t]:
            s = t
            while t < n and above[t]:
                t += 1
            out.append((s, t, float(stat[s:t].sum())))
        else:
            t += 1
    return out


def _max_cluster_mass(stat: np.ndarray, above: np.ndarray) -> np.ndarray:
    """Largest cluster mass per row; stat, above (n_perm, T) -> (n_perm,) (0 if no cluster)."""
    p, t = stat.shape
    starts = above & ~np.concatenate([np.zeros((p, 1), bool), above[:, :-1]], axis=1)
    ids = np.cumsum(starts.ravel()) * above.ravel()          # cluster label (0 = none)
    n_clusters = int(ids.max()) if ids.size else 0
    if n_clusters == 0:
        return np.zeros(p)
    mass = np.bincount(ids, weights=stat.ravel(), minlength=n_clusters + 1)
    row = np.repeat(np.arange(p), t)
    cluster_row = np.zeros(n_clusters + 1, int)
    cluster_row[ids[ids > 0]] = row[ids > 0]
    best = np.zeros(p)
    np.maximum.at(best, cluster_row[1:], mass[1:])
    return best


def cluster_permutation_test(diff: Any, threshold: float | None = None, n_permutations: int = 1000,
                             tail: str = "two-sided", seed: int = 0,
                             alpha: float = 0.05) -> ClusterResult:
    """Cluster-based sign-flip permutation test over time (Maris & Oostenveld 2007).

    diff: (n_subjects, n_times), e.g. aligned minus baseline model similarity, or
        similarity minus 0. Clusters are runs of adjacent time points whose observed
        one-sample t exceeds ``threshold`` (default: the t quantile of p = 0.05 for the tail);
        mass = sum of t in the run. The null distribution is the maximum cluster mass over the
        whole time course after flipping the signs of whole subjects (all patterns when
        2^n_subjects <= n_permutations), so the test controls the family-wise error over time.
        Two-sided: positive and negative clusters are formed separately and compared by |mass|.
    Returns :class:`ClusterResult`.
    """
    _check_tail(tail)
    d = _finite(diff, "diff", min_subjects=3)
    if d.ndim != 2:
        raise DataError(f"diff must be (n_subjects, n_times), got shape {d.shape}")
    n = d.shape[0]
    if threshold is None:
        q = 0.975 if tail == "two-sided" else 0.95
        threshold = float(_sps.t.ppf(q, n - 1))
    if threshold <= 0:
        raise ConfigError(f"threshold must be > 0 (a |t| value), got {threshold}")
    signs, exact = _sign_matrix(n, int(n_permutations), numpy_rng(seed))
    sumsq = (d ** 2).sum(axis=0)  # unchanged by sign flips
    t_obs = _t_stat(d.sum(axis=0), sumsq, n)
    t_null = _t_stat(signs @ d, sumsq, n)                       # (n_perm, T)
    t_null = np.nan_to_num(t_null)
    t_obs_f = np.nan_to_num(t_obs)

    def masses(stat):  # stat (P, T) -> the tail's max cluster statistic per row
        pos = _max_cluster_mass(stat, stat > threshold)
        neg = _max_cluster_mass(-stat, -stat > threshold)
        return {"greater": pos, "less": neg, "two-sided": np.maximum(pos, neg)}[tail]

    null = masses(t_null)
    clusters = []
    signs_to_check = {"greater": [1], "less": [-1], "two-sided": [1, -1]}[tail]
    for sgn in signs_to_check:
        for start, stop, mass in _clusters_1d(sgn * t_obs_f, sgn * t_obs_f > threshold):
            hits = (null >= mass - 1e-12).sum()
            p = hits / len(null) if exact else (hits + 1.0) / (len(null) + 1.0)
            clusters.append((start, stop, sgn * mass, float(p)))
    clusters.sort(key=lambda c: c[0])
    mask = np.zeros(d.shape[1], bool)
    for start, stop, _, p in clusters:
        if p < alpha:
            mask[start:stop] = True
    return ClusterResult(clusters=clusters, mask=mask, t_obs=t_obs, threshold=threshold, null=null)


def fdr(pvals: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg FDR over all entries: (rejected mask, adjusted p), shapes of pvals."""
    p = np.asarray(pvals, dtype=np.float64)
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise DataError("p-values must be finite and in [0, 1]")
    flat = p.ravel()
    m = flat.size
    order = np.argsort(flat)
    ranked = flat[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(adj_sorted, 1.0)
    return (adj <= alpha).reshape(p.shape), adj.reshape(p.shape)


@dataclass
class BootstrapResult:
    """estimate (k,) on all stimuli; low/high (k,) percentile bounds; distribution (n_boot, k)."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    distribution: np.ndarray


def bootstrap_ci(model_rdm: Any, neural_rdm: Any, n_boot: int = 1000, ci: float = 0.95,
                 method: str = "spearman", seed: int = 0) -> BootstrapResult:
    """Percentile bootstrap CI of the model-neural RDM correlation, resampling stimuli.

    model_rdm: one RDM; neural_rdm: one RDM or a stack of k (e.g. time points).
    Each bootstrap sample draws n conditions with replacement and keeps the pairs (i, j),
    i < j in the sample, of two *different* original conditions: a condition drawn twice
    would otherwise contribute its zero self-dissimilarity as a fake pair.
    """
    method = check_method(method)
    vm, n = as_vectors(model_rdm, "model RDM")
    vn, nn = as_vectors(neural_rdm, "neural RDM")
    if vm.shape[0] != 1:
        raise DataError(f"bootstrap_ci takes one model RDM, got {vm.shape[0]}")
    if n != nn:
        raise DataError(f"model RDM has {n} conditions, neural RDM {nn}: use the same images")
    if not (0 < ci < 1):
        raise ConfigError(f"ci must be in (0, 1), got {ci}")
    if not (np.isfinite(vm).all() and np.isfinite(vn).all()):
        raise DataError("RDMs contain NaN/inf: bootstrap_ci needs finite RDMs")
    rng = numpy_rng(seed)
    sq_m = _square(vm[0], n)
    sq_n = np.stack([_square(v, n) for v in vn])                   # (k, n, n)
    iu = triu_indices(n)
    estimate = compare(vm, vn, method)[0]
    dist = np.empty((int(n_boot), vn.shape[0]))
    for b in range(int(n_boot)):
        idx = np.sort(rng.integers(0, n, size=n))
        i, j = idx[iu[0]], idx[iu[1]]
        keep = i != j
        i, j = i[keep], j[keep]
        with np.errstate(invalid="ignore"):
            # the kept pairs are no triangle: the kernel, not compare(), which checks RDM shapes
            dist[b] = _kernel(sq_m[i, j][None], sq_n[:, i, j], method)[0] if method in _KENDALL \
                else (_prepare(sq_n[:, i, j], method) @ _prepare(sq_m[i, j][None], method)[0])
    lo, hi = np.nanpercentile(dist, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return BootstrapResult(estimate=estimate, low=lo, high=hi, distribution=dist)


def _square(v: np.ndarray, n: int) -> np.ndarray:
    sq = np.zeros((n, n))
    iu = triu_indices(n)
    sq[iu] = v
    sq[iu[1], iu[0]] = v
    return sq


def _subject_array(subject_rdms: Any) -> np.ndarray:
    """(n_subjects, ..., n, n) or (n_subjects, ..., n_pairs) -> (n_subjects, K, n_pairs)."""
    arr = np.asarray(subject_rdms, dtype=np.float64)
    if arr.ndim >= 3 and arr.shape[-1] == arr.shape[-2]:
        lead = arr.shape[:-2]
        vec, _ = as_vectors(arr.reshape(-1, *arr.shape[-2:]), "subject RDM")
        arr = vec.reshape(*lead, -1)
    if arr.ndim < 2:
        raise DataError(f"subject RDMs must be (n_subjects, ..., n_pairs), got shape {arr.shape}")
    as_vectors(arr.reshape(-1, arr.shape[-1])[:1])  # validates n_pairs is a triangle size
    if arr.shape[0] < 2:
        raise DataError(f"a noise ceiling needs at least 2 subjects, got {arr.shape[0]}")
    return arr.reshape(arr.shape[0], -1, arr.shape[-1])


def _by_subject(rdms: RDMs) -> np.ndarray:
    """RDMs with a 'subject' descriptor -> (n_subjects, k, n_pairs), k RDMs per subject."""
    if "subject" not in rdms.descriptors:
        raise DataError("RDMs need a 'subject' descriptor here; or pass an array "
                        "(n_subjects, ..., n_pairs)")
    groups = [rdms.vectors[rdms.descriptors["subject"] == s] for s in rdms.unique("subject")]
    if len({g.shape[0] for g in groups}) != 1:
        raise DataError(f"subjects have different numbers of RDMs: {[g.shape[0] for g in groups]}")
    return np.stack(groups)


def pool_rdms(x: np.ndarray, method: str = "spearman") -> np.ndarray:
    """RDMs (..., n_pairs) transformed so that their average is the best group RDM for ``method``
    (rsatoolbox's ``pool_rdm`` before the mean): ranks for the rank methods, z-scores
    (ddof=0) for Pearson, division by the root mean square for cosine."""
    method = check_method(method)
    x = np.asarray(x, dtype=np.float64)
    if method == "pearson":
        c = x - x.mean(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return c / c.std(axis=-1, keepdims=True)
    if method == "cosine":
        with np.errstate(invalid="ignore", divide="ignore"):
            return x / np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True))
    return rank_rows(x)  # spearman, rho_a, kendall_a, kendall_b: averaged ranks


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Labels of the n pooled RDMs -> integer codes; each RDM its own group when None."""
    if groups is None:
        return np.arange(n)
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise DataError(f"groups has {labels.size} labels for {n} RDMs along axis 0: give one label "
                        "(e.g. the subject) per RDM")
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    if codes.max() < 1:
        raise DataError("a noise ceiling needs at least 2 groups (subjects), got 1: every RDM has the "
                        "same label in groups")
    return codes


def noise_ceiling(subject_rdms: Any, method: str = "spearman", *,
                  groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper noise-ceiling bounds across subjects (Nili et al. 2014), equal to
    ``rsatoolbox.inference.boot_noise_ceiling(rdms, method, rdm_descriptor=groups)``.

    subject_rdms: (n_subjects, n_pairs), (n_subjects, n, n), or with extra dimensions between
        subjects and the RDM, e.g. (n_subjects, n_times, n_pairs) or (n_subjects, n_rois, n, n);
        or RDMs with a 'subject' descriptor (each subject's RDMs in their stored order, e.g.
        one per time point).
    groups: one label per entry of axis 0 (e.g. the subject of each session's RDM): all RDMs
        of a group are left out together; by default each entry is its own group. For RDMs,
        the name of a descriptor: then all RDMs are pooled into one ceiling (a scalar), grouped
        by that descriptor.
    RDMs are pooled the way ``method`` compares them (:func:`pool_rdms`: ranks averaged for
    Spearman/rho-a/Kendall, z-scores for Pearson, RMS-scaled for cosine).
    lower = mean over groups of the mean corr(RDM, pool of the OTHER groups);
    upper = mean over groups of the mean corr(RDM, pool of ALL RDMs).
    Returns (lower, upper), each a float or of the extra dimensions' shape (e.g. (n_times,)).
    """
    method = check_method(method)
    if isinstance(subject_rdms, RDMs):
        if isinstance(groups, str):
            if groups not in subject_rdms.descriptors:
                raise DataError(f"RDMs have no {groups!r} descriptor (they have "
                                f"{sorted(subject_rdms.descriptors)}): pass the name of one of them")
            groups = subject_rdms.descriptors[groups]
            subject_rdms = subject_rdms.vectors
        else:
            subject_rdms = _by_subject(subject_rdms)
    arr = np.asarray(subject_rdms, dtype=np.float64)
    extra = arr.shape[1:-2] if arr.ndim >= 3 and arr.shape[-1] == arr.shape[-2] else arr.shape[1:-1]
    x = _subject_array(arr)                                          # (S, K, P)
    if not np.isfinite(x).all():
        raise DataError("subject RDMs contain NaN/inf: drop or fix them before the noise ceiling")
    lower, upper = _ceiling(x, method, _group_codes(groups, x.shape[0]))
    return lower.reshape(extra), upper.reshape(extra)


def _ceiling(x: np.ndarray, method: str, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noise ceiling of finite x (S, K, P) (any P: also subsets of pairs) -> lower, upper (K,)."""
    n_groups = codes.max() + 1
    pooled = pool_rdms(x, method)
    sizes = np.bincount(codes, minlength=n_groups)                   # RDMs per group
    group_sums = np.zeros((n_groups,) + x.shape[1:])
    np.add.at(group_sums, codes, pooled)
    total = group_sums.sum(axis=0)
    others = (total[None] - group_sums[codes]) / (x.shape[0] - sizes[codes])[:, None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant RDMs: NaN, skipped below
        lower_each = correlate_rows(x, others, method)                # (S, K)
        upper_each = correlate_rows(x, np.broadcast_to(total / x.shape[0], x.shape), method)
        # mean within each group, then over groups (as rsatoolbox)
        lower = np.nanmean(_group_means(lower_each, codes, n_groups), axis=0)
        upper = np.nanmean(_group_means(upper_each, codes, n_groups), axis=0)
    return lower, upper


def _group_means(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """(S, K) values -> (n_groups, K) nan-means within each group."""
    ok = np.isfinite(values)
    sums = np.zeros((n_groups, values.shape[1]))
    counts = np.zeros((n_groups, values.shape[1]))
    np.add.at(sums, codes, np.where(ok, values, 0.0))
    np.add.at(counts, codes, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def individual_variability(rdms_by_model: Any) -> np.ndarray:
    """1 - Spearman between every two models' RDMs of the same layer: (n_models, n_models).

    rdms_by_model: (n_models, n_pairs), (n_models, n, n) or RDMs (one per model).
    """
    vec, _ = as_vectors(rdms_by_model, "model RDMs")
    if vec.shape[0] < 2:
        raise DataError(f"individual variability needs at least 2 models, got {vec.shape[0]}")
    out = 1.0 - compare(vec, vec, "spearman")
    np.fill_diagonal(out, 0.0)
    return out
