"""First-party brainalign plugin: the built-in neural datasets.

Registers, through the same ``brainalign_datasets`` hook a third-party plugin uses:

* ``things-eeg2`` (EEG): ``things-eeg2:ROOT``, the THINGS-EEG2 preprocessed release;
* ``shen-fmri`` (fMRI, alias ``shen``): ``shen:PATH``, a Shen 2019 BData file or a folder
  of them (``sub-XX_*Test*.h5`` / ``*Training*.h5`` picked by subject and split);
* ``synthetic`` (EEG and fMRI): ``synthetic`` or ``synthetic:SEED``, the synthetic brain.
"""
from __future__ import annotations

from pathlib import Path

from brainalign.errors import DataError
from brainalign.hookspecs import hookimpl

_H5 = (".h5", ".hdf5")


def _things_loader(location, subject, split="test", **kw):
    from brainalign.data.things_eeg2 import load_things_eeg2

    if not location:
        raise DataError("things-eeg2 needs the release folder: 'things-eeg2:ROOT'")
    return load_things_eeg2(location, subject, split, **kw)


def _is_things(path: Path) -> bool:
    return path.is_dir() and (path / "preprocessed_data").is_dir()


def _shen_file(location, subject, split) -> Path:
    path = Path(location).expanduser()
    if path.is_file() or path.suffix.lower() in _H5:
        return path
    if not path.is_dir():
        raise DataError(f"Shen fMRI path {path} does not exist: pass a .h5 BData file or a folder of them")
    from brainalign.data._eeg import check_split
    from brainalign.data.things_eeg2 import _subject_number

    part = "Test" if check_split(split) == "test" else "Training"
    n = _subject_number(subject)
    hits = sorted(p for p in path.glob(f"sub-{n:02d}_*{part}*") if p.suffix.lower() in _H5)
    if len(hits) != 1:
        have = sorted(p.name for p in path.iterdir() if p.suffix.lower() in _H5)
        what = "no file" if not hits else f"{len(hits)} files ({', '.join(h.name for h in hits)})"
        raise DataError(f"{what} in {path} match sub-{n:02d}_*{part}*.h5; files there: {', '.join(have) or 'none'}. "
                        "Pass the file itself: 'shen:FILE.h5'")
    return hits[0]


def _shen_loader(location, subject, split="test", **kw):
    from brainalign.data.shen_fmri import load_shen_fmri

    if not location:
        raise DataError("shen-fmri needs a file or folder: 'shen:PATH'")
    path = _shen_file(location, subject, split)
    if kw.get("images") is None and (path.parent / "images").is_dir():
        kw["images"] = path.parent / "images"  # the layout 'brainalign synth' writes
    kw.setdefault("subject", subject)
    return load_shen_fmri(path, **kw)


def _is_shen(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in _H5
    return path.is_dir() and any(p.suffix.lower() in _H5 for p in path.iterdir())


def _synthetic_args(location, kw):
    from dataclasses import fields

    from brainalign.data.synthetic import SyntheticConfig, cached_brain

    try:
        seed = int(location) if location else 0
    except ValueError:
        raise DataError(f"'synthetic:{location}': the part after ':' is the seed and must be an integer") from None
    names = {f.name for f in fields(SyntheticConfig)}
    overrides = {k: kw.pop(k) for k in list(kw) if k in names}
    overrides.pop("seed", None)
    return cached_brain(seed, **overrides), kw


def _synthetic_eeg(location, subject, split="test", **kw):
    brain, kw = _synthetic_args(location, kw)
    return brain.eeg(subject, split, **kw)


def _synthetic_fmri(location, subject, split="test", **kw):
    brain, kw = _synthetic_args(location, kw)
    return brain.fmri(subject, split, **kw)


@hookimpl
def brainalign_datasets():
    from brainalign.data.registry import DatasetSpec

    return [
        DatasetSpec("things-eeg2", _things_loader, "THINGS-EEG2 preprocessed release (things-eeg2:ROOT)",
                    kind="eeg", aliases=("things",), detect=_is_things),
        DatasetSpec("shen-fmri", _shen_loader, "Shen et al. 2019 fMRI BData files (shen:PATH; extra 'fmri')",
                    kind="fmri", aliases=("shen",), detect=_is_shen),
        DatasetSpec("synthetic", _synthetic_eeg, "synthetic brain EEG with known ground truth (synthetic[:SEED])",
                    kind="eeg"),
        DatasetSpec("synthetic", _synthetic_fmri, "synthetic brain fMRI ROIs V1..LOC (synthetic[:SEED])",
                    kind="fmri"),
    ]
