"""Model / fMRI RDMs from features, computed through float64 Gram matrices.

Two ways to stream a large feature matrix X (n_images, n_features) without holding it
(in float64, or at all) in memory:

* ``RDMAccumulator.update(indices, batch)`` -- image batches with complete features, as
  feature extraction produces them. Every pair of images needs both rows, so the rows must
  be kept somewhere: they are normalised on arrival (a few rows at a time in float64:
  centred + unit norm for correlation) and kept in their own dtype (float32 stays float32)
  in memory or, when they do not fit the memory budget (``max_memory_bytes``, or a
  :class:`MemoryBudget` shared by several accumulators), in an unnamed temporary file
  written and read with plain file I/O (the page cache holds them, not the process, so
  they do not count in its RSS as memory-mapped pages would); ``result()`` forms the
  float64 Gram feature chunk by feature chunk, so no float64 copy of the whole matrix
  ever exists.
* ``RDMAccumulator.update_features(batch)`` -- feature chunks with all images (e.g. one
  channel block of a huge layer at a time). Here nothing but the (n, n) float64 Gram
  matrix and per-image sums is kept: X X^T = sum_k X_k X_k^T exactly.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, DataError, ResourceError
from ..resources import check_memory
from .rdms import RDMs, triu_indices

__all__ = ["rdm", "RDMAccumulator", "MemoryBudget", "METHODS"]

METHODS = ("correlation", "cosine", "euclidean", "sqeuclidean")
_CHUNK_BYTES = 64 * 2**20  # float64 working set per matmul operand
_ROW_BLOCK_BYTES = 16 * 2**20  # float64 working set when normalising incoming rows


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on an accelerator
        x = x.detach()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):  # no NumPy bfloat16
            x = x.float()
        return x.numpy() if x.device.type == "cpu" else x.to("cpu").numpy()
    return np.asarray(x)


class _Matmul:
    """float64 products on the chosen device: torch on a GPU; NumPy on the CPU, with BLAS
    limited to one thread (multi-threaded OpenBLAS stalls when cores are oversubscribed:
    measured 1.5 s vs 0.3 s for a 200 x 200704 Gram on a busy 2-core machine), and NumPy's
    ``a @ a.T`` uses the half-cost symmetric kernel (syrk). Inputs may be float32 and
    strided; the float64 conversion happens on the backend."""

    def __init__(self, device):
        self.torch, self.device = None, None
        if device is None or str(device) != "cpu":
            try:
                import torch
            except ImportError:  # numpy-only install: CPU
                return
            from ..device import resolve_device

            dev = resolve_device(device)
            if dev.type != "cpu":
                self.torch, self.device = torch, dev

    def _to64(self, a: np.ndarray):
        if self.torch is None:
            return np.asarray(a, dtype=np.float64)
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)
        return self.torch.from_numpy(a).to(device=self.device, dtype=self.torch.float64)

    def __call__(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """a (m, f) @ b (k, f).T (b defaults to a) -> float64 (m, k)."""
        ta = self._to64(a)
        tb = ta if b is None else self._to64(b)
        if self.torch is None:
            with threadpool_limits(limits=1, user_api="blas"):
                return ta @ tb.T
        return (ta @ tb.T).cpu().numpy()

    def centred_gram(self, chunk: np.ndarray, row_shift: np.ndarray | None,
                     centre_columns: bool) -> tuple[np.ndarray, np.ndarray]:
        """Gram (n, n) and row sums (n,) of a feature chunk (n, f) after subtracting
        ``row_shift`` per row and/or each column's mean, all in float64."""
        if self.torch is None:
            t = chunk.astype(np.float64)  # always a copy, so the in-place steps are safe
            if row_shift is not None:
                t -= row_shift[:, None]
            if centre_columns:
                t -= t.mean(0, keepdims=True)
            with threadpool_limits(limits=1, user_api="blas"):
                return t @ t.T, t.sum(1)
        t = self._to64(chunk)
        if row_shift is not None:
            t = t - self.torch.from_numpy(np.ascontiguousarray(row_shift)).to(t.device)[:, None]
        if centre_columns:
            t = t - t.mean(0, keepdim=True)
        gram, sums = t @ t.T, t.sum(1)
        return gram.cpu().numpy(), sums.cpu().numpy()


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ConfigError(f"unknown RDM method {method!r}: use one of {', '.join(METHODS)}")
    return method


def _name_images(idx: np.ndarray, limit: int = 10) -> str:
    idx = np.asarray(idx).ravel()
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in total)" if len(idx) > limit else "")


def _check_finite(chunk: np.ndarray, rows: np.ndarray) -> None:
    bad = ~np.isfinite(chunk).all(axis=1)
    if bad.any():
        raise DataError(f"features contain NaN or inf for image(s) {_name_images(rows[bad])}: "
                        "fix the feature extraction or drop those images")


def _gram_to_rdm(gram: np.ndarray, method: str, n_features: int) -> np.ndarray:
    """(n, n) float64 Gram of the method's normalised rows -> (n_pairs,) dissimilarities."""
    iu = triu_indices(gram.shape[0])
    if method in ("correlation", "cosine"):
        norm = np.sqrt(np.diag(gram))
        return 1.0 - gram[iu] / (norm[iu[0]] * norm[iu[1]])
    sq = np.diag(gram)
    d2 = np.maximum(sq[iu[0]] + sq[iu[1]] - 2.0 * gram[iu], 0.0)
    return np.sqrt(d2) if method == "euclidean" else d2


def rdm(features: Any, method: str = "correlation", *, descriptors: Mapping[str, Any] | None = None,
        condition_descriptors: Mapping[str, Any] | None = None, device: Any = None) -> RDMs:
    """One RDM from features (n_images, n_features) (extra dims are flattened).

    method:
        'correlation' (default) 1 - Pearson r between images' feature vectors;
        'cosine' 1 - cosine similarity;
        'euclidean' ||x_i - x_j||;
        'sqeuclidean' ||x_i - x_j||^2.
        rsatoolbox's ``calc_rdm(method='euclidean')`` is 'sqeuclidean' / n_features.

    Works in float64 on feature chunks, so float32 input is never copied whole to float64.
    device: where the Gram products run (None/'auto': CUDA if available, see
    brainalign.device.resolve_device); the result is the same float64 RDM.
    Raises DataError for NaN/inf (naming images) and, for 'correlation', constant images
    (zero variance) or, for 'cosine', all-zero images.
    Returns RDMs with one RDM of (n_images * (n_images - 1) / 2,) values.
    """
    method = _check_method(method)
    x = _to_numpy(features)
    if x.ndim < 2:
        raise DataError(f"features must be (n_images, n_features), got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    if x.shape[0] < 2:
        raise DataError(f"an RDM needs at least 2 images, got {x.shape[0]}")
    n, f = x.shape
    # one pass for the exact row sums: they find NaN/inf rows and give exact means, so the
    # Gram is of centred rows (no cancellation) and constant rows have exactly zero norm
    rowsum = np.sum(x, axis=1, dtype=np.float64)
    bad = ~np.isfinite(rowsum)
    if bad.any():
        raise DataError(f"features contain NaN or inf for image(s) {_name_images(np.flatnonzero(bad))}: "
                        "fix the feature extraction or drop those images")
    mm = _Matmul(device)
    shift = rowsum / f if method == "correlation" else None
    gram = np.zeros((n, n))
    chunk = max(256, _CHUNK_BYTES // (8 * n))
    for start in range(0, f, chunk):
        g, _ = mm.centred_gram(x[:, start:start + chunk], shift,
                               centre_columns=method in ("euclidean", "sqeuclidean"))
        gram += g
    zero = np.diag(gram) == 0
    if method == "correlation":
        # a constant row centres to ~0: exactly for float32 input; within rounding of the mean
        # (a few ulps of it per feature) for float64
        const = np.diag(gram) <= f * (16 * np.finfo(np.float64).eps * np.abs(shift)) ** 2
        if const.any():
            raise DataError(_constant_message(np.flatnonzero(const)))
    if method == "cosine" and zero.any():
        raise DataError(_zero_message(np.flatnonzero(zero)))
    return RDMs(_gram_to_rdm(gram, method, f)[None], n, descriptors=descriptors,
                condition_descriptors=condition_descriptors, measure=method)


def _constant_message(idx) -> str:
    return (f"image(s) {_name_images(idx)} have constant features (zero variance): correlation "
            "distance is undefined; drop them or use method='euclidean'")


def _zero_message(idx) -> str:
    return (f"image(s) {_name_images(idx)} have all-zero features: cosine distance is undefined; "
            "drop them or use method='euclidean'")


class MemoryBudget:
    """Bytes of stored rows that the accumulators sharing this budget may keep in memory.

    Each accumulator claims its rows' size (n_images x n_features x itemsize) on its first
    batch; a claim that does not fit spills that accumulator's rows to disk instead, and
    ``result()`` / ``close()`` give the claim back. One budget for all layers of a model
    bounds the rows a model holds, whatever its number of layers.
    """

    def __init__(self, nbytes: int):
        if int(nbytes) < 0:
            raise ConfigError(f"a memory budget must be >= 0 bytes, got {nbytes}")
        self.total = int(nbytes)
        self.used = 0

    def claim(self, nbytes: int) -> bool:
        """Reserve ``nbytes`` if they fit (True), else reserve nothing (False)."""
        if self.used + nbytes > self.total:
            return False
        self.used += nbytes
        return True

    def release(self, nbytes: int) -> None:
        self.used = max(0, self.used - int(nbytes))


class _RowFile:
    """(n_rows, n_features) rows in an unnamed temporary file (deleted by the OS when closed,
    also when the process dies), written row by row and read back as column chunks."""

    def __init__(self, n_rows: int, n_features: int, dtype, tmp_dir: str | None):
        self.shape, self.dtype = (n_rows, n_features), np.dtype(dtype)
        self.row_bytes = n_features * self.dtype.itemsize
        self.tmp_dir = tmp_dir or tempfile.gettempdir()
        try:
            self._file = tempfile.TemporaryFile(prefix="brainalign_rdm_", dir=tmp_dir)
        except OSError as exc:
            raise ResourceError(f"cannot create a temporary file for feature rows in {self.tmp_dir}: "
                                f"{exc.strerror or exc}; give tmp_dir= a writable folder (or set TMPDIR)") from exc
        self._fd = self._file.fileno()

    def write(self, idx: np.ndarray, rows: np.ndarray) -> None:
        """Store ``rows`` (b, n_features) at row positions ``idx`` (b,)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        try:
            for i, row in zip(idx, rows):
                view, offset = memoryview(row).cast("B"), int(i) * self.row_bytes
                while len(view):  # pwrite may write less than asked
                    done = os.pwrite(self._fd, view, offset)
                    view, offset = view[done:], offset + done
        except OSError as exc:
            self.close()
            raise ResourceError(f"cannot write feature rows to a temporary file in {self.tmp_dir} "
                                f"({exc.strerror or exc}; {_gib(self.shape[0] * self.row_bytes)} needed): free disk "
                                "space there or give tmp_dir= (or TMPDIR) a folder with room") from exc

    def read_columns(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Columns [start, stop) of every row: (n_rows, stop - start), into ``out`` if given."""
        if out is None or out.shape[1] != stop - start:
            out = np.empty((self.shape[0], stop - start), self.dtype)
        for i in range(self.shape[0]):
            view, offset = memoryview(out[i]).cast("B"), i * self.row_bytes + start * self.dtype.itemsize
            while len(view):
                done = os.preadv(self._fd, [view], offset)
                if done == 0:
                    raise DataError("the temporary file of feature rows was truncated while in use")
                view, offset = view[done:], offset + done
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


class RDMAccumulator:
    """Builds one RDM over ``n_images`` images from streamed features.

    Use either image batches (``update``) or feature chunks (``update_features``), not both.

    Args:
        n_images: number of images (rows of the RDM).
        method: see :func:`rdm`.
        max_memory_bytes: image-batch mode keeps normalised rows (n_images x n_features in
            the features' dtype); rows that do not fit this many bytes go to an unnamed
            temporary file in ``tmp_dir`` (default: the system's temporary folder) instead
            of memory. An int, or a :class:`MemoryBudget` shared with other accumulators.
        descriptors / condition_descriptors: passed to the resulting :class:`RDMs`.
        device: where the float64 Gram products run (None/'auto': CUDA if available).

    Example::

        acc = RDMAccumulator(200, "correlation")
        for idx, batch in batches:            # idx (b,) image indices, batch (b, n_features)
            acc.update(idx, batch)
        rdms = acc.result()                   # RDMs, .square() -> (1, 200, 200)
    """

    def __init__(self, n_images: int, method: str = "correlation", *,
                 max_memory_bytes: "int | MemoryBudget" = 512 * 2**20, tmp_dir: str | None = None,
                 descriptors: Mapping[str, Any] | None = None,
                 condition_descriptors: Mapping[str, Any] | None = None, device: Any = None):
        if int(n_images) < 2:
            raise ConfigError(f"n_images must be >= 2, got {n_images}")
        self.n_images = int(n_images)
        # the float64 Gram matrix plus the float64 result vector
        check_memory(12.0 * self.n_images**2, f"an RDM of {self.n_images} images",
                     "compute RDMs on fewer images (a subset of the stimuli)")
        self.method = _check_method(method)
        self.budget = (max_memory_bytes if isinstance(max_memory_bytes, MemoryBudget)
                       else MemoryBudget(max_memory_bytes))
        self.tmp_dir = tmp_dir
        self._descriptors = descriptors
        self._condition_descriptors = condition_descriptors
        self._gram = np.zeros((self.n_images, self.n_images))
        self._matmul = _Matmul(device)
        self._mode: str | None = None
        self._n_features: int | None = None
        # image mode
        self._rows: np.ndarray | None = None  # in memory, or:
        self._spill: _RowFile | None = None  # on disk
        self._claimed = 0  # bytes of self.budget held by self._rows
        self._dtype: np.dtype | None = None
        self._seen = np.zeros(self.n_images, bool)
        self._closed = False
        self._offset: np.ndarray | None = None
        # feature mode
        self._shift: np.ndarray | None = None
        self._min = np.full(self.n_images, np.inf)
        self._max = np.full(self.n_images, -np.inf)
        self._rowsum = np.zeros(self.n_images)
        self._features_seen = 0

    # --- image batches ---------------------------------------------------------------------
    def update(self, indices: Any, batch: Any) -> None:
        """Add images ``indices`` (b,) with features ``batch`` (b, n_features) (or (b, ...))."""
        self._check_open()
        self._set_mode("images")
        idx = np.asarray(_to_numpy(indices)).astype(np.int64).ravel()
        x = _to_numpy(batch)
        x = x.reshape(x.shape[0], -1) if x.ndim >= 2 else x.reshape(1, -1)
        if len(idx) != x.shape[0]:
            raise DataError(f"{len(idx)} indices for a batch of {x.shape[0]} images")
        if len(idx) == 0:
            return
        if idx.min() < 0 or idx.max() >= self.n_images:
            raise DataError(f"image indices must be in [0, {self.n_images}), got "
                            f"{_name_images(idx[(idx < 0) | (idx >= self.n_images)])}")
        if len(np.unique(idx)) != len(idx) or self._seen[idx].any():
            dup = idx[self._seen[idx]] if self._seen[idx].any() else idx
            raise DataError(f"image(s) {_name_images(np.unique(dup))} given twice: each image once")
        if self._n_features is None:
            self._n_features = x.shape[1]
            self._alloc_rows(x.shape[1], np.float64 if x.dtype == np.float64 else np.float32)
        elif x.shape[1] != self._n_features:
            raise DataError(f"batch has {x.shape[1]} features, earlier batches had {self._n_features}")
        # a few rows at a time, so the float64 working copy stays small whatever the batch
        step = max(1, _ROW_BLOCK_BYTES // (8 * x.shape[1]))
        for start in range(0, len(idx), step):
            rows = self._normalise_rows(x[start:start + step], idx[start:start + step])
            if self._spill is not None:
                try:
                    self._spill.write(idx[start:start + step], rows)
                except ResourceError:
                    self.close()  # nothing half-written stays behind
                    raise
            else:
                self._rows[idx[start:start + step]] = rows
        self._seen[idx] = True

    def _alloc_rows(self, n_features: int, dtype) -> None:
        nbytes = self.n_images * n_features * np.dtype(dtype).itemsize
        if self.budget.claim(nbytes):
            self._rows, self._claimed = np.zeros((self.n_images, n_features), dtype), nbytes
        else:  # over the budget: plain file writes now, column chunks read back in result()
            self._spill = _RowFile(self.n_images, n_features, dtype, self.tmp_dir)
        self._dtype = np.dtype(dtype)

    def _normalise_rows(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows (b, n_features) -> the method's normalised rows in the stored dtype."""
        x64 = np.asarray(x, dtype=np.float64)
        _check_finite(x64, idx)
        if self.method == "correlation":
            x64 = x64 - x64.mean(axis=1, keepdims=True)
            const = np.ptp(x, axis=1) == 0
            if const.any():
                raise DataError(_constant_message(idx[const]))
        if self.method in ("correlation", "cosine"):
            norm = np.linalg.norm(x64, axis=1, keepdims=True)
            if (norm == 0).any():
                raise DataError(_zero_message(idx[norm[:, 0] == 0]))
            x64 = x64 / norm
        else:  # translation-invariant: remove the first batch's feature means (less cancellation)
            if self._offset is None:
                self._offset = x64.mean(axis=0)
            x64 = x64 - self._offset
        return x64.astype(self._dtype, copy=False)

    # --- feature chunks --------------------------------------------------------------------
    def update_features(self, batch: Any) -> None:
        """Add a chunk of features for all images: ``batch`` (n_images, f_chunk)."""
        self._set_mode("features")
        x = _to_numpy(batch)
        x = x.reshape(x.shape[0], -1)
        if x.shape[0] != self.n_images:
            raise DataError(f"a feature chunk must hold all {self.n_images} images, got {x.shape[0]}")
        _check_finite(x, np.arange(self.n_images))
        self._min = np.minimum(self._min, x.min(axis=1))
        self._max = np.maximum(self._max, x.max(axis=1))
        if self.method == "correlation" and self._shift is None:
            # a per-image shift near the mean keeps the centring formula free of cancellation
            self._shift = np.mean(x, axis=1, dtype=np.float64)
        gram, sums = self._matmul.centred_gram(
            x, self._shift if self.method == "correlation" else None,
            centre_columns=self.method in ("euclidean", "sqeuclidean"))  # distances ignore translation
        self._gram += gram
        self._rowsum += sums
        self._features_seen += x.shape[1]

    # --- result ----------------------------------------------------------------------------
    def _set_mode(self, mode: str) -> None:
        if self._mode is None:
            self._mode = mode
        elif self._mode != mode:
            raise ConfigError("RDMAccumulator: use either update() (image batches) or "
                              "update_features() (feature chunks), not both")

    def result(self) -> RDMs:
        """The RDM as :class:`RDMs` (one RDM); DataError if images or features are missing."""
        if self._mode is None:
            raise DataError("RDMAccumulator.result() called before any update()")
        if self._mode == "images":
            self._check_open()
        gram = self._gram
        if self._mode == "images":
            if not self._seen.all():
                raise DataError(f"features missing for image(s) {_name_images(np.flatnonzero(~self._seen))}"
                                f": update() every one of the {self.n_images} images first")
            # one float64 pass over the stored rows, feature chunk by feature chunk (contiguous
            # slabs, so a disk-backed array streams); syrk halves the work of X X^T
            chunk = max(256, _CHUNK_BYTES // (8 * self.n_images))
            gram = np.zeros((self.n_images, self.n_images))
            buf = None
            for start in range(0, self._n_features, chunk):
                stop = min(start + chunk, self._n_features)
                if self._spill is not None:
                    block = buf = self._spill.read_columns(start, stop, buf)
                else:
                    block = self._rows[:, start:stop]
                gram += self._matmul(block)
            self.close()
        else:
            n_feat = self._features_seen
            if self.method == "correlation":
                const = self._max == self._min
                if const.any():
                    raise DataError(_constant_message(np.flatnonzero(const)))
                mean = self._rowsum / n_feat  # residual mean after the shift
                gram = gram - n_feat * np.outer(mean, mean)
            if self.method == "cosine":
                zero = (self._max == 0) & (self._min == 0)
                if zero.any():
                    raise DataError(_zero_message(np.flatnonzero(zero)))
        vec = _gram_to_rdm(gram, self.method, self._n_features or self._features_seen)
        return RDMs(vec[None], self.n_images, descriptors=self._descriptors,
                    condition_descriptors=self._condition_descriptors, measure=self.method)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this RDMAccumulator's rows were freed (result() or close() was called, or writing "
                              "them to disk failed): start a new RDMAccumulator")

    def close(self) -> None:
        """Free the stored rows: memory (back to the budget) or the temporary file (called
        by result())."""
        self._closed = self._mode == "images"
        self._rows = None
        self.budget.release(self._claimed)
        self._claimed = 0
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
