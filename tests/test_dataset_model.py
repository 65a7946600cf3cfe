"""The data model: descriptors, selections, time handling, ROIs as one dataset, z-scoring, time units."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from brainalign.data import NeuralDataset
from brainalign.data.user import from_arrays
from brainalign.errors import DataError

RNG = np.random.default_rng(0)
IMAGES = RNG.random((6, 3, 8, 8)).astype(np.float32)


def _meg(n_reps=3):
    reps = RNG.normal(size=(6, n_reps, 4, 5)).astype(np.float32)
    return NeuralDataset(IMAGES, reps.mean(1), reps, modality="meg", subject=2, concepts=list("aabbcc"),
                         channel_names=["MEG1", "MEG2", "MEG3", "EEG1"], times=np.arange(5) / 100 - 0.01,
                         stimulus_ids=[f"im{i}" for i in range(6)],
                         channel_descriptors={"type": ["mag", "grad", "grad", "eeg"]},
                         image_descriptors={"animate": [1, 1, 0, 0, 1, 0]})


def test_any_modality_and_descriptors_back_the_old_attributes():
    ds = _meg()
    assert ds.modality == "meg" and ds.n_channels == 4 and ds.response_shape == (4, 5)
    assert ds.channel_names == ["MEG1", "MEG2", "MEG3", "EEG1"]
    np.testing.assert_array_equal(ds.channel_descriptors["name"], ds.channel_names)
    np.testing.assert_array_equal(ds.image_descriptors["concept"], ds.concepts)
    np.testing.assert_array_equal(ds.image_descriptors["stimulus_id"], ds.stimulus_ids)
    for modality in ("eeg", "fmri", "ecog", "behaviour", "spikes"):
        assert NeuralDataset(IMAGES, np.zeros((6, 2)), modality=modality).modality == modality
    ds.times = ds.times + 0.5  # attributes stay settable, and are checked
    with pytest.raises(DataError, match="3 time points but responses have shape"):
        ds.times = [0.0, 0.01, 0.02]
    with pytest.raises(DataError, match="channel descriptor 'roi' has shape"):
        NeuralDataset(IMAGES, np.zeros((6, 3)), channel_descriptors={"roi": ["V1"]})
    with pytest.raises(DataError, match="image descriptor 'x' has shape"):
        NeuralDataset(IMAGES, np.zeros((6, 3)), image_descriptors={"x": [1, 2]})


def test_subset_and_select_channels_keep_descriptors_and_trials_aligned():
    ds = _meg()
    sub = ds.subset([4, 1])
    assert list(sub.stimulus_ids) == ["im4", "im1"] and list(sub.image_descriptors["animate"]) == [1, 1]
    np.testing.assert_array_equal(sub.repetitions, ds.repetitions[[4, 1]])
    grads = ds.select_channels(type="grad")
    assert grads.channel_names == ["MEG2", "MEG3"] and list(grads.channel_descriptors["type"]) == ["grad", "grad"]
    np.testing.assert_array_equal(grads.repetitions, ds.repetitions[:, :, 1:3])
    both = ds.select_channels(type=["mag", "eeg"])
    assert both.channel_names == ["MEG1", "EEG1"]  # dataset order
    assert ds.select_channels([3, 0]).channel_names == ["MEG1", "EEG1"]
    assert ds.select_channels(name="MEG3").n_channels == 1
    with pytest.raises(DataError, match=r"no channel with type='planar'.*mag, grad, eeg"):
        ds.select_channels(type="planar")
    with pytest.raises(DataError, match="no channel descriptor 'roi'"):
        ds.select_channels(roi="V1")
    with pytest.raises(DataError, match="no channel matches"):
        ds.select_channels([0], type="eeg")
    with pytest.raises(DataError, match="selection is empty"):
        ds.subset(np.zeros(6, bool))


def test_subset_time_and_time_as_channels():
    ds = _meg()
    early = ds.subset_time(0.0, 0.02)  # start <= t < stop, as the loaders' windows
    np.testing.assert_allclose(early.times, [0.0, 0.01])
    np.testing.assert_array_equal(early.responses, ds.responses[..., 1:3])
    np.testing.assert_array_equal(early.repetitions, ds.repetitions[..., 1:3])
    with pytest.raises(DataError, match="outside the recording"):
        ds.subset_time(0.5, 0.6)
    flat = ds.time_as_channels()
    assert flat.responses.shape == (6, 20) and flat.times is None and flat.repetitions.shape == (6, 3, 20)
    np.testing.assert_array_equal(flat.responses, ds.targets())  # same order as the alignment targets
    assert list(flat.channel_descriptors["name"][:6]) == ["MEG1"] * 5 + ["MEG2"]
    np.testing.assert_allclose(flat.channel_descriptors["time"][:6], [-0.01, 0, 0.01, 0.02, 0.03, -0.01])
    np.testing.assert_array_equal(flat.select_channels(type="eeg").responses, ds.responses[:, 3])
    with pytest.raises(DataError, match="needs responses"):
        flat.time_as_channels()
    with pytest.raises(DataError, match="no times"):
        flat.subset_time(0, 0.01)


@pytest.mark.parametrize("times", [np.arange(-200, 800, 10), np.arange(0, 200, 10), [100.0, 200.0, 300.0]])
def test_times_in_milliseconds_are_refused_wherever_they_enter(times):
    n_t = len(times)
    with pytest.raises(DataError, match="looks like milliseconds.*divide them by 1000"):
        NeuralDataset(IMAGES, np.zeros((6, 2, n_t)), times=times)
    with pytest.raises(DataError, match="looks like milliseconds"):
        from_arrays(IMAGES, np.zeros((6, 2, n_t)), times=times)
    ds = NeuralDataset(IMAGES, np.zeros((6, 2, n_t)), times=np.asarray(times) / 1000)
    with pytest.raises(DataError, match="looks like milliseconds"):
        ds.times = times


def test_plausible_seconds_and_bad_time_axes():
    NeuralDataset(IMAGES, np.zeros((6, 2, 3)), times=[0.0, 2.0, 4.0])  # slow sampling in seconds is fine
    NeuralDataset(IMAGES, np.zeros((6, 2, 4)), times=[-0.2, 0.3, 0.8, 1.3])
    with pytest.raises(DataError, match="increase strictly"):
        NeuralDataset(IMAGES, np.zeros((6, 2, 3)), times=[0.0, 0.02, 0.01])
    with pytest.raises(DataError, match="NaN"):
        NeuralDataset(IMAGES, np.zeros((6, 2, 2)), times=[0.0, np.nan])


def _rois():
    v1 = NeuralDataset(IMAGES, RNG.normal(size=(6, 3)), modality="fmri", roi="V1")
    loc = NeuralDataset(v1.images, RNG.normal(size=(6, 2)), modality="fmri", roi="LOC")
    return v1, loc


def test_rois_are_one_dataset_with_a_roi_descriptor():
    v1, loc = _rois()
    ds = NeuralDataset.from_rois({"V1": v1, "LOC": loc})
    assert ds.rois == ["V1", "LOC"] and ds.roi is None and ds.n_channels == 5
    np.testing.assert_array_equal(ds.channel_descriptors["voxel"], np.arange(5))
    np.testing.assert_array_equal(ds.select_channels(roi="LOC").responses, loc.responses)
    assert [(r, d.n_channels) for r, d in ds.iter_rois()] == [("V1", 3), ("LOC", 2)]
    assert ds.select_channels(roi="V1").roi == "V1"
    assert ds.targets().shape == (6, 5)  # one target vector over all ROIs
    with pytest.raises(DataError, match="different image set"):
        NeuralDataset.from_rois({"V1": v1, "X": NeuralDataset(IMAGES * 0.5, np.zeros((6, 2)))})
    with pytest.raises(DataError, match="no 'roi' channel descriptor"):
        list(_meg().iter_rois())


def test_the_old_roi_dict_idioms_work_and_warn():
    v1, loc = _rois()
    ds = NeuralDataset.from_rois({"V1": v1, "LOC": loc})
    with pytest.warns(DeprecationWarning, match=r"ds\['LOC'\].*use ds.select_channels\(roi='LOC'\)"):
        np.testing.assert_array_equal(ds["LOC"].responses, loc.responses)
    with pytest.warns(DeprecationWarning, match="ds.rois"):
        assert list(ds.keys()) == ["V1", "LOC"]
    with pytest.warns(DeprecationWarning):
        assert list(ds) == ["V1", "LOC"] and "V1" in ds
    with pytest.warns(DeprecationWarning, match="iter_rois"):
        assert [r for r, _ in ds.items()] == ["V1", "LOC"] and len(ds.values()) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert {r: d.n_channels for r, d in ds.items()} == {"V1": 3, "LOC": 2}
        with pytest.raises(KeyError, match="no ROI 'V9'"):
            ds["V9"]
    with pytest.raises(TypeError, match="subset"):
        ds[0]


def test_zscored_feature_global_and_reference():
    train, test = _meg(), _meg(n_reps=2)
    feat = test.zscored("feature", reference=train)
    ref = train.repetitions
    np.testing.assert_allclose(feat.repetitions, (test.repetitions - ref.mean((0, 1))) / ref.std((0, 1)), rtol=1e-5,
                               atol=1e-5)
    glob = test.zscored("global", reference=train)
    np.testing.assert_allclose(glob.responses, (test.responses - ref.mean()) / ref.std(), rtol=1e-5, atol=1e-5)
    assert glob.meta["zscore"] == "global" and test.zscored(None) is test
    own = train.zscored(True)
    np.testing.assert_allclose(own.repetitions.mean((0, 1)), 0, atol=1e-6)
    with pytest.raises(DataError, match="the z-scoring reference has responses"):
        test.zscored(reference=train.select_channels([0]))


def test_split_by_concept_and_trials_keep_working():
    ds = _meg()
    rest, held = ds.split_by_concept(0.34, seed=0)
    assert not set(rest.concepts) & set(held.concepts) and len(rest) + len(held) == 6
    assert ds.trials().shape == (6, 3, 4, 5)
    fmri = NeuralDataset(IMAGES, np.zeros((6, 7)), RNG.normal(size=(6, 2, 7)), modality="fmri")
    assert fmri.trials().shape == (6, 2, 7, 1)
    assert "meg" in repr(ds) and "rois=['V1']" in repr(NeuralDataset(IMAGES, np.zeros((6, 2)), roi="V1"))


@pytest.mark.parametrize("shape", [(300, 7, 5, 11), (300, 7, 2, 1), (1000, 3, 3), (300, 7, 1, 1)])
def test_zscore_statistics_in_blocks_equal_numpy_bit_for_bit(shape):
    """A training split's statistics are summed a few trials at a time (no float64 copy of the
    whole split) and still equal NumPy's float64 mean/std exactly."""
    from brainalign.data._eeg import _feature_stats

    x = (np.random.default_rng(0).standard_normal(shape) * 10 + 3).astype(np.float32)
    x64 = x.astype(np.float64)
    for block_bytes in (8, 1000, 2**30):  # one row per block, several, everything at once
        mean, std, peak = _feature_stats(x, block_bytes)
        np.testing.assert_array_equal(mean, x64.mean(axis=(0, 1)))
        np.testing.assert_array_equal(std, x64.std(axis=(0, 1)))
        assert peak == np.abs(x64).max()


def test_select_trials_equals_fancy_indexing_and_never_aliases_its_input():
    from brainalign.data._eeg import select_trials

    x = np.random.default_rng(1).normal(size=(6, 3, 5, 12))
    for ch, ti in (([4, 0, 2], [3, 4, 5]), ([0, 1, 2, 3, 4], list(range(12))), ([1, 2], [7, 2, 9, 10, 11])):
        out = select_trials(x, np.array(ch), np.array(ti))
        np.testing.assert_array_equal(out, x[:, :, ch][..., ti].astype(np.float32))
        assert out.dtype == np.float32 and not np.may_share_memory(out, x)
    f32 = x.astype(np.float32)
    assert not np.may_share_memory(select_trials(f32, np.arange(5), np.arange(12)), f32)  # all of it: a copy
