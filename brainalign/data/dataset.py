"""The one data model for neural responses to images.

A :class:`NeuralDataset` pairs an :class:`ImageSet` with responses and descriptors. EEG
responses are (n_images, n_channels, n_times); fMRI responses are (n_images, n_voxels).
Raw repetitions, where they exist, are (n_images, n_repetitions, *response_shape).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from ..seeding import numpy_rng
from .images import ImageSet

MODALITIES = ("eeg", "fmri", "other")


@dataclass
class NeuralDataset:
    """Images paired with neural responses.

    Attributes:
        images: the stimuli, in the same order as ``responses``.
        responses: float32 (n_images, *response_shape), averaged over repetitions.
        repetitions: float32 (n_images, n_repetitions, *response_shape) or None.
        modality: 'eeg', 'fmri' or 'other'.
        subject: subject identifier (e.g. 1 or 'sub-01').
        concepts: (n_images,) concept label of each image (splits keep concepts disjoint).
        channel_names: EEG channel names (len n_channels) or None.
        times: EEG time points in seconds (len n_times) or None.
        roi: fMRI region name or None.
        stimulus_ids: (n_images,) identifiers of the stimuli (file names, ids) or None.
        meta: free-form provenance (source files, preprocessing settings).
    """

    images: ImageSet
    responses: np.ndarray
    repetitions: np.ndarray | None = None
    modality: str = "other"
    subject: Any = None
    concepts: np.ndarray | None = None
    channel_names: list[str] | None = None
    times: np.ndarray | None = None
    roi: str | None = None
    stimulus_ids: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.images, ImageSet):
            self.images = ImageSet.from_array(self.images)
        self.responses = np.asarray(self.responses, dtype=np.float32)
        n = self.responses.shape[0] if self.responses.ndim else 0
        if self.responses.ndim < 2:
            raise DataError(f"responses must be (n_images, ...) with at least 2 dimensions, "
                            f"got shape {self.responses.shape}")
        if n == 0:
            raise DataError("responses are empty (0 images): check the selection")
        if len(self.images) != n:
            raise DataError(f"image count ({len(self.images)}) != response count ({n}): "
                            "give one response per image, in the same order")
        _check_finite(self.responses, "responses")
        if self.repetitions is not None:
            self.repetitions = np.asarray(self.repetitions, dtype=np.float32)
            if self.repetitions.shape[0] != n or self.repetitions.shape[2:] != self.responses.shape[1:]:
                raise DataError(f"repetitions shape {self.repetitions.shape} does not match responses "
                                f"{self.responses.shape}: expected (n_images, n_repetitions, "
                                f"{', '.join(map(str, self.responses.shape[1:]))})")
            _check_finite(self.repetitions, "repetitions")
        if self.modality not in MODALITIES:
            raise DataError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.concepts is None:
            self.concepts = np.array([str(i) for i in range(n)])  # every image its own concept
        self.concepts = np.asarray(self.concepts).astype(str)
        if self.concepts.shape != (n,):
            raise DataError(f"concepts must have one label per image ({n}), got shape {self.concepts.shape}")
        if self.channel_names is not None:
            self.channel_names = [str(c) for c in self.channel_names]
            if self.responses.ndim != 3 or len(self.channel_names) != self.responses.shape[1]:
                raise DataError(f"{len(self.channel_names)} channel names but responses have shape "
                                f"{self.responses.shape}; EEG responses are (n_images, n_channels, n_times)")
        if self.times is not None:
            self.times = np.asarray(self.times, dtype=np.float64)
            if self.responses.ndim != 3 or len(self.times) != self.responses.shape[2]:
                raise DataError(f"{len(self.times)} time points but responses have shape {self.responses.shape}")
        if self.stimulus_ids is not None:
            self.stimulus_ids = np.asarray(self.stimulus_ids)
            if len(self.stimulus_ids) != n:
                raise DataError(f"stimulus_ids has {len(self.stimulus_ids)} entries for {n} images")

    # --- shapes -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.responses.shape[0]

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

        fMRI-like responses (n_images, n_voxels) come back as (n, reps, n_voxels, 1).
        Raises DataError when no repetitions were kept.
        """
        if self.repetitions is None:
            raise DataError("this dataset has no raw repetitions (they were averaged on load); "
                            "reload with average_repetitions=False to compute decoding RDMs")
        reps = self.repetitions
        return reps if reps.ndim == 4 else reps.reshape(*reps.shape[:3], 1)

    # --- selection ----------------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> "NeuralDataset":
        """A new dataset with images ``indices`` (responses, repetitions, labels follow)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.size == 0:
            raise DataError("selection is empty: no images left")
        return replace(
            self,
            images=self.images.subset(idx),
            responses=self.responses[idx],
            repetitions=None if self.repetitions is None else self.repetitions[idx],
            concepts=self.concepts[idx],
            stimulus_ids=None if self.stimulus_ids is None else self.stimulus_ids[idx],
            meta=dict(self.meta),
        )

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


def _check_finite(arr: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise DataError(f"{what} contain {int(bad.sum())} NaN/Inf values (first at index {tuple(where)}); "
                        "remove or interpolate them before loading")
