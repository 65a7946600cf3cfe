"""Shen 2019 fMRI loader on small BData files written here with bdpy itself."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

bdpy = pytest.importorskip("bdpy")

from brainalign.cli import main  # noqa: E402
from brainalign.data.shen_fmri import load_shen_fmri, shen_summary  # noqa: E402
from brainalign.errors import DataError  # noqa: E402

# ImageNet-style ids as stored in Kamitani-lab 'Label' columns: wnid.image_number
LABELS = [1443537.022563, 1518878.005958, 1621127.019020]
NAMES = ["n01443537_22563", "n01518878_5958", "n01621127_19020"]
N_REP = 4
VOX = {"ROI_V1": 5, "ROI_V2": 4, "ROI_V3": 3, "ROI_hV4": 3, "ROI_LOC": 6}


def _write(path, rng, *, label_column="Label", vmap=False, nan=False, unequal=False, float_ids=False, vc=False):
    """Trials in a shuffled order; returns (data, trial stimulus index)."""
    stim = np.repeat(np.arange(len(LABELS)), N_REP)
    if unequal:
        stim = np.append(stim, 0)
    stim = rng.permutation(stim)
    n_vox = sum(VOX.values())
    data = rng.normal(0, 1, (len(stim), n_vox)) + stim[:, None] * 0.5
    if nan:
        data[3, 1] = np.nan
    bd = bdpy.BData()
    bd.add(data, "VoxelData")
    if label_column == "Label" or float_ids:
        bd.add(np.asarray(LABELS)[stim][:, None], label_column)
    else:
        bd.add((stim + (1 if vmap else 0)).astype(float)[:, None], label_column)
        if vmap:
            bd.add_vmap(label_column, {float(i + 1): n for i, n in enumerate(NAMES)})
    bd.add(np.arange(len(stim), dtype=float)[:, None], "Run")
    off = 0
    for roi, n in VOX.items():
        mask = np.zeros(n_vox)
        mask[off:off + n] = 1
        off += n
        bd.add_metadata(roi, mask, f"1 = {roi}", where="VoxelData")
    if vc:  # a mask overlapping all the others, as ROI_VC in the release
        bd.add_metadata("ROI_VC", np.ones(n_vox), "1 = VC", where="VoxelData")
    bd.save(str(path))
    return data, stim


@pytest.fixture()
def shen(tmp_path):
    rng = np.random.default_rng(0)
    f = tmp_path / "sub-02_perceptionNaturalImageTest_original_VC.h5"
    data, stim = _write(f, rng)
    imgs = tmp_path / "images"
    imgs.mkdir()
    for n in NAMES:
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(imgs / f"{n}.JPEG")
    return f, data, stim, imgs


def _cols(roi):
    start = 0
    for k, n in VOX.items():
        if k == roi:
            return slice(start, start + n)
        start += n


def test_one_dataset_with_roi_descriptor_and_hv4_alias(shen):
    f, data, stim, imgs = shen
    out = load_shen_fmri(f, images=imgs, image_size=16)
    assert out.rois == ["V1", "V2", "V3", "V4", "LOC"] and out.modality == "fmri"
    assert out.responses.shape == (3, sum(VOX.values()))
    first = sorted(range(len(LABELS)), key=lambda k: np.flatnonzero(stim == k)[0])  # order of first appearance
    for roi, key in (("V1", "ROI_V1"), ("V4", "ROI_hV4"), ("LOC", "ROI_LOC")):
        ds = out.select_channels(roi=roi)
        x = data[:, _cols(key)]
        expected = np.stack([x[stim == k].mean(0) for k in first])
        assert ds.responses.shape == (3, VOX[key]) and ds.roi == roi
        np.testing.assert_allclose(ds.responses, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ds.channel_descriptors["voxel"], np.arange(sum(VOX.values()))[_cols(key)])
    assert out.meta["roi_keys"]["V4"] == "ROI_hV4"
    assert list(out.stimulus_ids) == [NAMES[k] for k in first]
    assert list(out.concepts) == [NAMES[k].split("_")[0] for k in first]
    assert out.subject == 2
    assert out.images.load([0]).shape == (1, 3, 16, 16)
    with pytest.warns(DeprecationWarning, match=r"select_channels\(roi='V1'\)"):  # the old {roi: dataset} idiom
        np.testing.assert_array_equal(out["V1"].responses, out.select_channels(roi="V1").responses)
    with pytest.warns(DeprecationWarning):
        assert list(out) == out.rois


def test_overlapping_masks_repeat_voxels_per_roi(tmp_path):
    rng = np.random.default_rng(3)
    f = tmp_path / "vc.h5"
    data, stim = _write(f, rng, vc=True)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for n in NAMES:
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(imgs / f"{n}.png")
    ds = load_shen_fmri(f, rois=("V1", "VC"), images=imgs, image_size=8)
    v1, vc = ds.select_channels(roi="V1"), ds.select_channels(roi="VC")
    assert ds.n_channels == VOX["ROI_V1"] + sum(VOX.values())
    shared = np.isin(vc.channel_descriptors["voxel"], v1.channel_descriptors["voxel"])
    assert shared.sum() == VOX["ROI_V1"]  # each V1 voxel appears once more, under VC, with the same index
    np.testing.assert_allclose(vc.responses[:, shared], v1.responses, rtol=1e-6)


def test_repetitions_kept_in_file_order(shen):
    f, data, stim, imgs = shen
    ds = load_shen_fmri(f, rois=["ROI_V2"], images=imgs, average_repetitions=False)
    first = sorted(range(len(LABELS)), key=lambda k: np.flatnonzero(stim == k)[0])
    x = data[:, _cols("ROI_V2")]
    assert ds.rois == ["ROI_V2"] and ds.repetitions.shape == (3, N_REP, VOX["ROI_V2"])
    np.testing.assert_allclose(ds.repetitions[1], x[stim == first[1]], rtol=1e-6)
    assert ds.trials().shape == (3, N_REP, VOX["ROI_V2"], 1)


def test_vmap_mapping_and_float_ids_in_any_column(tmp_path, shen):
    _, _, _, imgs = shen
    rng = np.random.default_rng(1)
    f = tmp_path / "vmap.h5"
    _write(f, rng, label_column="stimulus_name", vmap=True)
    ds = load_shen_fmri(f, rois="V1", images=imgs)
    assert set(ds.stimulus_ids) == set(NAMES)
    mapping = {n: imgs / f"{n}.JPEG" for n in NAMES}
    assert load_shen_fmri(f, rois="V1", images=mapping).responses.shape == (3, VOX["ROI_V1"])
    for column in ("image_index", "stimulus_name"):  # 1518878.005958 -> n01518878_5958 whatever the column
        g = tmp_path / f"float_{column}.h5"
        data, stim = _write(g, rng, label_column=column, float_ids=True)
        ds = load_shen_fmri(g, rois="V3", images=imgs)
        first = sorted(range(3), key=lambda k: np.flatnonzero(stim == k)[0])
        assert [p.stem for p in ds.images.paths] == [NAMES[k] for k in first]
        np.testing.assert_allclose(ds.responses[0], data[stim == first[0]][:, _cols("ROI_V3")].mean(0), rtol=1e-5)


def test_integer_ids_are_never_matched_by_folder_order(tmp_path, shen):
    _, _, _, imgs = shen
    rng = np.random.default_rng(2)
    f = tmp_path / "index.h5"
    data, stim = _write(f, rng, label_column="image_index")  # ids 0, 1, 2; the files are named n0..._....JPEG
    with pytest.raises(DataError, match=r"no image in .* for 3 stimulus id.*never matched to files by their sorted "
                                        r"order.*'<id>.<ext>' or pass a mapping \{id: path\}"):
        load_shen_fmri(f, rois="V3", images=imgs)
    ds = load_shen_fmri(f, rois="V3", images={k: imgs / f"{n}.JPEG" for k, n in enumerate(NAMES)})  # int keys
    first = sorted(range(3), key=lambda k: np.flatnonzero(stim == k)[0])
    assert [p.stem for p in ds.images.paths] == [NAMES[k] for k in first]
    named = tmp_path / "named"
    named.mkdir()
    for k, n in enumerate(NAMES):
        (named / f"{k}.jpg").write_bytes((imgs / f"{n}.JPEG").read_bytes())
    assert [p.name for p in load_shen_fmri(f, rois="V3", images=named).images.paths] == [f"{k}.jpg" for k in first]


def test_summary_and_cli(shen, capsys):
    f, *_ = shen
    s = shen_summary(f)
    assert s["n_trials"] == 3 * N_REP and s["n_stimuli"] == 3 and s["repetitions"] == (N_REP, N_REP)
    assert s["rois"]["ROI_hV4"] == 3 and s["label_column"] == "Label"
    assert main(["data", "shen", str(f)]) == 0
    out = capsys.readouterr().out
    assert "ROI_V1 (5 voxels)" in out and "n01443537_22563" in out and "4 trials each" in out
    assert "one dataset with ROIs V1, V2, V3, V4, LOC" in out
    assert main(["data", "shen", str(f), "--label-column", "Run"]) == 0  # the old option still works
    assert "column 'Run', 1 trial each" in capsys.readouterr().out


# --- bad input ---------------------------------------------------------------------------------
def test_missing_roi_lists_rois(shen):
    f, _, _, imgs = shen
    with pytest.raises(DataError, match=r"ROI 'FFA' not found in .*sub-02.*ROI_V1, ROI_V2, ROI_V3, ROI_hV4, ROI_LOC"):
        load_shen_fmri(f, rois=("V1", "FFA"), images=imgs)
    with pytest.raises(DataError, match="empty ROI selection"):
        load_shen_fmri(f, rois=(), images=imgs)


def test_missing_file_images_and_foreign_file(tmp_path, shen):
    f, _, _, imgs = shen
    with pytest.raises(DataError, match="not found"):
        load_shen_fmri(tmp_path / "nope.h5", images=imgs)
    with pytest.raises(DataError, match="pass images="):
        load_shen_fmri(f)
    (imgs / f"{NAMES[1]}.JPEG").unlink()
    with pytest.raises(DataError, match=f"no image in .* for 1 stimulus id.*{NAMES[1]}"):
        load_shen_fmri(f, images=imgs)
    with pytest.raises(DataError, match=f"mapping lacks 1 stimulus id.*{NAMES[2]}"):
        load_shen_fmri(f, images={NAMES[0]: imgs / f"{NAMES[0]}.JPEG", NAMES[1]: imgs / "x.png"})
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="cannot read .*bogus.h5 as a BData"):
        load_shen_fmri(bogus, images=imgs)


def test_nan_unequal_repetitions_and_no_label(tmp_path, shen):
    _, _, _, imgs = shen
    rng = np.random.default_rng(2)
    f = tmp_path / "nan.h5"
    _write(f, rng, nan=True)
    with pytest.raises(DataError, match=r"nan.h5: ROI 'ROI_V1' contains 1 NaN/Inf"):
        load_shen_fmri(f, images=imgs)
    f2 = tmp_path / "unequal.h5"
    _write(f2, rng, unequal=True)
    assert load_shen_fmri(f2, rois="V1", images=imgs).responses.shape == (3, VOX["ROI_V1"])
    with pytest.raises(DataError, match="between 4 and 5 trials.*average_repetitions=True"):
        load_shen_fmri(f2, rois="V1", images=imgs, average_repetitions=False)
    f3 = tmp_path / "nolabel.h5"
    _write(f3, rng, label_column="Stim")
    with pytest.raises(DataError, match="no stimulus column.*label_column"):
        load_shen_fmri(f3, images=imgs)
