"""The 'mne' / 'meg' source: an MNE Epochs object built here, saved as -epo.fif, loaded by name."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

mne = pytest.importorskip("mne")

from brainalign.cli import main  # noqa: E402
from brainalign.data.registry import load_eeg_source, load_source, parse_source, source_subjects  # noqa: E402
from brainalign.errors import DataError  # noqa: E402

EVENTS = {"cat": 1, "dog": 2, "car": 3}
CH = (["MEG 0111", "MEG 0112", "MEG 0113", "EEG 001"], ["mag", "grad", "grad", "eeg"])
N_REP = 4


def _epochs(rng):
    codes = np.tile(list(EVENTS.values()), N_REP)
    data = rng.normal(size=(len(codes), len(CH[0]), 30)) * 1e-12 + codes[:, None, None] * 1e-13
    info = mne.create_info(CH[0], sfreq=200.0, ch_types=CH[1])
    events = np.stack([np.arange(len(codes)) * 100, np.zeros_like(codes), codes], 1)
    return mne.EpochsArray(data, info, events=events, tmin=-0.05, event_id=EVENTS, verbose=False), data, codes


@pytest.fixture()
def meg(tmp_path):
    rng = np.random.default_rng(0)
    epochs, data, codes = _epochs(rng)
    folder = tmp_path / "meg"
    folder.mkdir()
    path = folder / "sub-02_task-images-epo.fif"
    epochs.save(path, verbose=False)
    images = tmp_path / "stimuli"
    images.mkdir()
    for name in EVENTS:
        Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(images / f"{name}.png")
    return path, images, data, codes


def test_meg_epochs_file_by_name_with_channel_types(meg):
    path, images, data, codes = meg
    ds = load_source(f"meg:{path}", 2, images=images, average_repetitions=False, image_size=10)
    assert ds.modality == "meg" and ds.subject == 2 and list(ds.stimulus_ids) == list(EVENTS)
    assert [p.stem for p in ds.images.paths] == list(EVENTS)  # event names matched to '<event>.png'
    assert list(ds.channel_descriptors["type"]) == CH[1] and ds.channel_names == CH[0]
    np.testing.assert_allclose(ds.times[[0, -1]], [-0.05, -0.05 + 29 / 200])
    assert ds.repetitions.shape == (3, N_REP, 4, 30)
    np.testing.assert_allclose(ds.responses[1], data[codes == EVENTS["dog"]].mean(0), rtol=1e-5)
    grads = ds.select_channels(type="grad")
    assert grads.channel_names == CH[0][1:3]
    assert ds.meta["file"] == str(path)


def test_picks_window_folder_and_detection(meg):
    path, images, data, codes = meg
    folder = path.parent
    assert parse_source(str(path))[0].name == "mne" and parse_source(str(folder))[0].name == "mne"
    assert source_subjects(f"mne:{folder}") == [2]
    ds = load_source(f"mne:{folder}", 2, images=images, picks="eeg", time_window=(0.0, 0.05))
    assert ds.modality == "eeg" and ds.channel_names == ["EEG 001"]  # the channels decide the modality
    assert ds.response_shape == (1, 10)
    np.testing.assert_allclose(ds.times, np.arange(10) / 200, atol=1e-9)
    assert load_eeg_source(str(path), 2, images=images).modality == "meg"  # usable wherever EEG is
    mapping = {"cat": images / "car.png", "dog": images / "dog.png", "car": images / "cat.png"}
    swapped = load_source(f"mne:{path}", 2, images=mapping)
    assert [p.stem for p in swapped.images.paths] == ["car", "dog", "cat"]


def test_meg_bad_input(meg, tmp_path, capsys):
    path, images, *_ = meg
    with pytest.raises(DataError, match="pass images="):
        load_source(f"mne:{path}", 2)
    (images / "dog.png").unlink()
    with pytest.raises(DataError, match=r"no image in .* for 1 event\(s\) of the epochs, e.g. dog"):
        load_source(f"mne:{path}", 2, images=images)
    with pytest.raises(DataError, match=r"no file in .* match sub-05"):
        load_source(f"mne:{path.parent}", 5, images=images)
    bogus = tmp_path / "bogus-epo.fif"
    bogus.write_bytes(b"not a fif file")
    with pytest.raises(DataError, match="cannot read .*bogus-epo.fif as MNE epochs"):
        load_source(f"mne:{bogus}", 1, images=images)
    with pytest.raises(DataError, match="picks='seeg' selects no channels"):
        load_source(f"mne:{path}", 2, images=images, picks="seeg")
    assert main(["data", "mne", str(path)]) == 0
    out = capsys.readouterr().out
    assert "12 epochs, 1 mag channel, 2 grad channels, 1 eeg channel" in out and "events: cat, dog, car" in out
