"""Datasets by name: plugins register :class:`DatasetSpec` objects, sources are strings.

Source strings::

    synthetic               the synthetic brain, seed 0 (synthetic:SEED for another seed)
    things-eeg2:ROOT        THINGS-EEG2 preprocessed release under ROOT
    shen:PATH               a Shen 2019 BData .h5 file, or a folder of them (sub-XX_*Test*.h5)
    ROOT or PATH            auto-detected: a folder with preprocessed_data/ is THINGS-EEG2,
                            a .h5 file (or a folder of .h5 files) is Shen fMRI

Plugins add datasets through the ``brainalign_datasets`` hook (see hookspecs.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DataError, suggest
from .dataset import NeuralDataset

KINDS = ("eeg", "fmri")

__all__ = ["DatasetSpec", "available_datasets", "get_dataset_spec", "parse_source", "load_eeg_source",
           "load_fmri_source", "load_dataset", "SOURCE_FORMS"]

SOURCE_FORMS = ("'synthetic' or 'synthetic:SEED'", "'things-eeg2:ROOT'", "'shen:PATH' (a .h5 file or a folder of them)",
                "a bare THINGS-EEG2 root (with preprocessed_data/) or Shen .h5 path")


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset a plugin provides.

    Attributes:
        name: the source prefix ('things-eeg2' in 'things-eeg2:ROOT').
        loader: ``loader(location, subject, split, **kw)``; ``location`` is the text after
            'name:' (None when absent). kind 'eeg' returns a NeuralDataset, kind 'fmri'
            returns {roi: NeuralDataset}.
        description: one line for listings.
        kind: 'eeg' or 'fmri'.
        aliases: other prefixes accepted for this dataset.
        detect: ``detect(path) -> bool`` recognises a bare path as this dataset (optional).
    """

    name: str
    loader: Callable = field(repr=False)
    description: str = ""
    kind: str = "eeg"
    aliases: tuple = ()
    detect: Callable | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"DatasetSpec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def names(self) -> tuple:
        return (self.name, *self.aliases)


def available_datasets(kind: str | None = None) -> list[DatasetSpec]:
    """All DatasetSpecs registered by plugins (optionally only those of ``kind``)."""
    from ..plugin_manager import hook_results

    specs = [spec for _, spec in hook_results("brainalign_datasets", DatasetSpec)]
    if kind is not None:
        specs = [s for s in specs if s.kind == kind]
    return specs


def get_dataset_spec(name: str, kind: str = "eeg") -> DatasetSpec:
    """The spec called ``name`` (or with that alias) for ``kind``."""
    specs = available_datasets(kind)
    for spec in specs:
        if name in spec.names:
            return spec
    known = [n for s in specs for n in s.names]
    raise DataError(f"no {kind} dataset called {name!r}.{suggest(name, known)} Known: {', '.join(known) or 'none'}")


def parse_source(source, kind: str = "eeg") -> tuple[DatasetSpec, str | None]:
    """Split a source string into (spec, location)."""
    if kind not in KINDS:
        raise DataError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(source, (str, Path)):
        raise DataError(f"a data source must be a string or path, got {type(source).__name__}; accepted: "
                        + "; ".join(SOURCE_FORMS))
    text = str(source).strip()
    specs = available_datasets(kind)
    by_name = {n: s for s in specs for n in s.names}
    if text in by_name:
        return by_name[text], None
    prefix, sep, rest = text.partition(":")
    if sep and prefix in by_name:
        return by_name[prefix], rest or None
    path = Path(text).expanduser()
    if path.exists():
        for spec in specs:
            if spec.detect is not None and spec.detect(path):
                return spec, str(path)
        raise DataError(f"cannot tell which {kind} dataset {path} is: prefix it with a dataset name "
                        f"({', '.join(by_name)}), e.g. 'things-eeg2:{path}'")
    hint = suggest(prefix if sep else text, list(by_name))
    raise DataError(f"unknown {kind} data source {text!r} (not a known dataset name and no such path).{hint} "
                    "Accepted: " + "; ".join(SOURCE_FORMS))


def load_eeg_source(source, subject=1, split: str = "test", **kw) -> NeuralDataset:
    """Load EEG from a source string (see module docs); a NeuralDataset passes through."""
    if isinstance(source, NeuralDataset):
        return source
    spec, location = parse_source(source, "eeg")
    return spec.loader(location, subject, split, **kw)


def load_fmri_source(source, subject=1, split: str = "test", **kw) -> dict[str, NeuralDataset]:
    """Load fMRI ROIs {roi: NeuralDataset} from a source string; a dict passes through."""
    if isinstance(source, dict):
        return source
    spec, location = parse_source(source, "fmri")
    return spec.loader(location, subject, split, **kw)


def load_dataset(source, subject=1, split: str = "test", kind: str = "eeg", **kw):
    """``load_eeg_source`` for kind 'eeg', ``load_fmri_source`` for kind 'fmri'."""
    if kind == "fmri":
        return load_fmri_source(source, subject, split, **kw)
    if kind == "eeg":
        return load_eeg_source(source, subject, split, **kw)
    raise DataError(f"kind must be one of {KINDS}, got {kind!r}")
