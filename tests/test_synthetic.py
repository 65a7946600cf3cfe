"""The synthetic brain: reproducible, hierarchical in time, with individual variability."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.data.synthetic import ROIS, STAGES, SyntheticBrain, SyntheticConfig
from brainalign.errors import ConfigError, DataError, OutputExistsError


# Extra brains in these tests are small: building one runs the hidden network on every image.
SMALL = dict(n_train_concepts=6, n_test_concepts=4, train_images_per_concept=3, test_images_per_concept=4,
             n_subjects=2, n_repetitions_test=8)


@pytest.fixture(scope="module")
def brain():
    return SyntheticBrain(seed=0)


def _rdm(x):
    return pdist(np.asarray(x, dtype=np.float64), "correlation")


def _rsa(a, b):
    return spearmanr(a, b)[0]


def test_shapes_defaults_and_disjoint_concepts(brain):
    cfg = brain.config
    tr = brain.eeg(1, "training")
    te = brain.eeg(1, "test", average_repetitions=False)
    n_tr = cfg.n_train_concepts * cfg.train_images_per_concept
    n_te = cfg.n_test_concepts * cfg.test_images_per_concept
    assert tr.responses.shape == (n_tr, 17, 20) and tr.repetitions is None
    assert te.repetitions.shape == (n_te, cfg.n_repetitions_test, 17, 20)
    assert 30 <= n_te <= 48
    assert te.channel_names[:3] == ["O1", "Oz", "O2"] and len(te.channel_names) == 17
    np.testing.assert_allclose(te.times, np.arange(20) / 100, atol=1e-9)
    assert not set(brain.concept_names("training")) & set(brain.concept_names("test"))
    assert len(set(tr.concepts)) == cfg.n_train_concepts
    img = brain.images("test").load([0, 1])
    assert img.shape == (2, 3, 64, 64) and 0 <= float(img.min()) and float(img.max()) <= 1
    assert brain.images("test", size=96).load([0]).shape == (1, 3, 96, 96)
    rois = brain.fmri(2, "test", average_repetitions=False)
    assert rois.rois == list(ROIS) and rois.responses.shape == (n_te, len(ROIS) * cfg.n_voxels)
    v1 = rois.select_channels(roi="V1")
    assert v1.responses.shape == (n_te, cfg.n_voxels)
    assert v1.repetitions.shape == (n_te, cfg.n_fmri_repetitions_test, cfg.n_voxels)


def test_reproducible_from_seed_and_seed_matters():
    a, b = SyntheticBrain(seed=3, **SMALL), SyntheticBrain(seed=3, **SMALL)
    np.testing.assert_array_equal(a.eeg_trials(2, "test"), b.eeg_trials(2, "test"))
    np.testing.assert_array_equal(a.image_tensor("training").numpy(), b.image_tensor("training").numpy())
    np.testing.assert_array_equal(a.fmri(1).select_channels(roi="LOC").responses,
                                  b.fmri(1).select_channels(roi="LOC").responses)
    c = SyntheticBrain(seed=4, **SMALL)
    assert not np.allclose(c.image_tensor("test").numpy(), a.image_tensor("test").numpy())
    assert c.concept_names("training") != a.concept_names("training")
    assert not np.allclose(c.eeg_trials(2, "test"), a.eeg_trials(2, "test"))


def test_zscored_with_training_statistics(brain):
    tr = brain.eeg(2, "training", average_repetitions=False)
    np.testing.assert_allclose(tr.repetitions.mean(axis=(0, 1)), 0, atol=1e-4)
    np.testing.assert_allclose(tr.repetitions.std(axis=(0, 1)), 1, atol=1e-3)
    raw_tr = brain.eeg_trials(2, "training")[:, :, :, 20:40]
    raw_te = brain.eeg_trials(2, "test")[:, :, :, 20:40]
    expected = ((raw_te - raw_tr.mean(axis=(0, 1))) / raw_tr.std(axis=(0, 1))).mean(1)
    np.testing.assert_allclose(brain.eeg(2, "test").responses, expected, rtol=1e-4, atol=1e-4)


def test_eeg_time_hierarchy_follows_hidden_stages(brain):
    """Early time points match early stages, late time points late stages (ground truth)."""
    stages = {s: _rdm(v) for s, v in brain.hidden_stages("test").items()}
    curves = {s: [] for s in STAGES}
    for subject in (1, 2):
        ds = brain.eeg(subject, "test", time_window=(0.0, 0.25))
        for s in STAGES:
            curves[s].append([_rsa(stages[s], _rdm(ds.responses[:, :, t])) for t in range(ds.responses.shape[2])])
    curves = {s: np.mean(c, 0) for s, c in curves.items()}
    times = ds.times
    peaks = [times[int(np.argmax(curves[s]))] for s in STAGES]
    assert peaks[0] < peaks[1] <= peaks[2] <= peaks[3] and peaks[0] < peaks[3]
    assert 0.06 <= peaks[0] <= 0.12 and 0.12 <= peaks[3] <= 0.2  # early stage ~60-120 ms, late ~120-200 ms
    # realistic onset: no stage is visible before ~50 ms
    assert max(abs(curves[s][times < 0.045]).max() for s in STAGES) < 0.1
    early, late = (times >= 0.06) & (times < 0.10), (times >= 0.15) & (times < 0.19)
    assert curves["stage1"][early].mean() > curves["stage4"][early].mean() + 0.2
    assert curves["stage4"][late].mean() > curves["stage1"][late].mean() + 0.2
    # before the stimulus there is no image information
    pre = brain.eeg(1, "test", time_window=(-0.2, 0.0))
    assert abs(np.mean([_rsa(stages["stage2"], _rdm(pre.responses[:, :, t])) for t in range(20)])) < 0.1


def test_fmri_rois_follow_the_hierarchy(brain):
    stages = {s: _rdm(v) for s, v in brain.hidden_stages("test").items()}
    rois = brain.fmri(1, "test")
    best = {roi: max(STAGES, key=lambda s: _rsa(stages[s], _rdm(ds.responses))) for roi, ds in rois.iter_rois()}
    assert best["V1"] == "stage1" and best["LOC"] == "stage4"


def test_reliable_but_noisy_repetitions_and_snr(brain):
    ds = brain.eeg(1, "test", average_repetitions=False)
    reps = ds.repetitions[..., 10:18].mean(-1)  # 100-170 ms: single trials are noisy, like real EEG
    r_half = _rsa(_rdm(reps[:, 0::2].mean(1)), _rdm(reps[:, 1::2].mean(1)))
    r_single = _rsa(_rdm(reps[:, 0]), _rdm(reps[:, 1]))
    assert r_half > 0.25 and r_single < r_half - 0.15

    def reliability(snr):
        r = SyntheticBrain(seed=0, snr=snr, **SMALL).eeg(1, "test", average_repetitions=False).repetitions
        r = r[..., 10:18].mean(-1)
        return _rsa(_rdm(r[:, 0::2].mean(1)), _rdm(r[:, 1::2].mean(1)))

    assert reliability(0.1) < reliability(2.0) - 0.3


def test_brain_weighs_within_concept_attributes():
    """Images of one concept evoke different responses, driven by attributes the labels ignore."""
    brain = SyntheticBrain(seed=0, snr=1.0)  # less noise than the default, to see the signal's structure
    ds = brain.eeg(1, "training")
    lab = brain.concept_labels("training")
    x = ds.responses[:, :, 8:18].reshape(len(lab), -1)  # 80-170 ms
    d = _rdm(x)
    i, j = np.triu_indices(len(lab), 1)
    same = lab[i] == lab[j]
    # within-concept dissimilarities are a sizeable fraction of between-concept ones
    assert d[same].mean() > 0.4 * d[~same].mean()
    # and they follow the texture/brightness attributes the brain weighs
    a = brain.image_attributes("training")
    attrs = np.stack([np.cos(2 * a["tex_orientation"]), np.sin(2 * a["tex_orientation"]), a["tex_frequency"],
                      a["tex_contrast"], a["brightness"], a["bg_jitter"] * 5], 1)
    attrs = (attrs - attrs.mean(0)) / attrs.std(0)
    da = pdist(attrs)
    assert _rsa(d[same], da[same]) > 0.15


def test_subjects_share_the_brain_but_differ(brain):
    s1, s2 = brain._eeg_signal("test", 1), brain._eeg_signal("test", 2)
    r = np.corrcoef(s1.ravel(), s2.ravel())[0, 1]
    assert 0.5 < r < 0.99
    same = SyntheticBrain(seed=0, subject_variability=0.0, **SMALL)
    np.testing.assert_allclose(same._eeg_signal("test", 1), same._eeg_signal("test", 2))


def test_hidden_stages_from_images_of_any_size(brain):
    small = brain.hidden_stages(brain.image_tensor("test", 64))
    big = brain.hidden_stages(brain.images("test", size=128))
    for s in STAGES:
        assert small[s].shape[0] == 36
        assert _rsa(_rdm(small[s]), _rdm(big[s])) > 0.9


def test_config_and_subject_errors():
    with pytest.raises(ConfigError, match="unknown SyntheticConfig field"):
        SyntheticBrain(n_concept=3)
    with pytest.raises(ConfigError, match="n_subjects must be a positive integer"):
        SyntheticConfig(n_subjects=0)
    with pytest.raises(ConfigError, match="snr"):
        SyntheticConfig(snr=0)
    b = SyntheticBrain(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=2,
                       test_images_per_concept=2, n_subjects=2)
    with pytest.raises(DataError, match=r"subjects are 1..2"):
        b.eeg(3, "test")
    with pytest.raises(DataError, match="split must be"):
        b.eeg(1, "validation")
    with pytest.raises(DataError, match="outside the recording"):
        b.eeg(1, "test", time_window=(0.0, 1.5))
    with pytest.raises(DataError, match="unknown ROI"):
        b.fmri(1, rois=["FFA"])


def test_write_refuses_existing_files(tmp_path):
    b = SyntheticBrain(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=1,
                       test_images_per_concept=2, n_subjects=1)
    b.write_things_eeg2(tmp_path)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        b.write_things_eeg2(tmp_path)
    b.write_things_eeg2(tmp_path, overwrite=True)
    meta = np.load(tmp_path / "image_set" / "image_metadata.npy", allow_pickle=True).item()
    assert meta["test_img_concepts"][0].startswith("00001_") and len(meta["train_img_files"]) == 2


def test_huge_brain_fails_early_with_a_memory_estimate(monkeypatch):
    from brainalign.errors import ResourceError

    assert SyntheticConfig().memory_bytes() < 3e8  # the default brain is small
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "1GB")
    with pytest.raises(ResourceError, match=r"synthetic brain \(2000036 images.*needs about .* GB"):
        SyntheticBrain(n_train_concepts=100_000, train_images_per_concept=20)


def test_synth_cli_refuses_huge_sizes_before_writing(monkeypatch, tmp_path, capsys):
    from brainalign.cli import main

    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "1GB")
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), "--concepts", "100000", "--images-per-concept", "50"]) == 2
    err = capsys.readouterr().err
    assert "memory" in err and "BRAINALIGN_MEMORY_LIMIT" in err and "Traceback" not in err
    assert not out.exists()


def test_many_subjects_stream_instead_of_growing():
    from brainalign.data.synthetic import SUBJECTS_KEPT

    b = SyntheticBrain(seed=1, n_subjects=SUBJECTS_KEPT + 4, **{k: v for k, v in SMALL.items() if k != "n_subjects"})
    first = b.eeg_trials(1, "test").copy()
    for s in range(1, b.config.n_subjects + 1):
        b.eeg_trials(s, "test")
    held = {k[1] for k in b._cache if k[0] == "trials"}
    assert len(held) == SUBJECTS_KEPT and 1 not in held
    np.testing.assert_array_equal(b.eeg_trials(1, "test"), first)  # recomputed identically


def test_labels_are_coarse_classes_shared_by_held_out_concepts(brain):
    """The pretraining stand-in's labels: outline x texture classes shared across concepts and splits."""
    cfg = brain.config
    names = brain.class_names()
    assert len(names) == cfg.n_classes == len(set(names))
    for split in ("training", "test"):
        lab, concepts = brain.labels(split), brain.concept_labels(split)
        assert set(lab.tolist()) == set(range(cfg.n_classes))  # every class in both splits
        # one class per concept, several concepts per class: the labels never name a concept
        per_concept = {c: set(lab[concepts == c].tolist()) for c in np.unique(concepts)}
        assert all(len(v) == 1 for v in per_concept.values())
        assert len(np.unique(concepts)) > cfg.n_classes
    assert len(set(brain._class_kinds())) == cfg.n_classes  # distinct outline x texture pairs
    with pytest.raises(ConfigError, match="n_classes"):
        SyntheticConfig(n_classes=11)
