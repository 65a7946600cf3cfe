"""Neural-data SOURCE strings -> per-subject test datasets for the evaluation commands.

Every source goes through the data registry (``brainalign.data.registry``): a registered
dataset name with its location ('things-eeg2:ROOT', 'shen:PATH', 'synthetic:SEED',
'mne:FILE', 'rdm:FILE', a plugin's own) or a bare path its plugin recognises. The
subjects a source holds, its loader and its modality come from the dataset's spec.
"""
from __future__ import annotations

from ..data.subjects import parse_subjects  # noqa: F401 (re-exported for old imports)


def is_synthetic(source) -> bool:
    """Deprecated: whether a source string names the synthetic brain; use :func:`is_synthetic_data`
    on the loaded data (the data says where it came from)."""
    import warnings

    warnings.warn("is_synthetic(source) is deprecated: load the source and use is_synthetic_data(data)",
                  DeprecationWarning, stacklevel=2)
    return source is None or (isinstance(source, str) and (source == "synthetic" or source.startswith("synthetic:")))


def is_synthetic_data(data) -> bool:
    """Is ``data`` (a dataset, or {subject: dataset}) simulated? Sources mark it in their meta
    (``meta['source'] == 'synthetic'`` or ``meta['synthetic']``)."""
    items = data.values() if isinstance(data, dict) else [data]
    for d in items:
        meta = getattr(d, "meta", None) or {}
        if isinstance(d, dict) and not hasattr(d, "meta"):  # an old {roi: dataset} dict
            if is_synthetic_data(d):
                return True
        elif meta.get("synthetic") or meta.get("source") == "synthetic":
            return True
    return False


def synthetic_brain(source: str | None = None, **overrides):
    """The SyntheticBrain of 'synthetic' / 'synthetic:SEED', shared with the 'synthetic' data source.

    Brains are deterministic in their config, so one instance per config is kept per
    process (building one takes seconds).
    """
    from ..data.synthetic import brain_at

    return brain_at(source.partition(":")[2] if source else None, **overrides)


def default_subjects(source: str | None, brain=None, *, modality: str | None = None) -> list:
    """The subjects ``source`` holds (``--subjects`` default), as its dataset spec lists them.

    ``brain`` is accepted for old callers and unused: the synthetic source shares its brain.
    """
    from ..data.registry import source_subjects

    return source_subjects("synthetic" if source is None else source, modality)


def load_subjects(source: str | None, subjects: list | None, *, modality: str | None = None, split: str = "test",
                  **kw) -> dict:
    """{subject: dataset} of ``split`` for every subject (default: all the source holds)."""
    from ..data.registry import load_source

    source = "synthetic" if source is None else source
    subjects = subjects or default_subjects(source, modality=modality)
    return {s: load_source(source, s, split, modality=modality, **kw) for s in subjects}


def load_eeg_subjects(source: str | None, subjects: list | None, *, brain=None, images=None) -> dict:
    """{subject: NeuralDataset} test-split EEG (or MEG) with raw repetitions (for decoding RDMs).

    ``images``: the stimulus images, for sources that need them (e.g. 'mne:FILE').
    ``brain`` is accepted for old callers and unused (the synthetic source shares its brain).
    """
    kw = {"images": images} if images is not None else {}
    return load_subjects(source, subjects, modality="eeg", average_repetitions=False, **kw)


def load_fmri_subjects(source: str | None, subjects: list | None, *, brain=None, images=None) -> dict:
    """{subject: NeuralDataset with a 'roi' channel descriptor} test-split fMRI (repetitions averaged).

    ``images``: folder of the stimulus images (Shen's fMRI release does not include them).
    """
    return load_subjects(source, subjects, modality="fmri", **({"images": images} if images is not None else {}))


def load_rdm_subjects(source: str, subjects: list | None, *, images=None, **kw) -> dict:
    """{subject: NeuralRDMs} of a precomputed-RDM source ('rdm:PATH'), any modality.

    ``images``: the RDMs' condition images (a folder in sorted file-name order, or paths).
    """
    return load_subjects(source, subjects, **({"images": images} if images is not None else {}), **kw)
