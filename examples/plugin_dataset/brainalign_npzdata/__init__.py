"""Example dataset plugin: ``npz:FILE``, one .npz per study holding

* ``images``: uint8 (n_images, H, W, 3) stimuli;
* ``responses``: float (n_subjects, n_images, n_voxels) fMRI-like responses;
* ``rois`` (optional): (n_voxels,) ROI name per voxel.

``brainalign compare cornet --fmri npz:study.npz`` then runs the ROI RSA on it.
"""
from __future__ import annotations

import numpy as np

from brainalign.errors import DataError
from brainalign.hookspecs import hookimpl


def _read(location):
    if not location:
        raise DataError("the npz source needs a file: 'npz:FILE.npz'")
    try:
        return np.load(location, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {location} as an .npz of arrays ({exc})") from exc


def load(location, subject, split="test", **kw):
    from brainalign.data.user import from_arrays

    f = _read(location)
    responses = f["responses"]
    if not 1 <= int(subject) <= responses.shape[0]:
        raise DataError(f"{location} holds subjects 1..{responses.shape[0]}, not {subject}")
    rois = f["rois"].astype(str) if "rois" in f else None
    return from_arrays(f["images"], responses[int(subject) - 1], modality="fmri", subject=subject,
                       channel_descriptors={"roi": rois} if rois is not None else None,
                       meta={"source": "npz", "file": str(location)}, **kw)


def subjects(location) -> list[int]:
    return list(range(1, _read(location)["responses"].shape[0] + 1))


@hookimpl
def brainalign_datasets():
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("npz", load, "images + fMRI-like responses in one .npz (npz:FILE)", modality="fmri",
                        subjects=subjects)]
