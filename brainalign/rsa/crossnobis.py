"""Time-resolved crossnobis (cross-validated Mahalanobis) RDMs for EEG/MEG trials.

For every cross-validation fold f (repetitions r with r % n_folds == f held out) and time t:
    d_ij = (a_i - a_j)^T Lambda (b_i - b_j) / n_channels,
a = condition means of the training folds, b = condition means of the held-out fold, Lambda a
noise precision; the RDM is the mean over folds (unbiased: 0 in expectation for equal patterns,
so it can be negative). Equal to ``rsatoolbox.rdm.calc_rdm(method='crossnobis')`` per time point.

All pairs and time points of a fold are one batched product: with Lambda = W^T W, d_ij is the
(i, j) entry of diag(K) + diag(K)^T - K - K^T for K = (W A)(W B)^T, (T, C, C) per fold.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, DataError
from ..resources import check_memory
from .decoding import _as_trials, _checked_times, _from_dataset, _whitener
from .rdms import RDMs, triu_indices

__all__ = ["crossnobis_rdm", "NOISE_OPTIONS"]

NOISE_OPTIONS = ("shrinkage", "identity")


def _precision_whitener(noise: Any, e: int, t: int) -> np.ndarray | None:
    """A given precision (E, E) or (T, E, E) -> W (T, E, E) with W^T W = precision; None for
    'identity' (plain Euclidean, no product needed)."""
    if isinstance(noise, str):
        return None
    prec = np.asarray(noise, dtype=np.float64)
    if prec.shape == (e, e):
        prec = np.broadcast_to(prec, (t, e, e))
    if prec.shape != (t, e, e):
        raise DataError(f"noise precision of shape {prec.shape}: expected (n_channels, n_channels) = "
                        f"({e}, {e}) or one per time point ({t}, {e}, {e})")
    if not np.isfinite(prec).all() or not np.allclose(prec, np.swapaxes(prec, 1, 2)):
        raise DataError("noise precision must be finite and symmetric: pass the inverse of a "
                        "noise covariance (e.g. from shrinkage), or noise='shrinkage'")
    vals, vecs = np.linalg.eigh(prec)
    if (vals < -1e-10 * np.abs(vals).max()).any():
        raise DataError("noise precision is not positive semi-definite: pass the inverse of a covariance")
    return np.einsum("tij,tj,tkj->tik", vecs, np.sqrt(np.maximum(vals, 0)), vecs, optimize=True)


def crossnobis_rdm(trials: Any, *, n_folds: int | None = None, noise: Any = "shrinkage",
                   shrinkage: float | str = "auto", times: Sequence[float] | None = None,
                   descriptors: dict | None = None) -> RDMs:
    """Crossnobis RDMs, one per time point.

    Args:
        trials: (n_conditions, n_repetitions, n_channels, n_times), or a NeuralDataset with
            repetitions (its times, subject and image descriptors are kept).
        n_folds: cross-validation folds; repetition r belongs to fold r % n_folds. Default:
            one fold per repetition (leave one repetition out, rsatoolbox's default).
        noise: 'shrinkage' (default): per fold and time point, the precision of the training
            folds' residuals around their condition means (pooled over conditions, divided by
            their count, Ledoit-Wolf shrinkage towards a scaled identity as in decoding_rdm);
            'identity': cross-validated squared Euclidean distance / n_channels; or a precision
            matrix (n_channels, n_channels) or (n_times, n_channels, n_channels) for all folds
            (rsatoolbox's ``noise=``).
        shrinkage: 'auto' (Ledoit-Wolf) or a value in [0, 1] for noise='shrinkage'.
        times: (n_times,) time stamps for the 'time' descriptor; default sample indices.
        descriptors: extra RDM descriptors, e.g. {'subject': 1}.

    Returns:
        RDMs (measure 'crossnobis') with one RDM per time point (descriptor 'time').
    """
    condition_descriptors = None
    if hasattr(trials, "repetitions") and hasattr(trials, "responses"):  # a NeuralDataset
        trials, times, descriptors, condition_descriptors = _from_dataset(trials, times, descriptors)
    x = _as_trials(trials)
    c, r, e, t = x.shape
    folds = r if n_folds is None else int(n_folds)
    if not 2 <= folds <= r:
        raise ConfigError(f"n_folds must be between 2 and n_repetitions={r}, got {n_folds}: "
                          "crossnobis needs at least 2 independent repetitions per condition")
    if isinstance(noise, str) and noise not in NOISE_OPTIONS:
        raise ConfigError(f"unknown noise {noise!r}: use 'shrinkage', 'identity' or a precision matrix")
    times = _checked_times(shrinkage, times, t)
    # trials moved to (T, C, R, E) + accumulator (T, C, C) + per-fold means and kernel
    check_memory(8.0 * (2 * c * r * e * t + 3 * t * c * c + 4 * t * c * e),
                 f"crossnobis RDMs of {c} conditions x {t} time points",
                 "compute fewer conditions or time points at a time")
    fixed_w = _precision_whitener(noise, e, t)
    fold_of = np.arange(r) % folds
    order = np.argsort(fold_of, kind="stable")               # repetitions grouped by fold
    starts = np.searchsorted(fold_of[order], np.arange(folds))
    sizes = np.bincount(fold_of, minlength=folds)
    xt = np.moveaxis(x, -1, 0)[:, :, order]                  # (T, C, R, E), one copy
    acc = np.zeros((t, c, c))
    shrink = isinstance(noise, str) and noise == "shrinkage"
    # batched small products: multi-threaded BLAS only adds overhead (as in decoding_rdm)
    with threadpool_limits(limits=1, user_api="blas"):
        if not shrink:
            if fixed_w is not None:  # whiten once: Lambda = W^T W is the same in every fold
                xt = np.matmul(xt.reshape(t, c * r, e), np.swapaxes(fixed_w, 1, 2)).reshape(t, c, r, e)
            fold_sums = np.add.reduceat(xt, starts, axis=2)  # (T, C, F, E)
            total = fold_sums.sum(axis=2)
        for f in range(folds):
            if shrink:  # the precision of this fold's training repetitions only
                train = np.delete(xt, np.s_[starts[f]:starts[f] + sizes[f]], axis=2)
                a, w = _whitener(train, shrinkage)          # (T, C, E), (T, E, E)
                b = xt[:, :, starts[f]:starts[f] + sizes[f]].mean(axis=2)
                a = np.matmul(a, np.swapaxes(w, 1, 2))
                b = np.matmul(b, np.swapaxes(w, 1, 2))
            else:
                a = (total - fold_sums[:, :, f]) / (r - sizes[f])
                b = fold_sums[:, :, f] / sizes[f]
            k = np.matmul(a, np.swapaxes(b, 1, 2))            # (T, C, C)
            diag = np.diagonal(k, axis1=1, axis2=2)
            acc += diag[:, :, None] + diag[:, None, :] - k - np.swapaxes(k, 1, 2)
    acc /= folds * e
    iu = triu_indices(c)
    desc = {"time": times}
    desc.update(descriptors or {})
    return RDMs(acc[:, iu[0], iu[1]], c, descriptors=desc, condition_descriptors=condition_descriptors,
                measure="crossnobis")
