"""THINGS-EEG2 loader on files written here in the real layout with plain numpy/PIL."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from brainalign.cli import main
from brainalign.data.things_eeg2 import DEFAULT_CHANNELS, load_things_eeg2, things_eeg2_summary
from brainalign.errors import DataError

TIMES = np.round(-0.2 + np.arange(100) / 100.0, 2)  # -0.2 .. 0.79 s, 100 Hz
# File order differs from the requested order (the loader must select by name), plus extras.
FILE_CHANNELS = ["Fp1", *reversed(DEFAULT_CHANNELS), "Cz"]
N_TRAIN, R_TRAIN, N_TEST, R_TEST = 6, 4, 4, 5


def _write_subject(root, sub, rng, train=None, test=None):
    d = root / "preprocessed_data" / f"sub-{sub:02d}"
    d.mkdir(parents=True, exist_ok=True)
    train = rng.normal(2.0, 3.0, (N_TRAIN, R_TRAIN, len(FILE_CHANNELS), 100)) if train is None else train
    test = rng.normal(2.0, 3.0, (N_TEST, R_TEST, len(FILE_CHANNELS), 100)) if test is None else test
    for split, arr in (("training", train), ("test", test)):
        np.save(d / f"preprocessed_eeg_{split}.npy",
                {"preprocessed_eeg_data": arr, "ch_names": list(FILE_CHANNELS), "times": TIMES}, allow_pickle=True)
    return train, test


def _write_images(root, rng):
    meta = {}
    for split, short, n, per in (("training_images", "train", N_TRAIN, 2), ("test_images", "test", N_TEST, 1)):
        files, concepts = [], []
        for i in range(n):
            concept = f"{i // per + 1:05d}_thing{i // per}"
            name = f"thing{i // per}_{i % per + 1:02d}{'b' if short == 'train' else 's'}.jpg"
            p = root / "image_set" / split / concept / name
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(p)
            files.append(name)
            concepts.append(concept)
        meta[f"{short}_img_files"] = files
        meta[f"{short}_img_concepts"] = concepts
    np.save(root / "image_set" / "image_metadata.npy", meta, allow_pickle=True)
    return meta


@pytest.fixture()
def release(tmp_path):
    rng = np.random.default_rng(0)
    train, test = _write_subject(tmp_path, 1, rng)
    _write_subject(tmp_path, 3, rng)
    meta = _write_images(tmp_path, rng)
    return tmp_path, train, test, meta


def _idx(names):
    return [FILE_CHANNELS.index(c) for c in names]


def test_shapes_channel_order_window_and_zscored_average(release):
    root, train, test, meta = release
    ds = load_things_eeg2(root, 1, "test", image_size=32)
    assert ds.responses.shape == (N_TEST, 17, 20) and ds.repetitions is None
    assert ds.channel_names == list(DEFAULT_CHANNELS)
    np.testing.assert_allclose(ds.times, np.arange(20) / 100.0, atol=1e-9)
    # Independent computation: select by name and window, z-score with training stats over images x reps.
    ch = _idx(DEFAULT_CHANNELS)
    t = np.arange(20, 40)
    tr = train[:, :, ch][..., t]
    mu, sd = tr.mean(axis=(0, 1)), tr.std(axis=(0, 1))
    expected = ((test[:, :, ch][..., t] - mu) / sd).mean(1)
    np.testing.assert_allclose(ds.responses, expected, rtol=1e-4, atol=1e-5)
    assert list(ds.concepts) == meta["test_img_concepts"]
    assert list(ds.stimulus_ids) == meta["test_img_files"]
    assert ds.images.load([0]).shape == (1, 3, 32, 32)
    assert ds.modality == "eeg" and ds.subject == 1


def test_raw_repetitions_custom_channels_and_window(release):
    root, train, test, _ = release
    chans = ["Pz", "O1", "Cz"]
    ds = load_things_eeg2(root, "sub-01", "training", channels=chans, time_window=(-0.05, 0.1),
                          average_repetitions=False, zscore=False, check_images=False)
    t = np.flatnonzero((TIMES >= -0.05 - 1e-9) & (TIMES < 0.1 - 1e-9))
    assert len(t) == 15
    expected = train[:, :, _idx(chans)][..., t]
    assert ds.repetitions.shape == (N_TRAIN, R_TRAIN, 3, 15)
    np.testing.assert_allclose(ds.repetitions, expected, rtol=1e-5)
    np.testing.assert_allclose(ds.responses, expected.mean(1), rtol=1e-5, atol=1e-6)
    assert ds.channel_names == chans
    assert ds.trials().shape == (N_TRAIN, R_TRAIN, 3, 15)


def test_training_split_zscored_has_unit_stats_and_metadata_at_root(release):
    root, *_ = release
    (root / "image_set" / "image_metadata.npy").rename(root / "image_metadata.npy")  # also accepted
    ds = load_things_eeg2(root, 1, "training", average_repetitions=False)
    np.testing.assert_allclose(ds.repetitions.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(ds.repetitions.std(axis=(0, 1)), 1, atol=1e-4)


def test_summary_and_cli(release, capsys):
    root, *_ = release
    s = things_eeg2_summary(root, 1)
    assert s["splits"]["test"]["shape"] == (N_TEST, R_TEST, 19, 100)
    assert s["splits"]["training"]["n_concepts"] == 3 and s["splits"]["test"]["n_default_window"] == 20
    assert main(["data", "things-eeg2", str(root), "--subject", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 images x 5 repetitions x 19 channels x 100 times" in out and "-0.200 .. 0.790 s" in out
    assert "concepts: 3 (2 images each)" in out
    assert main(["data", "things-eeg2", str(root), "--subject", "2"]) == 2
    assert "sub-01, sub-03" in capsys.readouterr().err


# --- bad input: each a DataError naming the file/field ---------------------------------------
def test_missing_root_and_subject(tmp_path, release):
    root, *_ = release
    with pytest.raises(DataError, match="does not exist"):
        load_things_eeg2(tmp_path / "nope", 1)
    with pytest.raises(DataError, match="preprocessed_data"):
        load_things_eeg2(root / "image_set", 1)
    with pytest.raises(DataError, match=r"sub-02 not found.*sub-01, sub-03"):
        load_things_eeg2(root, 2)
    with pytest.raises(DataError, match="subject number"):
        load_things_eeg2(root, "alice")


def test_wrong_keys_and_shapes(release):
    root, *_ = release
    f = root / "preprocessed_data" / "sub-01" / "preprocessed_eeg_test.npy"
    np.save(f, {"eeg": np.zeros((2, 2, 19, 100)), "ch_names": FILE_CHANNELS, "times": TIMES}, allow_pickle=True)
    with pytest.raises(DataError, match=r"preprocessed_eeg_test.npy lacks key.*preprocessed_eeg_data"):
        load_things_eeg2(root, 1)
    np.save(f, {"preprocessed_eeg_data": np.zeros((2, 19, 100)), "ch_names": FILE_CHANNELS, "times": TIMES},
            allow_pickle=True)
    with pytest.raises(DataError, match=r"preprocessed_eeg_test.npy.*'preprocessed_eeg_data' must be 4-D"):
        load_things_eeg2(root, 1)
    np.save(f, {"preprocessed_eeg_data": np.zeros((4, 2, 19, 90)), "ch_names": FILE_CHANNELS, "times": TIMES},
            allow_pickle=True)
    with pytest.raises(DataError, match=r"'times' has 100 values.*90 time points"):
        load_things_eeg2(root, 1)
    np.save(f, np.zeros((4, 2, 19, 100)))  # a bare array, not the pickled dict
    with pytest.raises(DataError, match="does not hold a pickled dict"):
        load_things_eeg2(root, 1)
    f.write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read .*preprocessed_eeg_test.npy"):
        load_things_eeg2(root, 1)


def test_channels_window_and_empty_selections(release):
    root, *_ = release
    with pytest.raises(DataError, match=r"\['Oz9'\] not in ch_names.*Available channels: Fp1, P8"):
        load_things_eeg2(root, 1, channels=["O1", "Oz9"])
    with pytest.raises(DataError, match=r"outside the recording.*-0.200 .. 0.790 s"):
        load_things_eeg2(root, 1, time_window=(0.0, 200.0))
    with pytest.raises(DataError, match="empty"):
        load_things_eeg2(root, 1, time_window=(0.1, 0.1))
    with pytest.raises(DataError, match="selects no samples"):
        load_things_eeg2(root, 1, time_window=(0.101, 0.105))
    with pytest.raises(DataError, match="empty channel selection"):
        load_things_eeg2(root, 1, channels=[])


def test_count_mismatch_missing_unreadable_images_and_nan(release):
    root, train, test, meta = release
    bad = dict(meta, test_img_files=meta["test_img_files"][:3], test_img_concepts=meta["test_img_concepts"][:3])
    np.save(root / "image_set" / "image_metadata.npy", bad, allow_pickle=True)
    with pytest.raises(DataError, match=r"image count != response count.*3 test_img_files.*4 images"):
        load_things_eeg2(root, 1)
    np.save(root / "image_set" / "image_metadata.npy", meta, allow_pickle=True)
    img = root / "image_set" / "test_images" / meta["test_img_concepts"][2] / meta["test_img_files"][2]
    img.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=f"cannot read image .*{img.name}"):
        load_things_eeg2(root, 1)
    img.unlink()
    with pytest.raises(DataError, match=f"missing: .*{img.name}"):
        load_things_eeg2(root, 1)
    (root / "image_set" / "image_metadata.npy").unlink()
    with pytest.raises(DataError, match="image_metadata.npy not found"):
        load_things_eeg2(root, 1)
    _write_images(root, np.random.default_rng(1))
    test = test.copy()
    test[1, 2, FILE_CHANNELS.index("Oz"), 25] = np.nan
    _write_subject(root, 1, np.random.default_rng(0), train=train, test=test)
    with pytest.raises(DataError, match=r"preprocessed_eeg_test.npy.*1 NaN/Inf"):
        load_things_eeg2(root, 1)
    # NaN outside the selected channels/window does not matter.
    assert load_things_eeg2(root, 1, channels=["O1"]).responses.shape == (N_TEST, 1, 20)


def test_zscore_needs_training_file(release):
    root, *_ = release
    (root / "preprocessed_data" / "sub-03" / "preprocessed_eeg_training.npy").unlink()
    with pytest.raises(DataError, match="training file .*missing.*zscore=False"):
        load_things_eeg2(root, 3, check_images=False)
    assert load_things_eeg2(root, 3, zscore=False, check_images=False).responses.shape == (N_TEST, 17, 20)
