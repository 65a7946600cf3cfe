"""Time-series preprocessing shared by the data model, every loader and the synthetic brain.

Channel selection by name, the time-unit check and time windows (seconds), and z-scoring
('feature' or 'global'), so every source has exactly the same semantics.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError, suggest

# The 17 occipital/parietal channels ReAlnet uses (THINGS-EEG2 preprocessed release).
DEFAULT_CHANNELS = ("O1", "Oz", "O2", "PO7", "PO3", "POz", "PO4", "PO8",
                    "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8")
DEFAULT_TIME_WINDOW = (0.0, 0.2)
_EPS_T = 1e-6  # tolerance for float time stamps such as 0.19999999
# Epochs are stimulus-locked: no modality brainalign reads has responses 30 s after onset,
# so larger, sample-spaced time stamps are milliseconds (-200 .. 790) given as seconds.
MAX_EPOCH_SECONDS = 30.0
ZSCORE_MODES = ("feature", "global")


def check_times(times, source: str = "times") -> np.ndarray:
    """Time stamps as float64 seconds (n_times,); DataError for ms, NaN or unsorted values.

    The one check of time units: every dataset and every window selection goes through it.
    """
    t = np.asarray(times, dtype=np.float64).ravel()
    if not np.isfinite(t).all():
        raise DataError(f"{source}: times contain NaN/Inf values; give finite time stamps in seconds")
    if t.size > 1 and not (np.diff(t) > 0).all():
        raise DataError(f"{source}: times must increase strictly (got {t[:4].tolist()}...); give one time stamp "
                        "per sample, in seconds, in recording order")
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    if t.size and np.max(np.abs(t)) > MAX_EPOCH_SECONDS and step >= 0.5:
        raise DataError(f"{source}: times run {t[0]:g} .. {t[-1]:g} with step {step:g}, which looks like "
                        "milliseconds, but brainalign's times are in seconds from stimulus onset; divide them by "
                        "1000 (e.g. times=np.asarray(times) / 1000)")
    return t


def zscore_mode(zscore) -> str | None:
    """'feature' | 'global' | None from a ``zscore`` argument (True -> 'feature', False -> None)."""
    if zscore is True:
        return "feature"
    if zscore is False or zscore is None:
        return None
    if isinstance(zscore, str) and zscore in ZSCORE_MODES:
        return zscore
    raise DataError(f"zscore must be 'feature', 'global' or None (True = 'feature', False = None), got {zscore!r}")


def zscore_stats(trials: np.ndarray, mode: str = "feature") -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of reference trials (n_images, n_repetitions, *response_shape).

    'feature': one mean/std per response feature (e.g. channel x time) over images and
    repetitions, each shaped like one response. 'global': ONE mean and ONE std over every
    value (ReAlnet's scaling), as 0-d arrays. Flat features keep std 1 (no division by 0).
    Works in float64; 'feature' statistics of large inputs (a THINGS-EEG2 training split is
    0.45 GB of float32) are summed a block of trials at a time in the order NumPy sums them,
    so they equal NumPy's bit for bit without a float64 copy of the input.
    """
    if zscore_mode(mode) == "global":
        x = np.asarray(trials, dtype=np.float64)
        mean, std, peak = np.asarray(x.mean()), np.asarray(x.std()), float(np.abs(x).max()) if x.size else 0.0
    else:
        mean, std, peak = _feature_stats(np.asarray(trials))
    tiny = 1e-9 * peak  # relative: MEG values are ~1e-13 T
    std = np.where(std > tiny, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


_STATS_BLOCK_BYTES = 32 * 2**20  # float64 working set of _feature_stats


def _feature_stats(trials: np.ndarray, block_bytes: int = _STATS_BLOCK_BYTES) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, std, max |value|) over axes 0 and 1 in float64, as ``x.mean((0, 1))`` /
    ``x.std((0, 1))`` of ``x = trials.astype(float64)`` give them, a block of rows at a time.

    NumPy reduces the outer axes by adding one row after another into the output; carrying
    the running sum as the first row of the next block keeps that order exactly.
    """
    rows = trials.reshape((-1,) + trials.shape[2:])
    n = rows.shape[0]
    step = max(1, block_bytes // max(1, 8 * int(np.prod(rows.shape[1:]))))
    if n <= step or rows[0].size < 2:  # fits the working set (or one feature, summed pairwise): NumPy
        x = np.asarray(trials, dtype=np.float64)
        return x.mean(axis=(0, 1)), x.std(axis=(0, 1)), float(np.abs(x).max()) if x.size else 0.0

    def running(acc, block):
        return np.add.reduce(np.concatenate([acc[None], block]), axis=0)

    total, peak = np.zeros(rows.shape[1:]), 0.0
    for start in range(0, n, step):
        block = rows[start:start + step].astype(np.float64)
        total, peak = running(total, block), max(peak, float(np.abs(block).max()))
    mean = total / n
    squares = np.zeros(rows.shape[1:])
    for start in range(0, n, step):
        block = rows[start:start + step].astype(np.float64)
        block -= mean
        block *= block
        squares = running(squares, block)
    return mean, np.sqrt(squares / n), peak


def channel_indices(ch_names: Sequence[str], channels: Sequence[str] | None, source: str) -> np.ndarray:
    """Indices of ``channels`` in ``ch_names``, in the requested order (None -> all)."""
    ch_names = [str(c) for c in ch_names]
    if channels is None:
        return np.arange(len(ch_names))
    if isinstance(channels, str):
        channels = [channels]
    channels = [str(c) for c in channels]
    if len(channels) == 0:
        raise DataError(f"empty channel selection for {source}: pass channel names or None for all")
    if len(set(channels)) != len(channels):
        raise DataError(f"duplicate channel names in the selection {channels}: list each channel once")
    lookup = {c: i for i, c in enumerate(ch_names)}
    missing = [c for c in channels if c not in lookup]
    if missing:
        hint = suggest(missing[0], ch_names)
        raise DataError(f"channel(s) {missing} not in ch_names of {source}.{hint} "
                        f"Available channels: {', '.join(ch_names)}")
    return np.array([lookup[c] for c in channels], dtype=int)


def time_indices(times: np.ndarray, window: tuple[float, float] | None, source: str) -> np.ndarray:
    """Indices of samples with ``start <= t < stop`` (seconds); None -> all samples.

    At 100 Hz the default (0.0, 0.2) selects the 20 samples 0.00 .. 0.19 s.
    """
    times = check_times(times, source)
    if window is None:
        return np.arange(len(times))
    try:
        start, stop = (float(window[0]), float(window[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise DataError(f"time_window must be (start, stop) in seconds, got {window!r}") from exc
    if not stop > start:
        raise DataError(f"time_window {window} is empty: stop must be greater than start (seconds)")
    dt = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    lo, hi = times[0], times[-1] + dt
    if start < lo - _EPS_T or stop > hi + _EPS_T:
        raise DataError(f"time_window {window} s lies outside the recording of {source}, which covers "
                        f"{lo:.3f} .. {times[-1]:.3f} s (sampling step {dt:.4f} s): choose a window "
                        "inside that range (times are in seconds, not ms)")
    idx = np.flatnonzero((times >= start - _EPS_T) & (times < stop - _EPS_T))
    if idx.size == 0:
        raise DataError(f"time_window {window} s selects no samples of {source} (step {dt:.4f} s): widen it")
    return idx


def check_trials(arr, source: str, field: str = "preprocessed_eeg_data") -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 4:
        raise DataError(f"{source}: '{field}' must be 4-D (n_images, n_repetitions, n_channels, n_times), "
                        f"got shape {arr.shape}; is this a THINGS-EEG2 preprocessed file?")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{source}: '{field}' must be numeric, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{source}: '{field}' contains {int(bad.sum())} NaN/Inf values (first at index "
                        f"{where}); interpolate or drop those trials before loading")
    return arr


def select_trials(trials: np.ndarray, ch_idx: np.ndarray, t_idx: np.ndarray) -> np.ndarray:
    """(n, reps, C, T) -> (n, reps, len(ch_idx), len(t_idx)) float32, a new array.

    Runs of consecutive indices are sliced (no copy) and the more selective axis goes first,
    so a large file (a THINGS-EEG2 training split: 0.45 GB) is not copied whole before the
    selection shrinks it.
    """
    x = np.asarray(trials)
    ch, ti = _as_slice(ch_idx), _as_slice(t_idx)
    if len(t_idx) * x.shape[2] <= len(ch_idx) * x.shape[3]:
        out = x[..., ti][:, :, ch]
    else:
        out = x[:, :, ch][..., ti]
    return out.astype(np.float32, copy=bool(np.may_share_memory(out, x)))


def _as_slice(idx: np.ndarray):
    """``idx`` as a slice when it is a run of consecutive ascending indices, else as given."""
    idx = np.asarray(idx)
    if idx.ndim == 1 and len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


def check_split(split: str) -> str:
    """'training' | 'train' | 'test' -> the THINGS-EEG2 split name ('training' or 'test')."""
    aliases = {"train": "training", "training": "training", "test": "test"}
    if split not in aliases:
        raise DataError(f"split must be 'training' or 'test', got {split!r}")
    return aliases[split]
