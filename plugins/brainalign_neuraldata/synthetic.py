"""The ``synthetic`` source: ``synthetic`` or ``synthetic:SEED``, the synthetic brain's EEG and fMRI.

Keywords named like :class:`brainalign.data.synthetic.SyntheticConfig` fields (e.g.
``n_subjects=6``) configure the brain; the rest go to ``brain.eeg`` / ``brain.fmri``. One
brain per configuration is shared (``cached_brain``), so EEG, fMRI and images agree.
"""
from __future__ import annotations

from dataclasses import fields

from .files import plural


def _brain(location, kw: dict):
    from brainalign.data.synthetic import SyntheticConfig, brain_at

    names = {f.name for f in fields(SyntheticConfig)}
    overrides = {k: kw.pop(k) for k in list(kw) if k in names}
    overrides.pop("seed", None)
    return brain_at(location, **overrides), kw


def _eeg(location, subject, split="test", **kw):
    brain, kw = _brain(location, kw)
    return brain.eeg(subject, split, **kw)


def _fmri(location, subject, split="test", **kw):
    brain, kw = _brain(location, kw)
    return brain.fmri(subject, split, **kw)


def _subjects(location) -> list[int]:
    brain, _ = _brain(location, {})
    return list(range(1, brain.config.n_subjects + 1))


def describe(location, subject, split: str | None = None) -> str:
    brain, _ = _brain(location, {})
    cfg = brain.config
    lines = [f"synthetic brain, seed {cfg.seed}: {plural(cfg.n_subjects, 'subject')}, "
             f"{plural(len(cfg.channel_names), 'EEG channel')} x {plural(cfg.n_times, 'time')} "
             f"({cfg.times[0]:.3f} .. {cfg.times[-1]:.3f} s, {cfg.sfreq:g} Hz)"]
    for sp in ("training", "test") if split is None else (split,):
        n, k = len(brain.labels(sp)), len(brain.concept_names(sp))
        reps = cfg.n_repetitions_train if sp == "training" else cfg.n_repetitions_test
        lines.append(f"  {sp}: {plural(n, 'image')} of {plural(k, 'concept')}, {plural(reps, 'EEG repetition')}")
    from brainalign.data._eeg import DEFAULT_TIME_WINDOW, time_indices
    from brainalign.data.synthetic import ROIS

    n_t = len(time_indices(cfg.times, DEFAULT_TIME_WINDOW, "the synthetic brain"))
    lines.append(f"  a default load gives EEG (n_images, {plural(len(cfg.channel_names), 'channel')}, "
                 f"{plural(n_t, 'sample')} = 0-200 ms), z-scored per channel x time point with the training split's "
                 f"statistics; fMRI as one dataset with ROIs {', '.join(ROIS)}")
    return "\n".join(lines)


def specs() -> list:
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("synthetic", _eeg, "synthetic brain EEG with known ground truth (synthetic[:SEED])",
                        modality="eeg", subjects=_subjects, describe=describe),
            DatasetSpec("synthetic", _fmri, "synthetic brain fMRI ROIs V1..LOC (synthetic[:SEED])",
                        modality="fmri", subjects=_subjects, describe=describe)]
