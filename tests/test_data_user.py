"""User data: arrays, image folder + .npy, mne.Epochs; and the dataset registry / source strings."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign import hookimpl
from brainalign.cli import main
from brainalign.data import NeuralDataset
from brainalign.data.registry import DatasetSpec, available_datasets, load_eeg_source, load_fmri_source, \
    load_source, parse_source, source_subjects
from brainalign.data.user import from_arrays, from_folder, from_mne_epochs
from brainalign.errors import DataError, OutputExistsError


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "stimuli"
    d.mkdir()
    for name in ["b.png", "a.png", "c.jpg"]:
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(d / name)
    (d / "notes.txt").write_text("not an image")
    return d


def test_from_arrays_eeg_and_repetitions():
    imgs = torch.rand(5, 3, 8, 8)
    reps = np.random.default_rng(0).normal(size=(5, 3, 4, 6))
    ds = from_arrays(imgs, repetitions=reps, channel_names=list("ABCD"), times=np.arange(6) / 100,
                     concepts=list("xxyyz"), subject=7)
    assert ds.modality == "eeg" and ds.responses.shape == (5, 4, 6)
    np.testing.assert_allclose(ds.responses, reps.mean(1), atol=1e-6)
    assert ds.targets().shape == (5, 24) and ds.trials().shape == (5, 3, 4, 6)
    assert from_arrays(imgs.permute(0, 2, 3, 1).numpy(), np.zeros((5, 10))).modality == "other"
    with pytest.raises(DataError, match=r"image count \(5\) != response count \(4\)"):
        from_arrays(imgs, np.zeros((4, 10)))
    with pytest.raises(DataError, match="NaN/Inf"):
        from_arrays(imgs, np.full((5, 2), np.nan))
    with pytest.raises(DataError, match="needs responses"):
        from_arrays(imgs)


def test_from_folder_sorted_and_order_file(folder, tmp_path):
    resp = np.arange(3 * 4, dtype=float).reshape(3, 4)
    np.save(tmp_path / "r.npy", resp)
    ds = from_folder(folder, tmp_path / "r.npy", image_size=12, modality="fmri")
    assert list(ds.stimulus_ids) == ["a.png", "b.png", "c.jpg"]
    assert [p.name for p in ds.images.paths] == ["a.png", "b.png", "c.jpg"]
    np.testing.assert_array_equal(ds.responses, resp)
    assert ds.images.load([2]).shape == (1, 3, 12, 12)
    (tmp_path / "order.txt").write_text("c.jpg\na.png\nb.png\n")
    ds = from_folder(folder, resp, order=tmp_path / "order.txt")
    assert list(ds.stimulus_ids) == ["c.jpg", "a.png", "b.png"]
    trials = np.random.default_rng(0).normal(size=(3, 2, 5, 7))
    ds = from_folder(folder, trials)
    assert ds.repetitions.shape == (3, 2, 5, 7) and ds.modality == "eeg"


def test_from_folder_bad_input(folder, tmp_path):
    with pytest.raises(DataError, match=r"image count != response count: 3 images .* 4 rows"):
        from_folder(folder, np.zeros((4, 2)))
    with pytest.raises(DataError, match="responses file .* not found"):
        from_folder(folder, tmp_path / "missing.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="without unpickling"):
        from_folder(folder, tmp_path / "obj.npy")
    with pytest.raises(DataError, match="missing, e.g.*zzz.png"):
        from_folder(folder, np.zeros((1, 2)), order=["zzz.png"])
    with pytest.raises(DataError, match="image folder .* not found"):
        from_folder(tmp_path / "none", np.zeros((1, 2)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        from_folder(empty, np.zeros((1, 2)))
    (folder / "a.png").write_bytes(b"broken")
    ds = from_folder(folder, np.zeros((3, 2)))
    with pytest.raises(DataError, match="cannot read image .*a.png"):
        ds.images.load([0])


def test_from_mne_epochs_averages_per_image():
    mne = pytest.importorskip("mne")
    rng = np.random.default_rng(0)
    n_ch, n_t = 3, 11
    events_codes = np.array([10, 20, 10, 30, 20, 30, 10, 20, 30])
    data = rng.normal(size=(len(events_codes), n_ch, n_t))
    info = mne.create_info(["O1", "Oz", "O2"], sfreq=100.0, ch_types="eeg")
    events = np.stack([np.arange(len(events_codes)) * 100, np.zeros_like(events_codes), events_codes], 1)
    epochs = mne.EpochsArray(data, info, events=events, tmin=-0.05, event_id={"cat": 10, "dog": 20, "car": 30},
                             verbose=False)
    imgs = torch.rand(3, 3, 8, 8)
    ds = from_mne_epochs(epochs, imgs, average_repetitions=False)
    assert ds.responses.shape == (3, n_ch, n_t) and ds.channel_names == ["O1", "Oz", "O2"]
    np.testing.assert_allclose(ds.responses[1], data[events_codes == 20].mean(0), rtol=1e-5)
    assert ds.repetitions.shape == (3, 3, n_ch, n_t)
    np.testing.assert_allclose(ds.times[0], -0.05)
    with pytest.raises(DataError, match="have no epochs"):
        from_mne_epochs(epochs, imgs, event_to_image={"car": 0, "cat": 2})
    ds = from_mne_epochs(epochs, imgs[:2], event_to_image={"car": 0, "cat": 1}, channels=["Oz"])
    np.testing.assert_allclose(ds.responses[0, 0], data[events_codes == 30][:, 1].mean(0), rtol=1e-5)
    with pytest.raises(DataError, match="event 'bird' is not in"):
        from_mne_epochs(epochs, imgs, event_to_image={"bird": 0})
    with pytest.raises(DataError, match="3 distinct event codes but 2 images"):
        from_mne_epochs(epochs, imgs[:2])


# --- registry and source strings ----------------------------------------------------------------
def test_plugin_registers_datasets():
    names = {(s.modality, s.name) for s in available_datasets()}
    assert {("eeg", "things-eeg2"), ("fmri", "shen-fmri"), ("eeg", "synthetic"), ("fmri", "synthetic"),
            (None, "mne"), (None, "rdm")} <= names
    assert {s.name for s in available_datasets("fmri")} == {"shen-fmri", "synthetic", "mne", "rdm"}
    assert all(s.kind == s.modality for s in available_datasets())  # the old attribute name still reads


def test_sources_synthetic_and_written_layouts(tmp_path, capsys):
    small = dict(n_train_concepts=3, n_test_concepts=2, train_images_per_concept=2, test_images_per_concept=2,
                 n_subjects=2)
    mem = load_eeg_source("synthetic:5", 2, "test", **small)
    assert isinstance(mem, NeuralDataset) and mem.responses.shape == (4, 17, 20) and mem.meta["seed"] == 5
    assert load_eeg_source(mem) is mem
    assert load_source("synthetic:5", 2, "test", modality="eeg", **small).responses.shape == (4, 17, 20)
    assert source_subjects("synthetic:5", "eeg") == [1, 2, 3, 4]  # the default brain of seed 5
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--seed", "5", "--subjects", "2", "--concepts", "3",
                 "--test-concepts", "2", "--images-per-concept", "2", "--test-images-per-concept", "2"]) == 0
    things = out / "things-eeg2"
    assert parse_source(str(things))[0].name == "things-eeg2"  # bare root auto-detected
    assert source_subjects(f"things-eeg2:{things}") == [1, 2] and source_subjects(str(out / "shen")) == [1, 2]
    for src in (f"things-eeg2:{things}", str(things)):
        disk = load_eeg_source(src, 2, "test", image_size=64)
        np.testing.assert_allclose(disk.responses, mem.responses, atol=1e-5)
    rois = load_fmri_source(f"shen:{out / 'shen'}", 1, "test", image_size=64)
    ref = load_fmri_source("synthetic:5", 1, "test", **small)
    assert rois.rois == ref.rois == ["V1", "V2", "V3", "V4", "LOC"]
    np.testing.assert_allclose(rois.select_channels(roi="LOC").responses, ref.select_channels(roi="LOC").responses,
                               atol=1e-5)
    assert list(rois.stimulus_ids) == list(ref.stimulus_ids)
    f = next((out / "shen").glob("sub-02_*Training*.h5"))
    assert load_fmri_source(str(f), 2, rois=["V1"]).responses.shape == (6, 64)  # bare .h5 detected
    with pytest.warns(DeprecationWarning):  # an old {roi: dataset} dict passes through, joined
        old = {"V1": rois["V1"], "LOC": rois["LOC"]}
    assert load_fmri_source(old).rois == ["V1", "LOC"]
    # refusing a non-empty output folder, then overwriting without deleting user files
    (out / "mine.txt").write_text("keep me")
    assert main(["synth", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(OutputExistsError):
        from brainalign.cli.synth import run

        run(type("A", (), dict(out=str(out), overwrite=False, seed=0, subjects=None, concepts=None,
                               test_concepts=None, images_per_concept=None, test_images_per_concept=None,
                               image_size=None, snr=None, format="both"))())
    assert (out / "mine.txt").read_text() == "keep me"


def test_unknown_sources(tmp_path):
    with pytest.raises(DataError, match=r"unknown eeg data source 'thingz:/x'.*Did you mean: things.*Accepted: "
                                        r"things-eeg2: THINGS-EEG2"):
        load_eeg_source("thingz:/x", 1)
    with pytest.raises(DataError, match="things-eeg2 needs the release folder"):
        load_eeg_source("things-eeg2:", 1)
    with pytest.raises(DataError, match="seed and must be an integer"):
        load_eeg_source("synthetic:abc", 1)
    (tmp_path / "x.txt").write_text("?")
    with pytest.raises(DataError, match="cannot tell which eeg dataset"):
        load_eeg_source(str(tmp_path / "x.txt"), 1)
    with pytest.raises(DataError, match=r"no file in .* match sub-01\*test\*.h5"):
        load_fmri_source(f"shen:{tmp_path}", 1)
    with pytest.raises(DataError, match="dataset 'shen' gives fmri data, not eeg"):
        load_eeg_source("shen:/x", 1)
    with pytest.raises(DataError, match="'synthetic' provides eeg, fmri data: pass modality="):
        load_source("synthetic", 1)
    with pytest.raises(DataError, match="THINGS-EEG2 root .*nowhere does not exist"):
        source_subjects(f"things-eeg2:{tmp_path / 'nowhere'}")


class _ToyPlugin:
    """A third-party dataset plugin: one source, registered through the public hook."""

    calls: list = []

    @staticmethod
    @hookimpl
    def brainalign_datasets():
        def load(location, subject, split="test", **kw):
            _ToyPlugin.calls.append((location, subject, split, kw))
            rng = np.random.default_rng(int(subject))
            return from_arrays(torch.rand(4, 3, 8, 8), rng.normal(size=(4, 5)), modality="ecog", subject=subject)

        return [DatasetSpec("toy", load, "a toy ECoG source (toy:ANY)", modality="ecog",
                            subjects=lambda location: [3, 7], describe=lambda loc, subject, split=None: f"toy {loc}")]


@pytest.fixture()
def toy_plugin():
    from brainalign.plugin_manager import get_plugin_manager, register_plugin

    pm = get_plugin_manager()
    register_plugin(pm, _ToyPlugin, "toy_datasets")
    yield _ToyPlugin
    pm.unregister(name="toy_datasets")


def test_a_plugin_source_works_everywhere_by_name(toy_plugin, capsys):
    from brainalign.evaluate.data_sources import default_subjects, load_subjects

    ds = load_source("toy:here", 3, "test", extra=1)
    assert ds.modality == "ecog" and toy_plugin.calls[-1] == ("here", 3, "test", {"extra": 1})
    assert default_subjects("toy:x") == [3, 7]
    assert list(load_subjects("toy:x", None, modality="ecog")) == [3, 7]  # every subject the source lists
    with pytest.raises(DataError, match="'toy' gives ecog data, not eeg"):
        load_eeg_source("toy:x", 1)
    assert main(["data", "toy", "somewhere"]) == 0 and capsys.readouterr().out.strip() == "toy somewhere"
    assert main(["data", "list"]) == 0 and "ecog  toy: a toy ECoG source" in capsys.readouterr().out


def test_dataset_spec_kind_is_deprecated_and_modality_is_any_name():
    with pytest.warns(DeprecationWarning, match="use modality="):
        spec = DatasetSpec("old", lambda *a: None, kind="fmri")
    assert spec.modality == spec.kind == "fmri"
    assert DatasetSpec("x", lambda *a: None, "", "behaviour").modality == "behaviour"  # positional, as before
    with pytest.raises(DataError, match="modality must be a name"):
        DatasetSpec("bad", lambda *a: None, modality="")
