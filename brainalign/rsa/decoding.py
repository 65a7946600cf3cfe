"""Time-resolved EEG RDMs: pairwise decoding accuracy and correlation distance.

Pipeline of :func:`decoding_rdm` (the same for both engines, so they see identical data):

1. for each of ``n_permutations`` random assignments (seeded): shuffle each condition's
   repetitions, average groups of ``n_pseudo`` into P = n_repetitions // n_pseudo
   pseudo-trials (leftover repetitions are not used in that permutation);
2. split the P pseudo-trials of every condition into ``n_folds`` folds; train on the rest,
   test on the held-out fold, for every time point (or sliding window) and every pair;
3. accuracy = fraction of held-out pseudo-trials of both conditions classified correctly,
   averaged over folds and permutations (0.5 = chance).

Engines:
    'lda' (default): one linear discriminant per pair with a covariance shared by all
        conditions, estimated on the training pseudo-trials (pooled within-condition
        residuals, Ledoit-Wolf shrinkage). After whitening with that covariance, LDA for a
        pair is the nearest-mean rule, so all pairs' decisions for all held-out trials are
        one matrix product: O(T * C^2 * P * E) instead of C^2 / 2 classifier fits.
    'svm': scikit-learn ``SVC(kernel='linear')`` per pair on the raw pseudo-trials
        (the field's usual pipeline, e.g. Gifford et al. 2022); slow, for validation.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, DataError
from ..resources import check_memory
from ._util import numpy_rng
from .rdms import RDMs, triu_indices

__all__ = ["decoding_rdm", "correlation_rdm_eeg", "pseudo_trials", "ledoit_wolf_shrinkage"]

ENGINES = ("lda", "svm")
_LDA_BLOCK_BYTES = 256 * 2**20


def _as_trials(trials: Any) -> np.ndarray:
    if hasattr(trials, "detach"):
        trials = trials.detach().cpu().numpy()
    x = np.asarray(trials, dtype=np.float64)
    if x.ndim != 4:
        raise DataError(f"trials must be (n_conditions, n_repetitions, n_channels, n_times), got "
                        f"shape {x.shape}; for averaged data (n_conditions, n_channels, n_times) "
                        "use correlation_rdm_eeg")
    if x.shape[0] < 2:
        raise DataError(f"decoding needs at least 2 conditions, got {x.shape[0]}")
    bad = ~np.isfinite(x).all(axis=(1, 2, 3))
    if bad.any():
        raise DataError(f"trials contain NaN/inf for condition(s) {np.flatnonzero(bad)[:10].tolist()}: "
                        "interpolate or drop the bad repetitions before decoding")
    return x


def _checked_times(shrinkage: float | str, times: Sequence[float] | None, t: int) -> np.ndarray:
    """Validates ``shrinkage`` ('auto' or in [0, 1]) and returns the (t,) time stamps (default
    sample indices); shared by the decoding and crossnobis engines."""
    if shrinkage != "auto" and not 0.0 <= float(shrinkage) <= 1.0:
        raise ConfigError(f"shrinkage must be 'auto' or in [0, 1], got {shrinkage!r}")
    times = np.arange(t, dtype=float) if times is None else np.asarray(times, dtype=float)
    if times.shape != (t,):
        raise DataError(f"times has {times.shape} values but trials have {t} time points")
    return times


def pseudo_trials(trials: np.ndarray, n_pseudo: int, rng: np.random.Generator) -> np.ndarray:
    """Average random groups of ``n_pseudo`` repetitions, independently per condition.

    trials (C, R, ...) -> (C, R // n_pseudo, ...).
    """
    c, r = trials.shape[:2]
    p = r // n_pseudo
    order = rng.permuted(np.tile(np.arange(r), (c, 1)), axis=1)[:, :p * n_pseudo]
    picked = trials[np.arange(c)[:, None], order]  # (C, p * n_pseudo, ...)
    return picked.reshape(c, p, n_pseudo, *trials.shape[2:]).mean(axis=2)


def _windowed(x: np.ndarray, window: int | None, mode: str) -> np.ndarray:
    """(..., E, T) -> (..., E', T') features per (window) time point."""
    if window is None or window == 1:
        return x
    t = x.shape[-1]
    starts = range(t - window + 1)
    if mode == "average":
        return np.stack([x[..., s:s + window].mean(-1) for s in starts], axis=-1)
    # 'concat': channels x samples of the window as features
    return np.stack([x[..., s:s + window].reshape(*x.shape[:-2], -1) for s in starts], axis=-1)


def ledoit_wolf_shrinkage(residuals: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrinkage for centred data (..., n_samples, n_features) -> (...).

    Same formula as ``sklearn.covariance.ledoit_wolf_shrinkage(X, assume_centered=True)``,
    batched over leading dimensions.
    """
    n, p = residuals.shape[-2:]
    x2 = residuals ** 2
    emp_trace = x2.sum(-2) / n                                    # (..., p)
    mu = emp_trace.sum(-1) / p
    beta_ = np.einsum("...ni,...nj->...", x2, x2, optimize=True)  # sum((X2^T X2))
    cov = np.einsum("...ni,...nj->...ij", residuals, residuals, optimize=True)
    delta_ = (cov ** 2).sum((-2, -1)) / n ** 2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * emp_trace.sum(-1) + p * mu ** 2) / p
    beta = np.minimum(beta, delta)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(beta == 0, 0.0, beta / np.where(delta == 0, 1.0, delta))


def _whitener(train: np.ndarray, shrinkage: float | str) -> tuple[np.ndarray, np.ndarray]:
    """train (T, C, P_tr, E) -> class means (T, C, E) and Sigma^(-1/2) (T, E, E)."""
    t, c, p, e = train.shape
    means = train.mean(axis=2)
    res = (train - means[:, :, None]).reshape(t, c * p, e)
    cov = np.einsum("tni,tnj->tij", res, res, optimize=True) / (c * p)
    if shrinkage == "auto":
        lam = ledoit_wolf_shrinkage(res)
    else:
        lam = np.full(t, float(shrinkage))
    mu = np.trace(cov, axis1=1, axis2=2) / e
    eye = np.eye(e)
    cov = (1 - lam)[:, None, None] * cov + (lam * mu)[:, None, None] * eye
    vals, vecs = np.linalg.eigh(cov)
    floor = np.maximum(vals.max(-1, keepdims=True) * 1e-10, np.finfo(float).tiny)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(vals, floor))
    return means, np.einsum("tij,tj,tkj->tik", vecs, inv_sqrt, vecs, optimize=True)


def _lda_fold(train: np.ndarray, test: np.ndarray, shrinkage) -> np.ndarray:
    """Number of correct pairwise decisions (T, C, C) for held-out trials test (T, C, P_te, E).

    Entry [t, a, b] counts test trials of condition a assigned to a (not b) by the a-vs-b
    LDA; a tie (trial exactly on the boundary) counts one half.
    """
    means, w = _whitener(train, shrinkage)
    t, c, p_te, e = test.shape
    m = means @ w                                                     # whitened means (T, C, E)
    z = (test.reshape(t, c * p_te, e) @ w).reshape(t, c, p_te, e)     # whitened test trials
    half_norm = 0.5 * np.sum(m * m, axis=-1)                          # (T, C)
    # decision value for "a" vs "b": z.m_a - |m_a|^2/2 - (z.m_b - |m_b|^2/2) > 0, i.e. z is
    # closer to m_a than to m_b in whitened space
    own = np.sum(z * m[:, :, None, :], axis=-1) - half_norm[:, :, None]              # (T, C, P_te)
    other = (z.reshape(t, c * p_te, e) @ np.swapaxes(m, 1, 2)).reshape(t, c, p_te, c)
    other -= half_norm[:, None, None, :]
    own = own[..., None]
    return (other < own).sum(2) + 0.5 * (other == own).sum(2)


def _svm_fold(train: np.ndarray, test: np.ndarray, svm_c: float) -> np.ndarray:
    """As :func:`_lda_fold` with one linear SVM per pair and time point (slow reference)."""
    from sklearn.svm import SVC

    t, c, p_tr, e = train.shape
    p_te = test.shape[2]
    correct = np.zeros((t, c, c))
    y = np.r_[np.zeros(p_tr), np.ones(p_tr)]
    iu = triu_indices(c)
    for ti in range(t):
        for a, b in zip(*iu):
            clf = SVC(kernel="linear", C=svm_c)
            clf.fit(np.concatenate([train[ti, a], train[ti, b]]), y)
            pred = clf.predict(np.concatenate([test[ti, a], test[ti, b]]))
            correct[ti, a, b] = np.sum(pred[:p_te] == 0)
            correct[ti, b, a] = np.sum(pred[p_te:] == 1)
    return correct


def decoding_rdm(trials: Any, *, n_pseudo: int = 5, n_folds: int = 4, n_permutations: int = 10,
                 window: int | None = None, window_mode: str = "concat", engine: str = "lda",
                 shrinkage: float | str = "auto", svm_c: float = 1.0, seed: int = 0,
                 times: Sequence[float] | None = None,
                 descriptors: dict | None = None) -> RDMs:
    """Time-resolved pairwise-decoding RDMs.

    Args:
        trials: (n_conditions, n_repetitions, n_channels, n_times), or a NeuralDataset with
            repetitions (its times, subject and image concepts/ids become descriptors).
        n_pseudo: repetitions averaged into one pseudo-trial.
        n_folds: cross-validation folds over each condition's pseudo-trials (>= 2).
            Needs n_repetitions >= n_folds * n_pseudo.
        n_permutations: random pseudo-trial assignments, averaged.
        window: None (each time point alone) or w samples: features of samples t..t+w-1,
            either concatenated (``window_mode='concat'``, n_channels * w features) or
            averaged (``'average'``); gives n_times - w + 1 RDMs.
        engine: 'lda' (fast, all pairs at once) or 'svm' (scikit-learn reference).
        shrinkage: 'auto' (Ledoit-Wolf) or a value in [0, 1] for the LDA covariance.
        svm_c: C of the SVM engine (data are first divided by their overall standard
            deviation, so C does not depend on the unit, e.g. volts vs microvolts).
        seed: seeds the pseudo-trial assignments (both engines draw identical ones).
        times: (n_times,) time stamps for the 'time' descriptor (window: the mean of the
            window's times); default sample indices.
        descriptors: extra RDM descriptors, e.g. {'subject': 1}.

    Returns:
        RDMs with one RDM per time point (descriptor 'time'), values = accuracy in [0, 1]
        (0.5 = chance); ``.square()`` is (n_times, n_conditions, n_conditions).
    """
    condition_descriptors = None
    if hasattr(trials, "repetitions") and hasattr(trials, "responses"):  # a NeuralDataset
        trials, times, descriptors, condition_descriptors = _from_dataset(trials, times, descriptors)
    x = _as_trials(trials)
    c, r, e, t = x.shape
    if engine not in ENGINES:
        raise ConfigError(f"unknown decoding engine {engine!r}: use 'lda' or 'svm'")
    if int(n_pseudo) < 1 or int(n_folds) < 2 or int(n_permutations) < 1:
        raise ConfigError(f"need n_pseudo >= 1, n_folds >= 2, n_permutations >= 1 (got "
                          f"{n_pseudo}, {n_folds}, {n_permutations})")
    if r < n_folds * n_pseudo:
        raise DataError(f"{r} repetitions per condition are too few for n_folds={n_folds} x "
                        f"n_pseudo={n_pseudo} (needs >= {n_folds * n_pseudo}): lower n_pseudo "
                        f"(repetitions averaged per pseudo-trial) to <= {r // n_folds} or "
                        f"n_folds to <= {max(r // n_pseudo, 1)}")
    if window is not None and not 1 <= int(window) <= t:
        raise ConfigError(f"window must be between 1 and n_times={t}, got {window}")
    if window_mode not in ("concat", "average"):
        raise ConfigError(f"window_mode must be 'concat' or 'average', got {window_mode!r}")
    times = _checked_times(shrinkage, times, t)
    w = 1 if window is None else int(window)
    times_out = np.convolve(times, np.ones(w) / w, mode="valid")
    # float64 accumulator (T', C, C) + float64 trials + pseudo-trials (window-concatenated features)
    e_out = e * (w if window_mode == "concat" else 1)
    check_memory(8.0 * (len(times_out) * c * c + c * r * e * t + c * (r // n_pseudo) * e_out * len(times_out)),
                 f"decoding RDMs of {c} conditions x {len(times_out)} time points",
                 "decode fewer conditions or time points, a smaller window, or window_mode='average'")

    if engine == "svm":  # one global scale (EEG in volts is ~1e-6), so svm_c means the same for any unit
        scale = x.std()
        x = x / scale if scale > 0 else x
    rng = numpy_rng(seed)
    p = r // n_pseudo
    # the per-time-point products are tiny (E x C): multi-threaded BLAS only adds overhead
    with threadpool_limits(limits=1, user_api="blas"):
        acc = _decode(x, rng, p, n_pseudo, n_folds, n_permutations, window, window_mode, engine,
                      shrinkage, svm_c, len(times_out))
    iu = triu_indices(c)
    desc = {"time": times_out}
    desc.update(descriptors or {})
    return RDMs(acc[:, iu[0], iu[1]], c, descriptors=desc, condition_descriptors=condition_descriptors,
                measure="decoding_accuracy")


def _from_dataset(ds, times, descriptors):
    """A NeuralDataset -> its repetitions, times, subject and image descriptors."""
    if ds.repetitions is None:
        raise DataError("this dataset holds only averaged responses: decoding needs single "
                        "repetitions (n_images, n_repetitions, n_channels, n_times); use "
                        "correlation_rdm_eeg(dataset.responses) instead")
    if times is None and getattr(ds, "times", None) is not None:
        times = ds.times
    desc = {} if getattr(ds, "subject", None) is None else {"subject": ds.subject}
    desc.update(descriptors or {})
    cond = {"concept": ds.concepts}
    if getattr(ds, "stimulus_ids", None) is not None:
        cond["stimulus"] = ds.stimulus_ids
    return ds.repetitions, times, desc, cond


def _decode(x, rng, p, n_pseudo, n_folds, n_permutations, window, window_mode, engine, shrinkage,
            svm_c, n_out) -> np.ndarray:
    """Accuracy (T', C, C) averaged over permutations and folds."""
    c = x.shape[0]
    folds = np.array_split(np.arange(p), n_folds)
    correct = np.zeros((n_out, c, c))
    total = 0
    for _ in range(int(n_permutations)):
        pt = _windowed(pseudo_trials(x, n_pseudo, rng), window, window_mode)  # (C, P, E', T')
        pt = np.ascontiguousarray(np.moveaxis(pt, -1, 0))                     # (T', C, P, E')
        for test_idx in folds:
            train_idx = np.setdiff1d(np.arange(p), test_idx)
            train, test = pt[:, :, train_idx], pt[:, :, test_idx]
            if engine == "lda":
                # time points in blocks: the decision array is (T, C, P_te, C) float64
                step = max(1, int(_LDA_BLOCK_BYTES // (8 * c * c * len(test_idx))))
                for s in range(0, n_out, step):
                    correct[s:s + step] += _lda_fold(train[s:s + step], test[s:s + step], shrinkage)
            else:
                correct += _svm_fold(train, test, svm_c)
            total += len(test_idx)
    return 0.5 * (correct + np.swapaxes(correct, 1, 2)) / total


def correlation_rdm_eeg(data: Any, *, times: Sequence[float] | None = None,
                        descriptors: dict | None = None) -> RDMs:
    """1 - Pearson r across channels between conditions, per time point.

    data: (n_conditions, n_repetitions, n_channels, n_times) (repetitions are averaged) or
        averaged (n_conditions, n_channels, n_times).
    Returns RDMs with one RDM per time point (descriptor 'time').
    """
    x = np.asarray(data.detach().cpu().numpy() if hasattr(data, "detach") else data, np.float64)
    if x.ndim == 4:
        x = _as_trials(x).mean(axis=1)
    if x.ndim != 3:
        raise DataError(f"EEG data must be (n_conditions, n_channels, n_times) or with repetitions "
                        f"(n_conditions, n_repetitions, n_channels, n_times), got {x.shape}")
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=(1, 2)))
        raise DataError(f"EEG data contain NaN/inf for condition(s) {bad[:10].tolist()}")
    c, e, t = x.shape
    z = np.moveaxis(x, -1, 0)                       # (T, C, E)
    z = z - z.mean(-1, keepdims=True)
    norm = np.linalg.norm(z, axis=-1)
    if (norm == 0).any():
        ti, ci = np.argwhere(norm == 0)[0]
        raise DataError(f"condition {ci} has the same value on every channel at time index {ti}: "
                        "correlation across channels is undefined there")
    z = z / norm[..., None]
    sim = np.einsum("tce,tke->tck", z, z, optimize=True)
    iu = triu_indices(c)
    times = np.arange(t, dtype=float) if times is None else np.asarray(times, float)
    desc = {"time": times}
    desc.update(descriptors or {})
    return RDMs(1.0 - sim[:, iu[0], iu[1]], c, descriptors=desc, measure="correlation")
