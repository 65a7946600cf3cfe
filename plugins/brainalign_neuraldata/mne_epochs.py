"""The ``mne`` source (alias ``meg``): MNE epochs files with EEG or MEG channels.

``mne:FILE-epo.fif`` or ``mne:FOLDER`` (one ``sub-XX*-epo.fif`` per subject; names holding
'train' / 'test' are picked by split), with ``images=DIR`` (event names matched to
'<event>.<ext>' files) or a mapping {event: path}. Other keywords go to
:func:`brainalign.data.user.from_mne_epochs` (picks='meg', channels, time_window,
average_repetitions, ...). The dataset's modality is 'meg' when MEG channels are kept.
"""
from __future__ import annotations

from pathlib import Path

from brainalign.errors import DataError

from .files import folder_subjects, has_files, plural, subject_file, subject_in_name

SUFFIXES = ("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")


def _file(location, subject, split) -> Path:
    if not location:
        raise DataError("the mne source needs an epochs file or folder: 'mne:FILE-epo.fif'")
    return subject_file(location, subject, split, SUFFIXES, "MNE epochs")


def _load(location, subject, split="test", *, images=None, **kw):
    from brainalign.data.user import load_mne_epochs

    path = _file(location, subject, split)
    if images is None:
        raise DataError(f"{path.name}: pass images= (a folder of files named after the event names, or a mapping "
                        "{event: image path}; CLI: --images DIR)")
    kw.setdefault("subject", subject_in_name(path) or subject)
    return load_mne_epochs(path, images, **kw)


def _detect(path: Path) -> bool:
    return any(path.name.lower().endswith(s) for s in SUFFIXES) if path.is_file() else has_files(path, SUFFIXES)


def describe(location, subject, split: str | None = None) -> str:
    import mne

    path = _file(location, subject, split)
    epochs = mne.read_epochs(str(path), preload=False, verbose="error")
    types = epochs.get_channel_types()
    counts = ", ".join(plural(types.count(t), f"{t} channel") for t in dict.fromkeys(types))
    return (f"MNE epochs {path}: {plural(len(epochs), 'epoch')}, {counts}; {plural(len(epochs.times), 'sample')} "
            f"{epochs.times[0]:.3f} .. {epochs.times[-1]:.3f} s; events: {', '.join(list(epochs.event_id)[:8])}"
            f"{' ...' if len(epochs.event_id) > 8 else ''}")


def specs() -> list:
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("mne", _load, "MNE epochs, EEG or MEG (mne:FILE-epo.fif or a folder of sub-XX*-epo.fif; "
                        "images=DIR)", modality=None, aliases=("meg",), detect=_detect,
                        subjects=lambda location: folder_subjects(location, SUFFIXES) if location else [],
                        describe=describe)]
