"""The ``rdm`` source: precomputed RDMs (.npy, .mat, rsatoolbox HDF5) with their images.

``rdm:PATH`` with ``images=DIR`` (CLI ``--images DIR``): a :class:`~brainalign.data.neural_rdms.NeuralRDMs`
of one subject (by the RDMs' 'subject' descriptor; every RDM when there is none). Other
keywords go to :func:`brainalign.data.neural_rdms.load_rdms` (variable, modality,
descriptors, image_descriptor, order).
"""
from __future__ import annotations

from brainalign.errors import DataError

from .files import plural


def _load(location, subject, split="test", *, images=None, **kw):
    from brainalign.data.neural_rdms import load_rdms

    if not location:
        raise DataError("the rdm source needs a file: 'rdm:PATH' (.npy, .mat or rsatoolbox .hdf5)")
    return load_rdms(location, images, **kw).for_subject(subject)


def _subjects(location) -> list:
    from brainalign.data.neural_rdms import read_rdms

    if not location:
        return []
    rdms = read_rdms(location)
    return list(rdms.unique("subject")) if "subject" in rdms.descriptors else [1]


def describe(location, subject=None, split: str | None = None, variable: str | None = None) -> str:
    from brainalign.data.neural_rdms import read_rdms

    if not location:
        raise DataError("the rdm source needs a file: 'rdm:PATH'")
    rdms = read_rdms(location, variable=variable)
    desc = "; ".join(f"{k}: {', '.join(map(str, rdms.unique(k)[:8]))}" for k in rdms.descriptors) or "no descriptors"
    return (f"RDM file {location}: {plural(rdms.n_rdms, 'RDM')} over {plural(rdms.n_conditions, 'condition')} "
            f"(measure {rdms.measure or 'not stated'}); {desc}")


def specs() -> list:
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("rdm", _load, "precomputed RDMs, .npy/.mat/rsatoolbox HDF5 (rdm:PATH; images=DIR)",
                        modality=None, subjects=_subjects, describe=describe)]
