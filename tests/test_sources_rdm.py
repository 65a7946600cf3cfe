"""Precomputed RDMs as a source: .npy, MATLAB .mat and rsatoolbox HDF5 files written here, with images."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from brainalign import rsa
from brainalign.cli import main
from brainalign.data.neural_rdms import NeuralRDMs, load_rdms
from brainalign.data.registry import load_source, source_subjects
from brainalign.errors import ConfigError, DataError

N = 5


def _square(rng, k):
    """k random symmetric zero-diagonal (N, N) RDMs."""
    x = rng.random((k, N, N))
    x = (x + x.transpose(0, 2, 1)) / 2
    x[:, np.arange(N), np.arange(N)] = 0
    return x


@pytest.fixture()
def images(tmp_path):
    d = tmp_path / "stimuli"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(d / f"img{i:02d}.png")
    return d


def _vectors(square):
    iu = np.triu_indices(N, 1)
    return square[:, iu[0], iu[1]]


def test_npy_single_and_stack_with_descriptors(tmp_path, images):
    sq = _square(np.random.default_rng(1), 4)
    np.save(tmp_path / "one.npy", sq[0])
    np.save(tmp_path / "stack.npy", sq)
    one = load_source(f"rdm:{tmp_path / 'one.npy'}", 1, images=images, image_size=8)
    assert isinstance(one, NeuralRDMs) and one.n_rdms == 1 and len(one) == N
    np.testing.assert_allclose(one.rdms.vectors, _vectors(sq[:1]))
    assert [p.name for p in one.images.paths] == [f"img{i:02d}.png" for i in range(N)]  # sorted file names
    desc = {"subject": [1, 1, 2, 2], "roi": ["EVC", "IT", "EVC", "IT"]}
    both = load_rdms(tmp_path / "stack.npy", images, descriptors=desc, modality="fmri")
    assert both.modality == "fmri" and both.subject is None
    it = both.subset(roi="IT")
    np.testing.assert_allclose(it.rdms.vectors, _vectors(sq[[1, 3]]))
    sub2 = load_source(f"rdm:{tmp_path / 'stack.npy'}", "sub-02", images=images, descriptors=desc)
    np.testing.assert_allclose(sub2.rdms.vectors, _vectors(sq[2:]))  # the source picks the subject's RDMs
    layer = rsa.rdm(np.random.default_rng(2).normal(size=(N, 10)))
    assert rsa.compare(layer, both.rdms).shape == (1, 4)  # usable by compare as they are


def test_mat_numeric_matlab_order_and_struct_arrays(tmp_path, images):
    sq = _square(np.random.default_rng(3), 3)
    scipy.io.savemat(tmp_path / "numeric.mat", {"rdms": np.moveaxis(sq, 0, 2)})  # MATLAB: (n, n, k)
    ds = load_source(f"rdm:{tmp_path / 'numeric.mat'}", 1, images=images)
    np.testing.assert_allclose(ds.rdms.vectors, _vectors(sq))
    struct = np.zeros((1, 3), dtype=[("RDM", object), ("name", object)])  # rsatoolbox-MATLAB RDM structs
    for i in range(3):
        struct[0, i] = (sq[i], f"subject {i + 1} | hIT")
    scipy.io.savemat(tmp_path / "structs.mat", {"RDMs": struct, "other": np.eye(2)})
    with pytest.raises(ConfigError, match="holds 2 variables .*pass variable="):
        load_rdms(tmp_path / "structs.mat", images)
    ds = load_rdms(tmp_path / "structs.mat", images, variable="RDMs")
    np.testing.assert_allclose(ds.rdms.vectors, _vectors(sq))
    assert list(ds.descriptors["name"]) == [f"subject {i + 1} | hIT" for i in range(3)]
    with pytest.raises(DataError, match="no variable 'RDM'"):
        load_rdms(tmp_path / "structs.mat", images, variable="RDM")


def test_rsatoolbox_hdf5_keeps_descriptors_and_matches_images_by_name(tmp_path, images):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    sq = _square(np.random.default_rng(4), 4)
    order = [f"img{i:02d}.png" for i in (3, 0, 4, 1, 2)]  # conditions in another order than the folder
    obj = rsatoolbox.rdm.RDMs(_vectors(sq), dissimilarity_measure="crossnobis",
                              rdm_descriptors={"subject": [1, 2, 1, 2], "time": [0.1, 0.1, 0.2, 0.2]},
                              pattern_descriptors={"image": order}, descriptors={"roi": "IT"})
    path = tmp_path / "rdms.hdf5"
    obj.save(str(path), file_type="hdf5")
    ds = load_rdms(path, images, image_descriptor="image", modality="meg")
    assert [p.name for p in ds.images.paths] == order and ds.rdms.measure == "crossnobis"
    np.testing.assert_allclose(ds.rdms.vectors, _vectors(sq))
    assert list(ds.descriptors["roi"]) == ["IT"] * 4  # the dataset-level descriptor applies to every RDM
    np.testing.assert_allclose(ds.subset(time=0.2).rdms.vectors, _vectors(sq[2:]))
    assert source_subjects(f"rdm:{path}") == [1, 2]
    assert load_source(f"rdm:{path}", 2, images=images, image_descriptor="image").n_rdms == 2
    assert main(["data", "rdm", str(path)]) == 0


def test_rdm_bad_input(tmp_path, images, capsys):
    sq = _square(np.random.default_rng(5), 2)
    np.save(tmp_path / "ok.npy", sq)
    with pytest.raises(DataError, match="compare 5 conditions but 4 images"):
        load_rdms(tmp_path / "ok.npy", sorted(images.iterdir())[:4])
    with pytest.raises(DataError, match="pass the images"):
        load_source(f"rdm:{tmp_path / 'ok.npy'}", 1)
    bad = sq.copy()
    bad[0, 0, 1] = 9.0
    np.save(tmp_path / "asym.npy", bad)
    with pytest.raises(DataError, match="asym.npy: .*not symmetric"):
        load_rdms(tmp_path / "asym.npy", images)
    (tmp_path / "r.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(DataError, match="pkl.*refused"):
        load_rdms(tmp_path / "r.pkl", images)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="plain .npy array"):
        load_rdms(tmp_path / "obj.npy", images)
    with pytest.raises(DataError, match="no RDM of subject 3"):
        load_source(f"rdm:{tmp_path / 'ok.npy'}", 3, images=images, descriptors={"subject": [1, 2]})
    assert main(["data", "rdm", str(tmp_path / "ok.npy")]) == 0
    assert "2 RDMs over 5 conditions" in capsys.readouterr().out
