"""Old import path of the THINGS-EEG2 loader, which is a source of the neural-data plugin
(``brainalign_neuraldata.things_eeg2``). Every name is forwarded, so
``from brainalign.data.things_eeg2 import load_things_eeg2`` keeps working."""


def __getattr__(name: str):
    from brainalign_neuraldata import things_eeg2

    return getattr(things_eeg2, name)
