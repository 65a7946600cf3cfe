"""User-facing errors.

Every error a user can cause derives from :class:`BrainAlignError`; its message names
the problem and the fix. The CLI prints such errors as one line and exits with code 2;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class BrainAlignError(Exception):
    """Base class of errors caused by input (data, arguments, files), not by bugs."""


class ConfigError(BrainAlignError, ValueError):
    """An argument or setting is invalid (wrong value, wrong type, incompatible options)."""


class DataError(BrainAlignError, ValueError):
    """Neural data or images are missing, malformed or inconsistent."""


class LayerError(BrainAlignError, ValueError):
    """A requested layer does not exist in the model."""


class BackboneError(BrainAlignError, ValueError):
    """An unknown backbone name, or a backbone that cannot be built."""


class MissingWeightsError(BrainAlignError, FileNotFoundError):
    """Pretrained weights are neither cached nor downloadable, or a weights file is missing."""


class CheckpointError(BrainAlignError, ValueError):
    """A checkpoint or saved model is corrupted, truncated or belongs to another setup."""


class OutputExistsError(BrainAlignError, FileExistsError):
    """An output path exists and would be overwritten."""


class TrainingError(BrainAlignError, RuntimeError):
    """Training cannot continue (e.g. a NaN loss); the message says where and what was kept."""


def suggest(name: str, choices, n: int = 3) -> str:
    """Return ' Did you mean: a, b?' for the closest ``choices`` to ``name`` (or '')."""
    import difflib

    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=n, cutoff=0.5)
    if not close:  # substring matches help with long dotted module names
        close = [c for c in choices if str(name).lower() in c.lower()][:n]
    return f" Did you mean: {', '.join(close)}?" if close else ""


class ResourceError(BrainAlignError, MemoryError):
    """A run would need more memory than is available; the message gives the estimate and the fix."""


class OutputError(BrainAlignError, OSError):
    """An output path cannot be written (read-only, a file in the way, disk full, missing mount)."""


class RunLockedError(BrainAlignError, RuntimeError):
    """Another live process holds the folder (a run, a cache being built)."""


class PluginError(BrainAlignError, RuntimeError):
    """A plugin is malformed: an unknown hook name, a wrong hook signature or a wrong return value."""
