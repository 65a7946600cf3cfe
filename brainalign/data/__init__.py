"""Neural data: the modality-agnostic data model, sources by name, user data, the synthetic brain.

Dataset sources (THINGS-EEG2, Shen fMRI, MNE epochs, RDM files, the synthetic brain) are
plugins (``brainalign_datasets`` hook); ``load_things_eeg2`` and friends are their loaders.
"""
from .dataset import NeuralDataset
from .images import ImageSet

# Loaders are imported on first use so ``import brainalign.data`` stays light.
_LAZY = {
    "SyntheticBrain": "synthetic", "SyntheticConfig": "synthetic",
    "load_things_eeg2": "things_eeg2", "things_eeg2_summary": "things_eeg2",
    "load_shen_fmri": "shen_fmri", "shen_summary": "shen_fmri",
    "from_arrays": "user", "from_folder": "user", "from_mne_epochs": "user", "load_mne_epochs": "user",
    "NeuralRDMs": "neural_rdms", "load_rdms": "neural_rdms",
    "DatasetSpec": "registry", "available_datasets": "registry", "load_source": "registry",
    "load_eeg_source": "registry", "load_fmri_source": "registry", "load_dataset": "registry",
    "DEFAULT_CHANNELS": "_eeg",
}

__all__ = ["NeuralDataset", "ImageSet", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
