"""Comparing RDMs: Spearman, Pearson, cosine, rho-a, Kendall tau-a and tau-b; time-resolved RSA.

Every RDM is ranked (Spearman, rho-a), centred (Pearson) or only scaled (cosine) once, then all
comparisons are one matrix product of prepared rows, so one model RDM against thousands of
neural RDMs (all subjects x all time points) is a single BLAS call. Each method equals
``rsatoolbox.rdm.compare`` with the method name in brackets: spearman ('spearman'), pearson
('corr'), cosine ('cosine'), rho_a ('rho-a'), kendall_a ('tau-a'), kendall_b ('tau-b').

NaN policy (``nan_policy``):
    'raise' (default): DataError naming the RDM that holds NaN;
    'propagate': every comparison involving an RDM with NaN is NaN;
    'omit': each comparison uses only the pairs finite in both RDMs (slower, per comparison).
A constant RDM (all values equal) has no defined Spearman/Pearson/tau-b correlation: the result
is NaN, as in scipy; its Kendall tau-a is 0 (no concordant or discordant pairs); an all-zero RDM
has no cosine (NaN; rsatoolbox reports 0).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as _sps
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, DataError
from .rdms import RDMs, as_vectors

__all__ = ["compare", "correlate_rows", "time_resolved_rsa", "rank_rows", "COMPARE_METHODS",
           "METHOD_ALIASES", "check_method"]

COMPARE_METHODS = ("spearman", "pearson", "cosine", "rho_a", "kendall_a", "kendall_b")
# rsatoolbox's names for the same methods, accepted everywhere a method is
METHOD_ALIASES = {"corr": "pearson", "rho-a": "rho_a", "tau-a": "kendall_a", "tau-b": "kendall_b",
                  "kendall": "kendall_b"}
_KENDALL = ("kendall_a", "kendall_b")
NAN_POLICIES = ("raise", "propagate", "omit")
_KENDALL_VECTOR_MAX = 2500  # n_pairs up to which tau-a uses O(n^2) sign products


def rank_rows(x: np.ndarray, chunk_rows: int = 64) -> np.ndarray:
    """Average ranks (1-based) along the last axis; ties get their mean rank, exactly as
    ``scipy.stats.rankdata(method='average')``. NaN sorts last (rank it only if you mean to).

    One argsort per row, processed in row chunks so memory stays ~ chunk_rows x n_pairs.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    out = np.empty_like(flat)
    p = flat.shape[1]
    for s in range(0, flat.shape[0], chunk_rows):
        block = flat[s:s + chunk_rows]
        k = block.shape[0]
        order = np.argsort(block, axis=1)  # tie order is irrelevant: ties share their mean rank
        xs = np.take_along_axis(block, order, axis=1)
        start = np.ones((k, p), bool)
        start[:, 1:] = xs[:, 1:] != xs[:, :-1]       # a new run of equal values begins
        gid = np.cumsum(start.ravel()) - 1            # run id over the whole block
        first = np.flatnonzero(start.ravel()) % p     # position of each run's first element
        size = np.bincount(gid)
        avg = first + (size - 1) / 2.0 + 1.0          # mean of positions first..first+size-1, 1-based
        ranks = np.empty((k, p))
        np.put_along_axis(ranks, order, avg[gid].reshape(k, p), axis=1)
        out[s:s + chunk_rows] = ranks
    return out.reshape(x.shape)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Centre and scale rows to unit norm (in place when x is float64); constant rows become
    NaN (correlation undefined)."""
    c = np.asarray(x, dtype=np.float64)
    c -= c.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.einsum("...i,...i->...", c, c))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        c /= norm
    c[(norm == 0)[..., 0]] = np.nan
    return c


def _prepare(x: np.ndarray, method: str) -> np.ndarray:
    """Rows (..., P) prepared so that the dot product of two prepared rows is the similarity."""
    if method == "cosine":
        c = np.array(x, dtype=np.float64)
        norm = np.sqrt(np.einsum("...i,...i->...", c, c))[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            c /= norm
        c[(norm == 0)[..., 0]] = np.nan
        return c
    if method == "rho_a":  # Spearman without tie correction: 12 * sum(dr_x dr_y) / (P^3 - P)
        r = rank_rows(x)
        p = r.shape[-1]
        r -= r.mean(axis=-1, keepdims=True)
        return r * np.sqrt(12.0 / (p ** 3 - p))
    return _unit_rows(rank_rows(x) if method == "spearman" else np.array(x, dtype=np.float64))


_ROW_CHUNK = 256  # rows prepared at a time on the larger side (bounds memory to ~chunk x n_pairs)


def _kendall_a_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tau-a for all rows of a (n_a, P) against b (n_b, P)."""
    p = a.shape[1]
    n_pairs = p * (p - 1) / 2
    if p <= _KENDALL_VECTOR_MAX:
        out = np.zeros((a.shape[0], b.shape[0]))
        step = max(1, int(4e6 // (p * max(a.shape[0], b.shape[0]))))
        for s in range(0, p, step):
            sa = np.sign(a[:, s:s + step, None] - a[:, None, :])  # (n_a, c, P)
            sb = np.sign(b[:, s:s + step, None] - b[:, None, :])
            out += np.einsum("icp,jcp->ij", sa, sb, optimize=True)
        return out / 2.0 / n_pairs  # every unordered pair was counted twice
    # large P: O(P log P) per comparison through scipy's tau-b and the tie counts
    ties_a = [_tie_pairs(r) for r in a]
    ties_b = [_tie_pairs(r) for r in b]
    out = np.empty((a.shape[0], b.shape[0]))
    for i, ra in enumerate(a):
        for j, rb in enumerate(b):
            out[i, j] = _tau_a_from_b(ra, rb, ties_a[i], ties_b[j], n_pairs)
    return out


def _tie_pairs(x: np.ndarray) -> float:
    _, counts = np.unique(x, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def _tau_a_from_b(x, y, tx, ty, n0) -> float:
    if tx == n0 or ty == n0:
        return 0.0
    tau_b = _sps.kendalltau(x, y, variant="b").statistic
    return float(tau_b * np.sqrt((n0 - tx) * (n0 - ty)) / n0)


def _kendall_b_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """tau-b (scipy's default) for all rows of a against b: tau-a with the ties divided out."""
    p = a.shape[1]
    n0 = p * (p - 1) / 2
    untied_a = n0 - np.array([_tie_pairs(r) for r in a])
    untied_b = n0 - np.array([_tie_pairs(r) for r in b])
    with np.errstate(invalid="ignore", divide="ignore"):
        return _kendall_a_matrix(a, b) * n0 / np.sqrt(np.outer(untied_a, untied_b))


def _kernel(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """(n_a, n_b) correlations of finite rows a (n_a, P) and b (n_b, P)."""
    if method == "kendall_a":
        return _kendall_a_matrix(a, b)
    if method == "kendall_b":
        return np.clip(_kendall_b_matrix(a, b), -1.0, 1.0)
    if a.shape[0] > b.shape[0]:
        return _kernel(b, a, method).T
    pa = _prepare(a, method)  # the smaller side, kept whole
    out = np.empty((a.shape[0], b.shape[0]))
    # a skinny product: multi-threaded BLAS gains little here and stalls on busy cores
    with threadpool_limits(limits=1, user_api="blas"):
        for s in range(0, b.shape[0], _ROW_CHUNK):
            out[:, s:s + _ROW_CHUNK] = pa @ _prepare(b[s:s + _ROW_CHUNK], method).T
    return np.clip(out, -1.0, 1.0)


def check_method(method: str) -> str:
    """The canonical name of a comparison method (rsatoolbox's names accepted); ConfigError if unknown."""
    name = METHOD_ALIASES.get(method, method)
    if name not in COMPARE_METHODS:
        raise ConfigError(f"unknown comparison method {method!r}: use one of {', '.join(COMPARE_METHODS)} "
                          f"(or rsatoolbox's {', '.join(METHOD_ALIASES)})")
    return name


def _check_method(method: str, nan_policy: str) -> str:
    if nan_policy not in NAN_POLICIES:
        raise ConfigError(f"unknown nan_policy {nan_policy!r}: use one of {', '.join(NAN_POLICIES)}")
    return check_method(method)


def _pair_vectors(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    va, na = as_vectors(a, "first RDM")
    vb, nb = as_vectors(b, "second RDM")
    if na != nb:
        raise DataError(f"RDMs compare different numbers of conditions ({na} vs {nb}): compute "
                        "both over the same images, in the same order")
    return va, vb


def compare(a: Any, b: Any, method: str = "spearman", *, nan_policy: str = "raise") -> np.ndarray:
    """Correlate every RDM of ``a`` with every RDM of ``b``.

    a, b: RDMs or arrays (n, n), (k, n, n), (n_pairs,), (k, n_pairs) over the same conditions.
    method: 'spearman' (average ranks for ties, as scipy.stats.spearmanr), 'pearson',
        'cosine' (uncentred), 'rho_a' (Spearman without tie correction, rsatoolbox's 'rho-a'),
        'kendall_a' (tau-a: (concordant - discordant) / (n_pairs * (n_pairs - 1) / 2)),
        'kendall_b' (tau-b, as scipy.stats.kendalltau). rsatoolbox's names ('corr', 'rho-a',
        'tau-a', 'tau-b', 'kendall') are accepted too.
    Returns (n_a, n_b) float64.
    """
    method = _check_method(method, nan_policy)
    va, vb = _pair_vectors(a, b)
    bad_a = ~np.isfinite(va).all(axis=1)
    bad_b = ~np.isfinite(vb).all(axis=1)
    if nan_policy == "raise" and (bad_a.any() or bad_b.any()):
        side, idx = ("first", np.flatnonzero(bad_a)) if bad_a.any() else ("second", np.flatnonzero(bad_b))
        raise DataError(f"RDM(s) {idx[:10].tolist()} of the {side} argument contain NaN/inf: fix "
                        "them, or pass nan_policy='omit' (use the finite pairs) or 'propagate'")
    out = np.full((va.shape[0], vb.shape[0]), np.nan)
    ok_a, ok_b = np.flatnonzero(~bad_a), np.flatnonzero(~bad_b)
    if len(ok_a) and len(ok_b):
        with np.errstate(invalid="ignore"):
            # index only when some rows are bad: fancy indexing would copy a large stack
            out[np.ix_(ok_a, ok_b)] = _kernel(va if not bad_a.any() else va[ok_a],
                                              vb if not bad_b.any() else vb[ok_b], method)
    if nan_policy == "omit":
        for i in range(va.shape[0]):
            for j in range(vb.shape[0]):
                if bad_a[i] or bad_b[j]:
                    keep = np.isfinite(va[i]) & np.isfinite(vb[j])
                    if keep.sum() >= 2:
                        with np.errstate(invalid="ignore"):
                            out[i, j] = _kernel(va[i, keep][None], vb[j, keep][None], method)[0, 0]
    return out


def correlate_rows(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Row-wise correlation of matching rows: a, b (..., n_pairs) -> (...). NaN where undefined."""
    method = _check_method(method, "propagate")
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    if method in _KENDALL:
        flat_a, flat_b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        out = np.array([_kernel(x[None], y[None], method)[0, 0] for x, y in zip(flat_a, flat_b)])
        return out.reshape(a.shape[:-1])
    with np.errstate(invalid="ignore"):
        return np.clip(np.sum(_prepare(a, method) * _prepare(b, method), axis=-1), -1.0, 1.0)


def _neural_grid(neural: Any) -> tuple[np.ndarray, int]:
    """Neural RDMs -> (n_subjects, n_times, n_pairs) and n_conditions."""
    if isinstance(neural, (list, tuple)):  # one RDMs (n_times) per subject
        parts = [as_vectors(x, "neural RDM") for x in neural]
        ns = {n for _, n in parts}
        if len(ns) != 1:
            raise DataError(f"subjects' RDMs cover different numbers of conditions: {sorted(ns)}")
        shapes = {v.shape for v, _ in parts}
        if len(shapes) != 1:
            raise DataError(f"subjects have different numbers of time points: {sorted(shapes)}")
        return np.stack([v for v, _ in parts]), ns.pop()
    if isinstance(neural, RDMs):
        if "subject" not in neural.descriptors or "time" not in neural.descriptors:
            missing = [k for k in ("subject", "time") if k not in neural.descriptors]
            raise DataError(f"neural RDMs need 'subject' and 'time' descriptors (missing: {missing}); "
                            "or pass an array (n_subjects, n_times, n, n) or a list of per-subject RDMs")
        subjects = neural.unique("subject")
        times = np.unique(neural.descriptors["time"])
        grid = np.full((len(subjects), len(times), neural.n_pairs), np.nan)
        filled = np.zeros((len(subjects), len(times)), bool)
        s_idx = {s: i for i, s in enumerate(subjects.tolist())}
        t_idx = np.searchsorted(times, neural.descriptors["time"])
        for k, (s, t) in enumerate(zip(neural.descriptors["subject"].tolist(), t_idx)):
            grid[s_idx[s], t] = neural.vectors[k]
            filled[s_idx[s], t] = True
        if not filled.all():
            s, t = np.argwhere(~filled)[0]
            raise DataError(f"no neural RDM for subject {subjects[s]!r} at time {times[t]!r}: every "
                            "subject needs an RDM at every time point")
        return grid, neural.n_conditions
    arr = np.asarray(neural.detach().cpu().numpy() if hasattr(neural, "detach") else neural, np.float64)
    if arr.ndim == 4:
        s, t = arr.shape[:2]
        vec, n = as_vectors(arr.reshape(s * t, *arr.shape[2:]), "neural RDM")
        return vec.reshape(s, t, -1), n
    if arr.ndim == 3:
        vec, n = as_vectors(arr.reshape(-1, arr.shape[-1]), "neural RDM")
        return vec.reshape(arr.shape[0], arr.shape[1], -1), n
    raise DataError(f"neural RDMs of shape {arr.shape}: expected (n_subjects, n_times, n, n), "
                    "(n_subjects, n_times, n_pairs), RDMs with subject/time descriptors, or a list "
                    "of per-subject RDMs")


def time_resolved_rsa(model_rdms: Any, neural: Any, method: str = "spearman", *,
                      nan_policy: str = "raise") -> np.ndarray:
    """Similarity of each model RDM with each subject's RDM at each time point.

    model_rdms: n_layers RDMs (RDMs or (n_layers, n, n) / (n_layers, n_pairs); one RDM is fine).
    neural: (n_subjects, n_times, n, n) or (n_subjects, n_times, n_pairs) arrays, a list of
        per-subject RDMs (n_times each), or RDMs with 'subject' and 'time' descriptors
        (subjects in order of first appearance, times sorted).
    Returns (n_layers, n_subjects, n_times).
    """
    grid, n = _neural_grid(neural)
    vm, nm = as_vectors(model_rdms, "model RDM")
    if nm != n:
        raise DataError(f"model RDMs have {nm} conditions, neural RDMs {n}: use the same images "
                        "in the same order")
    s, t, p = grid.shape
    return compare(vm, grid.reshape(s * t, p), method, nan_policy=nan_policy).reshape(-1, s, t)
