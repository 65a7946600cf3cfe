"""Neural-data SOURCE strings -> per-subject test datasets for the evaluation commands.

SOURCE forms: 'synthetic' or 'synthetic:SEED' (the built-in synthetic brain),
'things-eeg2:ROOT', 'shen:PATH' or a bare path (auto-detected by the data registry).
"""
from __future__ import annotations

from ..data.subjects import parse_subjects  # noqa: F401 (re-exported for old imports)
from ..errors import DataError

# Subjects used when --subjects is not given.
DEFAULT_SUBJECTS = {"things-eeg2": list(range(1, 11)), "shen": [1, 2, 3]}


def is_synthetic(source) -> bool:
    return source is None or (isinstance(source, str) and (source == "synthetic" or source.startswith("synthetic:")))


_BRAINS: dict = {}


def synthetic_brain(source: str | None = None, **overrides):
    """The SyntheticBrain of 'synthetic' / 'synthetic:SEED' (default config otherwise).

    Brains are deterministic in their config, so one instance per config is kept per
    process (building one takes seconds).
    """
    from ..data.synthetic import SyntheticBrain

    seed = 0
    if source and ":" in source:
        try:
            seed = int(source.split(":", 1)[1])
        except ValueError as exc:
            raise DataError(f"synthetic source must be 'synthetic' or 'synthetic:SEED' (an integer), got {source!r}") from exc
    key = (seed, tuple(sorted(overrides.items())))
    if key not in _BRAINS:
        _BRAINS.clear()  # keep at most one: a brain caches its images and trials
        _BRAINS[key] = SyntheticBrain(seed=seed, **overrides)
    return _BRAINS[key]


def default_subjects(source: str | None, brain=None) -> list[int]:
    if is_synthetic(source):
        brain = brain or synthetic_brain(source)
        return list(range(1, brain.config.n_subjects + 1))
    from ..data.things_eeg2 import find_subjects

    prefix, _, rest = str(source).partition(":")
    # a THINGS-EEG2 root: the subjects actually there, not the release's 1-10
    found = find_subjects(rest if prefix.lower() == "things-eeg2" else str(source))
    return found or DEFAULT_SUBJECTS.get(prefix.lower(), [1])


def load_eeg_subjects(source: str | None, subjects: list | None, *, brain=None) -> dict:
    """{subject: NeuralDataset} test-split EEG with raw repetitions (for decoding RDMs)."""
    if is_synthetic(source):
        brain = brain or synthetic_brain(source)
        subjects = subjects or default_subjects(source, brain)
        return {s: brain.eeg(s, "test", average_repetitions=False) for s in subjects}
    from ..data.registry import load_eeg_source

    subjects = subjects or default_subjects(source)
    return {s: load_eeg_source(source, s, "test", average_repetitions=False) for s in subjects}


def load_fmri_subjects(source: str | None, subjects: list | None, *, brain=None, images=None) -> dict:
    """{subject: {roi: NeuralDataset}} test-split fMRI (repetitions averaged).

    ``images``: folder of the stimulus images (Shen's fMRI release does not include them).
    """
    if is_synthetic(source):
        brain = brain or synthetic_brain(source)
        subjects = subjects or default_subjects(source, brain)
        return {s: brain.fmri(s, "test") for s in subjects}
    from ..data.registry import load_fmri_source

    subjects = subjects or default_subjects(source)
    kw = {"images": images} if images is not None else {}
    return {s: load_fmri_source(source, s, "test", **kw) for s in subjects}
