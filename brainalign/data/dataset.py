"""The one data model for neural responses to images, any modality.

A :class:`NeuralDataset` pairs an :class:`ImageSet` with responses and descriptors, in the
manner of rsatoolbox's ``Dataset`` / ``TemporalDataset``:

* responses (n_images, n_channels) or (n_images, n_channels, n_times); a "channel" is an
  EEG/MEG sensor, an fMRI voxel, an electrode, a behavioural measure ...;
* repetitions (n_images, n_repetitions, *response_shape) where single trials are kept;
* per-image descriptors (``concept`` always, ``stimulus_id`` when known, any others);
* per-channel descriptors (``name``, ``roi``, ``voxel``, ``type`` such as mag/grad/eeg ...);
* time as a descriptor: ``times`` in seconds relative to stimulus onset (n_times,).

fMRI ROIs are one dataset with a ``roi`` channel descriptor (voxels of overlapping masks
are repeated once per ROI, with their ``voxel`` index): ``select_channels(roi="V1")``,
``rois``, ``iter_rois()``. The old ``{roi: dataset}`` idioms (``ds["V1"]``, ``keys()``,
``items()``, ``values()``, ``list(ds)``) still work and warn.
"""
from __future__ import annotations

import warnings
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..seeding import numpy_rng
from ._eeg import check_times, time_indices, zscore_mode, zscore_stats
from .images import ImageSet

__all__ = ["NeuralDataset", "check_times", "check_same_images"]


class NeuralDataset:
    """Images paired with neural responses and descriptors.

    Args (the first eleven in their historical order):
        images: the stimuli (ImageSet, array (n, 3, H, W) or (n, H, W, 3)), in response order.
        responses: (n_images, n_channels[, n_times]) averaged over repetitions.
        repetitions: (n_images, n_repetitions, *response_shape) single trials, or None.
        modality: any name: 'eeg', 'meg', 'fmri', 'ecog', 'behaviour', ... (default 'other').
        subject: subject identifier (e.g. 1 or 'sub-01').
        concepts: (n_images,) concept of each image (splits keep concepts disjoint);
            default: every image its own concept.
        channel_names: (n_channels,) names; the 'name' channel descriptor.
        times: (n_times,) seconds from stimulus onset (milliseconds are refused).
        roi: one ROI name for every channel (the 'roi' channel descriptor).
        stimulus_ids: (n_images,) stimulus identifiers; the 'stimulus_id' image descriptor.
        meta: free-form provenance (source files, preprocessing settings).
        image_descriptors: {name: (n_images,)} further per-image descriptors.
        channel_descriptors: {name: (n_channels,)} per-channel descriptors ('name', 'roi',
            'voxel', 'type', ...).
    """

    def __init__(self, images, responses, repetitions=None, modality: str = "other", subject: Any = None,
                 concepts=None, channel_names=None, times=None, roi: str | None = None, stimulus_ids=None,
                 meta: dict | None = None, *, image_descriptors: Mapping | None = None,
                 channel_descriptors: Mapping | None = None):
        self.images = images if isinstance(images, ImageSet) else ImageSet.from_array(images)
        self.responses = _check_responses(responses)
        n = self.responses.shape[0]
        if len(self.images) != n:
            raise DataError(f"image count ({len(self.images)}) != response count ({n}): "
                            "give one response per image, in the same order")
        self.repetitions = None if repetitions is None else _check_repetitions(repetitions, self.responses.shape)
        if not isinstance(modality, str) or not modality.strip():
            raise DataError(f"modality must be a non-empty name such as 'eeg', 'meg' or 'fmri', got {modality!r}")
        self.modality = modality.strip()
        self.subject = subject
        self.meta = dict(meta or {})
        self.image_descriptors = _descriptors(image_descriptors, n, "image")
        self.channel_descriptors = _descriptors(channel_descriptors, self.responses.shape[1], "channel")
        self.concepts = self.image_descriptors.get("concept", np.arange(n).astype(str)) if concepts is None \
            else concepts
        if stimulus_ids is not None:
            self.stimulus_ids = stimulus_ids
        if channel_names is not None:
            self.channel_names = channel_names
        if roi is not None:
            self.roi = roi
        self._times = None
        if times is not None:
            self.times = times

    # --- descriptors as the historical attributes -------------------------------------
    @property
    def concepts(self) -> np.ndarray:
        """(n_images,) concept label of each image (str)."""
        return self.image_descriptors["concept"]

    @concepts.setter
    def concepts(self, value) -> None:
        arr = np.asarray(value).astype(str)
        if arr.shape != (len(self),):
            raise DataError(f"concepts must have one label per image ({len(self)}), got shape {arr.shape}")
        self.image_descriptors["concept"] = arr

    @property
    def stimulus_ids(self) -> np.ndarray | None:
        """(n_images,) stimulus identifiers (file names, ids) or None."""
        return self.image_descriptors.get("stimulus_id")

    @stimulus_ids.setter
    def stimulus_ids(self, value) -> None:
        self._set_descriptor(self.image_descriptors, "stimulus_id", value, len(self), "stimulus_ids", "images")

    @property
    def channel_names(self) -> list[str] | None:
        """Channel names (len n_channels) or None."""
        names = self.channel_descriptors.get("name")
        return None if names is None else [str(c) for c in names]

    @channel_names.setter
    def channel_names(self, value) -> None:
        names = None if value is None else np.asarray([str(c) for c in value])
        if names is not None and len(names) != self.responses.shape[1]:
            raise DataError(f"{len(names)} channel names but responses have shape {self.responses.shape}: "
                            "give one name per channel (axis 1)")
        self._set_descriptor(self.channel_descriptors, "name", names, self.responses.shape[1], "channel names",
                             "channels")

    @property
    def times(self) -> np.ndarray | None:
        """(n_times,) seconds from stimulus onset, or None."""
        return self._times

    @times.setter
    def times(self, value) -> None:
        if value is None:
            self._times = None
            return
        t = check_times(value, "the dataset")
        if self.responses.ndim != 3 or len(t) != self.responses.shape[2]:
            raise DataError(f"{len(t)} time points but responses have shape {self.responses.shape}: "
                            "times describe axis 2 of (n_images, n_channels, n_times)")
        self._times = t

    @property
    def roi(self) -> str | None:
        """The ROI of every channel when there is exactly one, else None (see :attr:`rois`)."""
        rois = self.rois
        return rois[0] if len(rois) == 1 else None

    @roi.setter
    def roi(self, value) -> None:
        value = None if value is None else [str(value)] * self.responses.shape[1]
        self._set_descriptor(self.channel_descriptors, "roi", value, self.responses.shape[1], "roi", "channels")

    @property
    def rois(self) -> list[str]:
        """ROI names in channel order of first appearance ([] without a 'roi' descriptor)."""
        return [str(r) for r in _unique_in_order(self.channel_descriptors["roi"])] \
            if "roi" in self.channel_descriptors else []

    @staticmethod
    def _set_descriptor(store: dict, key: str, value, n: int, what: str, per: str) -> None:
        if value is None:
            store.pop(key, None)
            return
        arr = np.asarray(value)
        if arr.ndim != 1 or len(arr) != n:
            raise DataError(f"{what} has {arr.size} entries for {n} {per}: give one per {per[:-1]}")
        store[key] = arr

    # --- shapes -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.responses.shape[0]

    @property
    def n_channels(self) -> int:
        return self.responses.shape[1]

    @property
    def n_targets(self) -> int:
        return int(np.prod(self.responses.shape[1:]))

    @property
    def response_shape(self) -> tuple[int, ...]:
        return tuple(self.responses.shape[1:])

    def targets(self) -> np.ndarray:
        """Flat per-image targets for the alignment head: float32 (n_images, n_targets)."""
        return self.responses.reshape(len(self), -1)

    def trials(self) -> np.ndarray:
        """Trial array for decoding RDMs: (n_images, n_repetitions, n_channels, n_times).

        Responses without a time axis (n_images, n_channels) come back as (n, reps, n_channels, 1).
        Raises DataError when no repetitions were kept.
        """
        if self.repetitions is None:
            raise DataError("this dataset has no raw repetitions (they were averaged on load); "
                            "reload with average_repetitions=False to compute decoding RDMs")
        reps = self.repetitions
        return reps if reps.ndim == 4 else reps.reshape(*reps.shape[:3], -1)

    def __repr__(self) -> str:
        extra = f", rois={self.rois}" if self.rois else ""
        return (f"NeuralDataset(modality={self.modality!r}, subject={self.subject!r}, n_images={len(self)}, "
                f"responses={self.response_shape}, repetitions="
                f"{None if self.repetitions is None else self.repetitions.shape[1]}{extra})")

    # --- selection ----------------------------------------------------------------
    def _replace(self, **changes) -> "NeuralDataset":
        """A new dataset with some fields changed (descriptors copied, never shared)."""
        fields = dict(images=self.images, responses=self.responses, repetitions=self.repetitions,
                      modality=self.modality, subject=self.subject, times=self.times, meta=dict(self.meta),
                      image_descriptors=dict(self.image_descriptors),
                      channel_descriptors=dict(self.channel_descriptors))
        fields.update(changes)
        return NeuralDataset(**fields)

    def subset(self, indices: Sequence[int] | np.ndarray) -> "NeuralDataset":
        """A new dataset with images ``indices`` (ints or a boolean mask; responses and descriptors follow)."""
        idx = _as_index(indices, len(self), "images")
        return self._replace(images=self.images.subset(idx), responses=self.responses[idx],
                             repetitions=None if self.repetitions is None else self.repetitions[idx],
                             image_descriptors={k: v[idx] for k, v in self.image_descriptors.items()})

    def select_channels(self, indices=None, **descriptors) -> "NeuralDataset":
        """Channels by index (ints or a boolean mask) and/or descriptor value, in dataset order.

        ``ds.select_channels(roi="V1")``, ``ds.select_channels(type=["grad", "mag"])``,
        ``ds.select_channels(name=["O1", "Oz"])``. A value may be one value or a list.
        """
        n = self.n_channels
        mask = np.zeros(n, bool)
        mask[_as_index(np.arange(n) if indices is None else indices, n, "channels")] = True
        for key, want in descriptors.items():
            if key not in self.channel_descriptors:
                raise DataError(f"no channel descriptor {key!r}; this dataset has "
                                f"{sorted(self.channel_descriptors) or 'none'}")
            values = self.channel_descriptors[key]
            wanted = [want] if np.isscalar(want) else list(want)
            hit = np.isin(values.astype(str), np.asarray(wanted).astype(str))
            missing = [w for w in wanted if str(w) not in set(values.astype(str))]
            if missing:
                raise DataError(f"no channel with {key}={missing[0]!r}; values of {key!r}: "
                                f"{', '.join(map(str, _unique_in_order(values)[:20]))}")
            mask &= hit
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            raise DataError(f"no channel matches {descriptors}: the selection is empty")
        return self._replace(responses=self.responses[:, idx],
                             repetitions=None if self.repetitions is None else self.repetitions[:, :, idx],
                             channel_descriptors={k: v[idx] for k, v in self.channel_descriptors.items()})

    def subset_time(self, start: float, stop: float) -> "NeuralDataset":
        """Time points with ``start <= t < stop`` (seconds), the loaders' window convention."""
        if self.times is None:
            raise DataError("this dataset has no times: subset_time needs responses (n_images, n_channels, "
                            "n_times) with times in seconds")
        ti = time_indices(self.times, (start, stop), "the dataset")
        return self._replace(responses=self.responses[..., ti], times=self.times[ti],
                             repetitions=None if self.repetitions is None else self.repetitions[..., ti])

    def time_as_channels(self) -> "NeuralDataset":
        """(n_images, n_channels, n_times) -> (n_images, n_channels * n_times) channel-major, as
        :meth:`targets` flattens; channel descriptors are repeated per time and gain 'time' (s)."""
        if self.responses.ndim != 3:
            raise DataError(f"time_as_channels needs responses (n_images, n_channels, n_times), got "
                            f"{self.responses.shape}")
        n_c, n_t = self.responses.shape[1:]
        desc = {k: np.repeat(v, n_t) for k, v in self.channel_descriptors.items()}
        desc["time"] = np.tile(self.times if self.times is not None else np.arange(n_t, dtype=float), n_c)
        reps = None if self.repetitions is None else self.repetitions.reshape(*self.repetitions.shape[:2], -1)
        return self._replace(responses=self.responses.reshape(len(self), -1), repetitions=reps, times=None,
                             channel_descriptors=desc)

    def iter_rois(self) -> Iterator[tuple[str, "NeuralDataset"]]:
        """(roi, dataset of that ROI's channels) for every ROI, in order (see :attr:`rois`)."""
        if not self.rois:
            raise DataError("this dataset has no 'roi' channel descriptor: load fMRI with ROIs, or give "
                            "roi= / channel_descriptors={'roi': ...}")
        for r in self.rois:
            yield r, self.select_channels(roi=r)

    def split_by_concept(self, fraction: float = 0.1, seed: int = 2023) -> tuple["NeuralDataset", "NeuralDataset"]:
        """Split into (rest, held_out) with ``fraction`` of the concepts held out.

        No concept appears in both parts. At least one concept goes to each side.
        """
        if not 0 < fraction < 1:
            raise DataError(f"fraction must be between 0 and 1, got {fraction}")
        uniq = np.unique(self.concepts)
        if len(uniq) < 2:
            raise DataError("cannot split by concept: the dataset has a single concept")
        rng = numpy_rng(seed)
        n_out = min(max(1, int(round(fraction * len(uniq)))), len(uniq) - 1)
        held = set(rng.permutation(uniq)[:n_out].tolist())
        mask = np.array([c in held for c in self.concepts])
        return self.subset(~mask), self.subset(mask)

    def zscored(self, mode: str = "feature", reference: "NeuralDataset | None" = None) -> "NeuralDataset":
        """Responses (and trials) scaled with ``reference``'s statistics (default: this dataset's).

        mode 'feature': per channel (x time) mean/std over the reference's images and
        repetitions; 'global': one mean and one std over all of its values (ReAlnet). Use a
        training split as the reference for test data: ``test.zscored("global", reference=train)``.
        """
        mode = zscore_mode(mode)
        if mode is None:
            return self
        ref = self if reference is None else reference
        if ref.response_shape != self.response_shape:
            raise DataError(f"the z-scoring reference has responses {ref.response_shape} but this dataset "
                            f"{self.response_shape}: select the same channels and times in both")
        trials = ref.repetitions if ref.repetitions is not None else ref.responses[:, None]
        mean, std = zscore_stats(trials, mode)
        return self._replace(responses=(self.responses - mean) / std,
                             repetitions=None if self.repetitions is None else (self.repetitions - mean) / std,
                             meta=dict(self.meta, zscore=mode,
                                       zscore_source="itself" if reference is None else "reference dataset"))

    # --- several ROIs as one dataset ------------------------------------------------
    @classmethod
    def from_rois(cls, rois: Mapping[str, "NeuralDataset"]) -> "NeuralDataset":
        """Join {roi: dataset (n_images, n_voxels)} over the same images into one dataset with
        'roi' and 'voxel' channel descriptors (voxel indices kept where the datasets have them)."""
        if isinstance(rois, NeuralDataset):
            return rois
        items = list(rois.items())
        if not items:
            raise DataError("no ROIs to join: pass {roi: NeuralDataset}")
        first = items[0][1]
        for name, d in items[1:]:
            check_same_images(items[0], (name, d), "ROI", "ROIs of one dataset")
            if (d.repetitions is None) != (first.repetitions is None) or (
                    d.repetitions is not None and d.repetitions.shape[1] != first.repetitions.shape[1]):
                raise DataError(f"ROI {name!r} has other repetitions than ROI {items[0][0]!r}: load all ROIs "
                                "with the same average_repetitions setting")
        offset, desc = 0, {}
        for name, d in items:
            own = dict(d.channel_descriptors)
            own["roi"] = np.array([str(name)] * d.n_channels)
            own.setdefault("voxel", np.arange(offset, offset + d.n_channels))
            offset += d.n_channels
            for k in set(desc) | set(own):
                fill = own.get(k, np.full(d.n_channels, "", dtype=object))
                desc[k] = np.concatenate([desc.get(k, np.full(offset - d.n_channels, "", dtype=object)), fill])
        cat = lambda arrays: np.concatenate(arrays, axis=-1)  # noqa: E731 (voxels are the last axis)
        reps = None if first.repetitions is None else cat([d.repetitions for _, d in items])
        return first._replace(responses=cat([d.responses for _, d in items]), repetitions=reps,
                              channel_descriptors={k: _tidy(v) for k, v in desc.items()})

    # --- deprecated {roi: dataset} idioms ------------------------------------------
    def _warn_dict(self, idiom: str, instead: str) -> None:
        warnings.warn(f"{idiom} treats a NeuralDataset as the old {{roi: dataset}} dict, which is deprecated: "
                      f"fMRI ROIs are one dataset with a 'roi' channel descriptor; use {instead}",
                      DeprecationWarning, stacklevel=3)

    def __getitem__(self, roi: str) -> "NeuralDataset":
        if not isinstance(roi, str):
            raise TypeError(f"NeuralDataset[{roi!r}]: index images with .subset(indices), channels with "
                            ".select_channels(...)")
        self._warn_dict(f"ds[{roi!r}]", f"ds.select_channels(roi={roi!r})")
        if roi not in self.rois:
            raise KeyError(f"no ROI {roi!r} in this dataset; ROIs: {', '.join(self.rois) or 'none'}")
        return self.select_channels(roi=roi)

    def __contains__(self, roi) -> bool:
        self._warn_dict("'roi' in ds", "'roi' in ds.rois")
        return str(roi) in self.rois

    def __iter__(self):
        self._warn_dict("iterating over ds", "ds.rois or ds.iter_rois()")
        return iter(self.rois)

    def keys(self) -> list[str]:
        self._warn_dict("ds.keys()", "ds.rois")
        return list(self.rois)

    def values(self) -> list["NeuralDataset"]:
        self._warn_dict("ds.values()", "ds.iter_rois()")
        return [d for _, d in self.iter_rois()]

    def items(self) -> list[tuple[str, "NeuralDataset"]]:
        self._warn_dict("ds.items()", "ds.iter_rois()")
        return list(self.iter_rois())


# --- validation helpers -------------------------------------------------------------------
def check_same_images(first: tuple[str, "NeuralDataset"], other: tuple[str, "NeuralDataset"], what: str,
                      who: str) -> None:
    """DataError unless two named datasets hold the same images in the same order (``what``: 'ROI',
    'target'; ``who``: who must share them, for the message)."""
    (name_a, a), (name_b, b) = first, other
    if len(b) != len(a) or (b.images is not a.images and b.images.fingerprint() != a.images.fingerprint()):
        raise DataError(f"{what} {name_b!r} has a different image set than {what} {name_a!r} ({len(b)} vs "
                        f"{len(a)} images): {who} must share the images, in the same order")


def _check_responses(responses) -> np.ndarray:
    arr = np.asarray(responses, dtype=np.float32)
    if arr.ndim < 2:
        raise DataError(f"responses must be (n_images, ...) with at least 2 dimensions, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError("responses are empty (0 images): check the selection")
    _check_finite(arr, "responses")
    return arr


def _check_repetitions(repetitions, shape: tuple) -> np.ndarray:
    arr = np.asarray(repetitions, dtype=np.float32)
    if arr.ndim < 3 or arr.shape[0] != shape[0] or arr.shape[2:] != shape[1:]:
        raise DataError(f"repetitions shape {arr.shape} does not match responses {shape}: expected "
                        f"(n_images, n_repetitions, {', '.join(map(str, shape[1:]))})")
    _check_finite(arr, "repetitions")
    return arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(f"{what} contain {int(bad.sum())} NaN/Inf values (first at index {tuple(where)}); "
                        "remove or interpolate them before loading")


def _descriptors(desc: Mapping | None, n: int, per: str) -> dict[str, np.ndarray]:
    out = {}
    for key, value in (desc or {}).items():
        arr = np.asarray(value)
        if arr.ndim != 1 or len(arr) != n:
            raise DataError(f"{per} descriptor {key!r} has shape {arr.shape}: give one value per {per} ({n})")
        out[str(key)] = arr
    return out


def _as_index(indices, n: int, what: str) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise DataError(f"a boolean selection of {what} needs {n} values, got {idx.shape}")
        idx = np.flatnonzero(idx)
    idx = idx.astype(int).ravel()
    if idx.size == 0:
        raise DataError(f"selection is empty: no {what} left")
    if idx.min() < -n or idx.max() >= n:
        raise DataError(f"{what} index {int(idx.max() if idx.max() >= n else idx.min())} out of range for {n} {what}")
    return idx


def _unique_in_order(values: np.ndarray) -> np.ndarray:
    _, first = np.unique(values.astype(str), return_index=True)
    return values[np.sort(first)]


def _tidy(values: np.ndarray) -> np.ndarray:
    """Object arrays from joining descriptors back to a plain dtype where possible."""
    try:
        return np.asarray(values.tolist())
    except (ValueError, TypeError):
        return values
