"""Data sources by name: plugins register :class:`DatasetSpec` objects, sources are strings.

A source string is ``NAME`` or ``NAME:LOCATION`` (a registered dataset and what its loader
needs: a folder, a file, a seed ...), or a bare path that one dataset's ``detect``
recognises. ``brainalign data list`` shows the registered datasets; the built-in ones
(THINGS-EEG2, Shen fMRI, the synthetic brain, MNE epochs, precomputed RDM files) come from
the ``brainalign_neuraldata`` plugin through the same ``brainalign_datasets`` hook a
third-party plugin uses. The core never names a dataset: everything it needs (the
modality, the subjects available, a description) comes from the spec.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DataError, suggest
from .dataset import NeuralDataset

__all__ = ["DatasetSpec", "available_datasets", "get_dataset_spec", "parse_source", "load_source",
           "source_subjects", "describe_source", "load_eeg_source", "load_fmri_source", "load_dataset",
           "source_forms"]


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset (source) a plugin provides.

    Attributes:
        name: the source prefix ('things-eeg2' in 'things-eeg2:ROOT').
        loader: ``loader(location, subject, split, **kw)`` -> NeuralDataset (or another data
            object, e.g. NeuralRDMs); ``location`` is the text after 'name:' (None when absent).
        description: one line for listings, with the source form.
        modality: what the loader returns: any name ('eeg', 'meg', 'fmri', ...), or None
            when the data decides (e.g. MNE epochs with EEG or MEG channels).
        aliases: other prefixes accepted for this dataset.
        detect: ``detect(path) -> bool`` recognises a bare path as this dataset (optional).
        subjects: ``subjects(location) -> list`` the subjects available (optional; default [1]).
        describe: ``describe(location, subject, split=None, **kw) -> str`` what the files hold
            and what a default load gives, for ``brainalign data`` (optional).
        kind: deprecated name of ``modality``.
    """

    name: str
    loader: Callable = field(repr=False)
    description: str = ""
    modality: str | None = "eeg"
    aliases: tuple = ()
    detect: Callable | None = field(default=None, repr=False)
    subjects: Callable | None = field(default=None, repr=False)
    describe: Callable | None = field(default=None, repr=False)
    kind: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.kind is not None and self.kind != self.modality:  # (dataclasses.replace passes kind=modality)
            warnings.warn(f"DatasetSpec({self.name!r}, kind=...) is deprecated: use modality=", DeprecationWarning,
                          stacklevel=3)
            object.__setattr__(self, "modality", self.kind)
        if self.modality is not None and (not isinstance(self.modality, str) or not self.modality.strip()):
            raise DataError(f"DatasetSpec {self.name!r}: modality must be a name such as 'eeg' or 'fmri' (or None "
                            f"when the data decides), got {self.modality!r}")
        object.__setattr__(self, "kind", self.modality)  # old readers of .kind see the modality
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def names(self) -> tuple:
        return (self.name, *self.aliases)

    def serves(self, modality: str | None) -> bool:
        """Does this source give ``modality`` (None: any)?"""
        return modality is None or self.modality is None or self.modality == modality

    def available_subjects(self, location) -> list:
        return list(self.subjects(location)) if self.subjects is not None else [1]


def available_datasets(modality: str | None = None) -> list[DatasetSpec]:
    """All DatasetSpecs registered by plugins (optionally only those that give ``modality``)."""
    from ..plugin_manager import hook_results

    specs = [spec for _, spec in hook_results("brainalign_datasets", DatasetSpec)]
    return [s for s in specs if s.serves(modality)]


def source_forms(modality: str | None = None) -> list[str]:
    """'name[:LOCATION]: description' of every registered source (for error messages and help)."""
    return [f"{s.name}: {s.description}" if s.description else s.name for s in available_datasets(modality)]


def get_dataset_spec(name: str, modality: str | None = None, *, first: bool = False, **kw) -> DatasetSpec:
    """The spec called ``name`` (or with that alias) that gives ``modality`` (``kind=`` is deprecated).

    A name registered for several modalities (e.g. 'synthetic': eeg and fmri) needs
    ``modality``, unless ``first`` (any of them will do, e.g. to describe the source).
    """
    modality = _modality_arg(modality, kw)
    specs = available_datasets(modality)
    matches = [s for s in specs if name in s.names]
    if len(matches) == 1 or (matches and first):
        return matches[0]
    if len(matches) > 1:
        raise DataError(f"dataset {name!r} provides {', '.join(str(s.modality) for s in matches)} data: pass "
                        "modality= (or use --eeg / --fmri) to choose one")
    known = sorted({n for s in specs for n in s.names})
    other = [s for s in available_datasets() if name in s.names]
    if other:
        raise DataError(f"dataset {name!r} gives {other[0].modality} data, not {modality}: use it where "
                        f"{other[0].modality} data is expected")
    what = f"{modality} dataset" if modality else "dataset"
    raise DataError(f"no {what} called {name!r}.{suggest(name, known)} Known: {', '.join(known) or 'none'}")


def parse_source(source, modality: str | None = None, *, first: bool = False, **kw) -> tuple[DatasetSpec, str | None]:
    """Split a source string into (spec, location) (``first``: see :func:`get_dataset_spec`)."""
    modality = _modality_arg(modality, kw)
    if not isinstance(source, (str, Path)):
        raise DataError(f"a data source must be a string or path, got {type(source).__name__}; accepted: "
                        + "; ".join(source_forms(modality)))
    text = str(source).strip()
    names = {n for s in available_datasets() for n in s.names}
    if text in names:
        return get_dataset_spec(text, modality, first=first), None
    prefix, sep, rest = text.partition(":")
    if sep and prefix in names:
        return get_dataset_spec(prefix, modality, first=first), rest or None
    path = Path(text).expanduser()
    what = f"{modality} " if modality else ""
    if path.exists():
        for spec in available_datasets(modality):
            if spec.detect is not None and spec.detect(path):
                return spec, str(path)
        raise DataError(f"cannot tell which {what}dataset {path} is: prefix it with a dataset name "
                        f"({', '.join(sorted(names))}), e.g. 'NAME:{path}'")
    hint = suggest(prefix if sep else text, sorted(names))
    raise DataError(f"unknown {what}data source {text!r} (not a known dataset name and no such path).{hint} "
                    "Accepted: " + "; ".join(source_forms(modality)))


def load_source(source, subject=1, split: str = "test", *, modality: str | None = None, **kw):
    """Load one subject's ``split`` from a source string; a NeuralDataset passes through.

    ``modality`` restricts the sources to those giving that modality (None: any). Extra
    keywords go to the dataset's loader (e.g. ``average_repetitions=False``, ``images=DIR``).
    """
    if isinstance(source, NeuralDataset):
        return source
    spec, location = parse_source(source, modality)
    return spec.loader(location, subject, split, **kw)


def source_subjects(source, modality: str | None = None) -> list:
    """The subjects a source holds (what ``--subjects`` defaults to)."""
    spec, location = parse_source(source, modality)
    subjects = spec.available_subjects(location)
    if not subjects:
        raise DataError(f"no subjects found in {source}: check the path, or pass the subjects (--subjects 1,2)")
    return subjects


def describe_source(source, subject=None, split: str | None = None, *, modality: str | None = None, **kw) -> str:
    """What a source holds and what a default load gives (``brainalign data``)."""
    spec, location = parse_source(source, modality, first=True)
    subjects = spec.available_subjects(location)
    if spec.describe is None:
        return f"{spec.name} ({spec.modality or 'any modality'}): {spec.description}; subjects: {subjects}"
    _check_options(spec.describe, kw, f"dataset {spec.name!r}")
    return spec.describe(location, subject if subject is not None else (subjects or [1])[0], split=split, **kw)


def load_eeg_source(source, subject=1, split: str = "test", **kw) -> NeuralDataset:
    """:func:`load_source` restricted to EEG sources (and sources whose data decides, e.g. MNE epochs)."""
    return load_source(source, subject, split, modality="eeg", **kw)


def load_fmri_source(source, subject=1, split: str = "test", **kw) -> NeuralDataset:
    """:func:`load_source` restricted to fMRI sources: one dataset with a 'roi' channel descriptor.

    An old ``{roi: NeuralDataset}`` dict passes through, joined into one dataset.
    """
    if isinstance(source, dict):
        return NeuralDataset.from_rois(source)
    return load_source(source, subject, split, modality="fmri", **kw)


def load_dataset(source, subject=1, split: str = "test", kind: str = "eeg", **kw):
    """:func:`load_source` for ``kind`` (a modality name)."""
    if kind == "fmri":
        return load_fmri_source(source, subject, split, **kw)
    return load_source(source, subject, split, modality=kind, **kw)


def _check_options(func: Callable, options: dict, what: str) -> None:
    """ConfigError naming the accepted options when ``func`` does not take ``options``."""
    import inspect

    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
                or (p.default is not inspect.Parameter.empty and n != "split")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"{what} has no option {unknown[0]!r}: options are {', '.join(accepted) or 'none'}")


def _modality_arg(modality, kw: dict):
    """Accept the deprecated ``kind=`` keyword for ``modality``."""
    if "kind" in kw:
        warnings.warn("kind= is deprecated: use modality=", DeprecationWarning, stacklevel=3)
        modality = kw.pop("kind")
    if kw:
        raise TypeError(f"unexpected keyword argument(s) {sorted(kw)}")
    return modality
