"""Old import path of the Shen 2019 fMRI loader, which is a source of the neural-data plugin
(``brainalign_neuraldata.shen_fmri``). Every name is forwarded, so
``from brainalign.data.shen_fmri import load_shen_fmri`` keeps working."""


def __getattr__(name: str):
    from brainalign_neuraldata import shen_fmri

    return getattr(shen_fmri, name)
