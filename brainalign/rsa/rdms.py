"""The RDM data model: a stack of RDMs stored as upper triangles, with descriptors.

Upper triangles follow ``np.triu_indices(n, 1)`` (row-major, the order of
``scipy.spatial.distance.squareform`` and rsatoolbox), so vectors move between the three
libraries unchanged.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DataError

__all__ = ["RDMs", "stack", "as_rdms", "as_vectors", "n_conditions_from_pairs", "triu_indices"]

_SYM_TOL = 1e-8


def n_conditions_from_pairs(n_pairs: int) -> int:
    """n such that n * (n - 1) / 2 == n_pairs; DataError if there is none."""
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs or n < 2:
        raise DataError(f"{n_pairs} values are not the upper triangle of any square RDM "
                        "(expected n*(n-1)/2 values): pass square (n, n) RDMs or full triangles")
    return n


def triu_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the strict upper triangle, (n_pairs,) each."""
    return np.triu_indices(n, 1)


def _square_to_vectors(mats: np.ndarray, what: str = "RDM") -> np.ndarray:
    """(k, n, n) -> (k, n_pairs) after checking squareness, symmetry and the zero diagonal."""
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise DataError(f"{what} is not square: got shape {mats.shape[1:]}; pass (n, n) matrices, "
                        "(k, n, n) stacks or (k, n*(n-1)/2) upper-triangle vectors")
    n = mats.shape[1]
    if n < 2:
        raise DataError(f"{what} needs at least 2 conditions, got {n}")
    finite = np.isfinite(mats)
    scale = max(1.0, float(np.nanmax(np.abs(mats))) if finite.any() else 1.0)
    asym = np.abs(mats - np.swapaxes(mats, 1, 2))
    bad = np.nan_to_num(asym, nan=0.0) > _SYM_TOL * scale
    if bad.any():
        k, i, j = np.argwhere(bad)[0]
        raise DataError(f"{what} {k} is not symmetric: entry ({i}, {j}) = {mats[k, i, j]:.6g} but "
                        f"({j}, {i}) = {mats[k, j, i]:.6g}; symmetrise it, e.g. (D + D.T) / 2")
    diag = np.abs(np.diagonal(mats, axis1=1, axis2=2))
    if (np.nan_to_num(diag, nan=1.0) > _SYM_TOL * scale).any():
        k, i = np.argwhere(~(diag <= _SYM_TOL * scale))[0]
        raise DataError(f"{what} {k} has a non-zero diagonal (entry ({i}, {i}) = {mats[k, i, i]:.6g}): "
                        "dissimilarity RDMs have zeros on the diagonal; for similarity matrices "
                        "pass 1 - S")
    iu = triu_indices(n)
    return np.ascontiguousarray(mats[:, iu[0], iu[1]], dtype=np.float64)


def as_vectors(x: Any, what: str = "RDM") -> tuple[np.ndarray, int]:
    """Any RDM input -> (vectors (k, n_pairs) float64, n_conditions).

    Accepts :class:`RDMs`, a square (n, n) RDM, a (k, n, n) stack, a (n_pairs,) vector or a
    (k, n_pairs) stack of upper triangles. Arrays with more leading dimensions
    (..., n, n) are not accepted here: reshape them first.
    """
    if isinstance(x, RDMs):
        return x.vectors, x.n_conditions
    if hasattr(x, "dissimilarities") and hasattr(x, "n_cond"):  # an rsatoolbox RDMs
        return np.asarray(x.dissimilarities, dtype=np.float64), int(x.n_cond)
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)  # no copy: callers must not write into the result
    if arr.ndim == 1:
        return arr[None, :], n_conditions_from_pairs(arr.shape[0])
    if arr.ndim == 2:
        if arr.shape[0] == arr.shape[1] and arr.shape[0] > 1 and _looks_square(arr):
            return _square_to_vectors(arr[None], what), arr.shape[0]
        return arr, n_conditions_from_pairs(arr.shape[1])
    if arr.ndim == 3:
        return _square_to_vectors(arr, what), arr.shape[1]
    raise DataError(f"{what} has shape {arr.shape}: expected (n, n), (k, n, n), (n_pairs,) or "
                    "(k, n_pairs)")


def _looks_square(arr: np.ndarray) -> bool:
    """Is a 2-D (m, m) array one square RDM rather than m upper-triangle vectors?

    Only ambiguous when m is itself a triangle number (3, 6, 10, ...): then a zero diagonal
    means a square RDM (its symmetry is checked next), anything else a vector stack.
    """
    m = arr.shape[0]
    n = int(round((1 + np.sqrt(1 + 8 * m)) / 2))
    if n * (n - 1) // 2 != m:
        return True
    return bool(np.all(np.diagonal(arr) == 0))


def _as_descriptor_dict(desc: Mapping[str, Any] | None, n: int, what: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, val in (desc or {}).items():
        if np.isscalar(val) or val is None:
            arr = np.array([val] * n)
        else:
            arr = np.asarray(val)
            if arr.ndim != 1 or arr.shape[0] != n:
                raise DataError(f"{what} descriptor {key!r} has {arr.shape[0] if arr.ndim else 1} "
                                f"values: give one value per {'RDM' if what == 'rdm' else 'condition'}"
                                f" ({n})")
        out[str(key)] = arr
    return out


class RDMs:
    """A stack of RDMs over the same conditions.

    Attributes:
        vectors: float64 (n_rdms, n_pairs) upper triangles (``np.triu_indices(n, 1)`` order).
        n_conditions: n.
        descriptors: dict of (n_rdms,) arrays, e.g. subject, layer, time, roi, model.
        condition_descriptors: dict of (n_conditions,) arrays, e.g. image names, concepts.
        measure: what the values are ('correlation', 'decoding_accuracy', ...).

    NaN values are allowed (e.g. missing pairs); comparisons handle them through their
    ``nan_policy``. Build from square matrices with :meth:`from_square`, which checks that
    they are square, symmetric and zero on the diagonal.
    """

    def __init__(self, vectors: Any, n_conditions: int | None = None, *,
                 descriptors: Mapping[str, Any] | None = None,
                 condition_descriptors: Mapping[str, Any] | None = None,
                 measure: str | None = None):
        vec, n = as_vectors(vectors)
        vec = np.array(vec, dtype=np.float64)  # own copy: the caller's array may change later
        if n_conditions is not None and int(n_conditions) != n:
            raise DataError(f"RDM vectors describe {n} conditions but n_conditions={n_conditions}")
        self.vectors = vec
        self.n_conditions = n
        self.descriptors = _as_descriptor_dict(descriptors, vec.shape[0], "rdm")
        self.condition_descriptors = _as_descriptor_dict(condition_descriptors, n, "condition")
        self.measure = measure

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_square(cls, matrices: Any, **kwargs) -> "RDMs":
        """From (n, n) or (k, n, n) square RDMs; DataError if not square, symmetric, zero-diagonal."""
        arr = np.asarray(matrices, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise DataError(f"square RDMs must be (n, n) or (k, n, n), got shape {arr.shape}")
        return cls(_square_to_vectors(arr), arr.shape[1], **kwargs)

    # --- views ----------------------------------------------------------------------------
    @property
    def n_rdms(self) -> int:
        return self.vectors.shape[0]

    @property
    def n_pairs(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return self.n_rdms

    def square(self) -> np.ndarray:
        """(n_rdms, n, n) float64 with zero diagonals."""
        n = self.n_conditions
        out = np.zeros((self.n_rdms, n, n))
        iu = triu_indices(n)
        out[:, iu[0], iu[1]] = self.vectors
        out[:, iu[1], iu[0]] = self.vectors
        return out

    def __getitem__(self, index) -> "RDMs":
        """Select RDMs by int, slice, boolean mask or index array (always returns RDMs)."""
        idx = np.arange(self.n_rdms)[index]
        idx = np.atleast_1d(idx)
        return RDMs(self.vectors[idx], self.n_conditions,
                    descriptors={k: v[idx] for k, v in self.descriptors.items()},
                    condition_descriptors=self.condition_descriptors, measure=self.measure)

    def subset(self, **selection) -> "RDMs":
        """RDMs whose descriptors match, e.g. ``subset(subject=1, layer=['V1', 'IT'])``."""
        mask = np.ones(self.n_rdms, bool)
        for key, want in selection.items():
            if key not in self.descriptors:
                raise DataError(f"no RDM descriptor {key!r}; available: {sorted(self.descriptors)}")
            want_list = [want] if np.isscalar(want) or want is None else list(want)
            mask &= np.array([v in want_list for v in self.descriptors[key].tolist()], bool)
        if not mask.any():
            raise DataError(f"no RDM matches {selection}; available values: "
                            + ", ".join(f"{k}={np.unique(self.descriptors[k])[:10].tolist()}"
                                        for k in selection))
        return self[mask]

    def subset_conditions(self, index) -> "RDMs":
        """Keep conditions ``index`` (ints or bool mask, order kept as given)."""
        idx = np.atleast_1d(np.arange(self.n_conditions)[index])
        sq = self.square()[:, idx][:, :, idx]
        iu = triu_indices(len(idx))
        return RDMs(sq[:, iu[0], iu[1]], len(idx), descriptors=self.descriptors,
                    condition_descriptors={k: v[idx] for k, v in self.condition_descriptors.items()},
                    measure=self.measure)

    def unique(self, key: str) -> np.ndarray:
        """Unique values of RDM descriptor ``key`` in order of first appearance."""
        if key not in self.descriptors:
            raise DataError(f"no RDM descriptor {key!r}; available: {sorted(self.descriptors)}")
        vals = self.descriptors[key]
        _, first = np.unique(vals, return_index=True)
        return vals[np.sort(first)]

    def __repr__(self) -> str:
        desc = ", ".join(self.descriptors) or "none"
        return (f"RDMs(n_rdms={self.n_rdms}, n_conditions={self.n_conditions}, "
                f"measure={self.measure!r}, descriptors: {desc})")

    # --- rsatoolbox ------------------------------------------------------------------------
    def to_rsatoolbox(self):
        """An ``rsatoolbox.rdm.RDMs`` with the same vectors and descriptors."""
        from .interop import to_rsatoolbox

        return to_rsatoolbox(self)

    @classmethod
    def from_rsatoolbox(cls, rdms) -> "RDMs":
        from .interop import from_rsatoolbox

        return from_rsatoolbox(rdms)


def as_rdms(x: Any, what: str = "RDM") -> RDMs:
    """Wrap any accepted RDM input (see :func:`as_vectors`) as :class:`RDMs`."""
    if isinstance(x, RDMs):
        return x
    if hasattr(x, "dissimilarities") and hasattr(x, "n_cond"):
        from .interop import from_rsatoolbox

        return from_rsatoolbox(x)
    vec, n = as_vectors(x, what)
    return RDMs(vec, n)


def stack(items: Sequence[Any] | Iterable[Any], **descriptors: Sequence[Any]) -> RDMs:
    """Concatenate RDMs (or arrays) over the same conditions into one :class:`RDMs`.

    Descriptors present in every item are concatenated; ``descriptors`` given here
    (one value per resulting RDM) are added or override them.
    """
    parts = [as_rdms(x) for x in items]
    if not parts:
        raise DataError("stack() needs at least one RDM")
    n = parts[0].n_conditions
    for i, p in enumerate(parts):
        if p.n_conditions != n:
            raise DataError(f"cannot stack RDMs over different conditions: item 0 has {n}, "
                            f"item {i} has {p.n_conditions}")
    keys = set(parts[0].descriptors)
    for p in parts[1:]:
        keys &= set(p.descriptors)
    desc = {k: np.concatenate([p.descriptors[k] for p in parts]) for k in sorted(keys)}
    desc.update(descriptors)
    measures = {p.measure for p in parts}
    return RDMs(np.concatenate([p.vectors for p in parts]), n, descriptors=desc,
                condition_descriptors=parts[0].condition_descriptors,
                measure=measures.pop() if len(measures) == 1 else None)
