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


def test_summary_and_cli_show_what_a_default_load_gives(release, capsys):
    root, *_ = release
    s = things_eeg2_summary(root, 1)
    assert s["splits"]["test"]["shape"] == (N_TEST, R_TEST, 19, 100) and s["splits"]["training"]["n_concepts"] == 3
    load = s["load"]
    assert load["channels"] == list(DEFAULT_CHANNELS) and load["n_times"] == 20
    assert (load["tmin"], load["tmax"]) == (0.0, 0.19) and load["zscore"] == "feature"
    assert load["zscore_source"] == "training split"
    assert main(["data", "things-eeg2", str(root), "--subject", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 images x 5 repetitions x 19 channels x 100 times" in out and "-0.200 .. 0.790 s" in out
    assert "concepts: 3 (2 images each)" in out and "concepts: 4 (1 image each)" in out  # grammar
    assert f"17 channels, selected by name in this order: {', '.join(DEFAULT_CHANNELS)}" in out
    assert "0-200 ms = 20 samples (0.000 .. 0.190 s)" in out
    assert "z-scored per channel x time point ('feature') with the statistics of the training split" in out
    assert main(["data", f"things-eeg2:{root}", "-o", "zscore=global", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "one mean and one std ('global'" in out and "training:" not in out
    assert main(["data", "things-eeg2", str(root), "--subject", "2"]) == 2
    assert "sub-01, sub-03" in capsys.readouterr().err
    assert main(["data", str(root), "-o", "zscor=global"]) == 2  # a bare root is recognised; option names checked
    assert "no option 'zscor': options are zscore" in capsys.readouterr().err


def test_zscore_modes_feature_global_and_none(release):
    root, train, test, _ = release
    ch, t = _idx(DEFAULT_CHANNELS), np.arange(20, 40)
    tr, te = train[:, :, ch][..., t], test[:, :, ch][..., t]
    kw = dict(check_images=False, average_repetitions=False)
    glob = load_things_eeg2(root, 1, "test", zscore="global", **kw)
    np.testing.assert_allclose(glob.repetitions, (te - tr.mean()) / tr.std(), rtol=1e-4, atol=1e-5)  # ONE mean/std
    assert glob.meta["zscore"] == "global" and glob.meta["zscore_source"] == "training split"
    feat = load_things_eeg2(root, 1, "test", zscore=True, **kw)  # True is the old spelling of 'feature'
    np.testing.assert_allclose(feat.repetitions, (te - tr.mean((0, 1))) / tr.std((0, 1)), rtol=1e-4, atol=1e-5)
    raw = load_things_eeg2(root, 1, "test", zscore=None, **kw)
    np.testing.assert_allclose(raw.repetitions, te, rtol=1e-5)
    assert load_things_eeg2(root, 1, "test", zscore=False, **kw).meta["zscore"] is None
    # the global scaling keeps the average ERP (what the paper's head sees), 'feature' removes it
    train_feat = load_things_eeg2(root, 1, "training", **kw).repetitions
    train_glob = load_things_eeg2(root, 1, "training", zscore="global", **kw).repetitions
    np.testing.assert_allclose(train_feat.mean((0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose([train_glob.mean(), train_glob.std()], [0, 1], atol=1e-4)
    with pytest.raises(DataError, match="zscore must be 'feature', 'global' or None"):
        load_things_eeg2(root, 1, "test", zscore="channel", **kw)


def test_times_in_milliseconds_are_refused(tmp_path, release, capsys):
    root, train, test, _ = release
    d = root / "preprocessed_data" / "sub-01"
    np.save(d / "preprocessed_eeg_test.npy", {"preprocessed_eeg_data": test, "ch_names": list(FILE_CHANNELS),
                                              "times": TIMES * 1000}, allow_pickle=True)
    with pytest.raises(DataError, match=r"times run -200 .. 790 with step 10, which looks like milliseconds.*"
                                         r"divide them by 1000"):
        load_things_eeg2(root, 1, "test", check_images=False)
    with pytest.raises(DataError, match="milliseconds"):
        load_things_eeg2(root, 1, "test", time_window=None, check_images=False)
    assert main(["data", "things-eeg2", str(root), "--split", "test"]) == 0  # the summary shows the file and why
    assert "time window: " in (out := capsys.readouterr().out) and "looks like milliseconds" in out
    code = main(["compare", "cornet_tiny", "--no-pretrained", "--eeg", f"things-eeg2:{root}", "--subjects", "1",
                 "--out", str(tmp_path / "rep"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "looks like milliseconds" in err[0]
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").iterdir())


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


def test_test_file_alone_is_enough_for_evaluation(release, capsys):
    """Only the test file downloaded: z-scoring uses its own trials, with a note; training is for alignment."""
    root, _, test, _ = release
    (root / "preprocessed_data" / "sub-03" / "preprocessed_eeg_training.npy").unlink()
    ds = load_things_eeg2(root, 3, check_images=False, average_repetitions=False)
    assert "preprocessed_eeg_training.npy is missing" in capsys.readouterr().out
    assert ds.meta["zscore_source"] == "test split's own trials (training file missing)"
    np.testing.assert_allclose(ds.repetitions.mean((0, 1)), 0, atol=1e-5)
    assert load_things_eeg2(root, 3, zscore=None, check_images=False).responses.shape == (N_TEST, 17, 20)
    with pytest.raises(DataError, match=r"training.npy not found \(aligning models needs the training split"):
        load_things_eeg2(root, 3, "training", check_images=False)
    assert main(["data", "things-eeg2", str(root), "--subject", "3"]) == 0
    out = capsys.readouterr().out
    assert "training: preprocessed_eeg_training.npy not downloaded (needed only to align models)" in out
    assert "with the statistics of the test split's own trials (training file missing)" in out


def test_compare_runs_on_a_test_only_download(tmp_path, capsys):
    """`brainalign compare` on a THINGS-EEG2 root whose training files were never downloaded."""
    from brainalign.data.synthetic import SyntheticBrain

    root = tmp_path / "things"
    SyntheticBrain(n_train_concepts=2, n_test_concepts=4, train_images_per_concept=2, test_images_per_concept=2,
                   image_size=32, n_subjects=2, n_repetitions_train=2, n_repetitions_test=8).write_things_eeg2(root)
    for f in root.glob("preprocessed_data/sub-*/preprocessed_eeg_training.npy"):
        f.unlink()
    code = main(["compare", "cornet_tiny", "--no-pretrained", "--eeg", f"things-eeg2:{root}", "--out",
                 str(tmp_path / "rep"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "z-scored (feature) with its own trials' statistics" in captured.out and "EEG RSA" in captured.out
    assert (tmp_path / "rep" / "results.json").is_file()
