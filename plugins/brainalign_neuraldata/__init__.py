"""First-party brainalign plugin: the built-in neural data sources.

Registers, through the same ``brainalign_datasets`` hook a third-party plugin uses:

* ``things-eeg2`` (EEG, alias ``things``): ``things-eeg2:ROOT``, the THINGS-EEG2 preprocessed release;
* ``shen-fmri`` (fMRI, alias ``shen``): ``shen:PATH``, a Shen 2019 BData file or a folder
  of them (``sub-XX_*Test*.h5`` / ``*Training*.h5`` picked by subject and split);
* ``synthetic`` (EEG and fMRI): ``synthetic`` or ``synthetic:SEED``, the synthetic brain;
* ``mne`` (alias ``meg``; EEG or MEG, as the channels say): ``mne:PATH``, an MNE epochs file
  (``*-epo.fif``) or a folder of ``sub-XX*-epo.fif`` files, with ``images=DIR`` (event
  names matched to '<event>.<ext>' files) or a mapping;
* ``rdm`` (any modality): ``rdm:PATH``, precomputed RDMs (.npy, .mat, rsatoolbox HDF5)
  with ``images=DIR`` -> :class:`brainalign.data.neural_rdms.NeuralRDMs`.

Each source is one module of this package with a ``specs()`` function; this file lists them.
"""
from __future__ import annotations

from brainalign.hookspecs import hookimpl


@hookimpl
def brainalign_datasets():
    from . import mne_epochs, rdm_files, shen_fmri, synthetic, things_eeg2

    return [spec for module in (things_eeg2, shen_fmri, synthetic, mne_epochs, rdm_files) for spec in module.specs()]
