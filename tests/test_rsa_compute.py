"""Model/fMRI RDMs: agreement with rsatoolbox and scipy, streaming, bad input."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from brainalign.errors import ConfigError, DataError, ResourceError
from brainalign.rsa import RDMAccumulator, rdm
from brainalign.rsa.compute import MemoryBudget


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    # offsets and scales differ per image: correlation must remove both
    return rng.normal(size=(25, 300)) * rng.uniform(0.5, 3, (25, 1)) + rng.normal(0, 10, (25, 1))


def test_correlation_and_euclidean_equal_rsatoolbox(feats):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    ds = rsatoolbox.data.Dataset(feats)
    ref_corr = rsatoolbox.rdm.calc_rdm(ds, method="correlation").dissimilarities[0]
    np.testing.assert_allclose(rdm(feats).vectors[0], ref_corr, atol=1e-6, rtol=0)
    # rsatoolbox's 'euclidean' is the squared distance divided by the number of features
    ref_euc = rsatoolbox.rdm.calc_rdm(ds, method="euclidean").dissimilarities[0]
    ours = rdm(feats, "euclidean").vectors[0]
    np.testing.assert_allclose(ours ** 2 / feats.shape[1], ref_euc, atol=1e-6, rtol=1e-9)
    np.testing.assert_allclose(rdm(feats, "sqeuclidean").vectors[0] / feats.shape[1], ref_euc,
                               atol=1e-6, rtol=1e-9)


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_matches_scipy_pdist(feats, method):
    ours = rdm(feats.astype(np.float32), method)
    ref = pdist(feats.astype(np.float32).astype(np.float64), method)
    np.testing.assert_allclose(ours.vectors[0], ref, rtol=1e-9, atol=1e-9)
    assert ours.measure == method and ours.square().shape == (1, 25, 25)


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
@pytest.mark.parametrize("spill", [False, True])
def test_accumulator_image_batches_equal_full(feats, method, spill, tmp_path):
    acc = RDMAccumulator(25, method, max_memory_bytes=0 if spill else 2**30, tmp_dir=str(tmp_path))
    order = np.random.default_rng(1).permutation(25)
    for idx in np.array_split(order, 4):  # out of order, uneven batches
        acc.update(idx, feats[idx].reshape(len(idx), 3, 100))  # extra dims are flattened
    assert (acc._spill is not None) == spill and (acc._rows is None) == spill
    assert list(tmp_path.iterdir()) == []  # an unnamed file: nothing to leave behind, even if killed
    out = acc.result()
    np.testing.assert_allclose(out.vectors[0], pdist(feats, method), atol=1e-12, rtol=1e-9)
    assert acc._spill is None  # the temporary file is closed (and so deleted)


def test_spilled_rows_give_the_same_bits_as_rows_in_memory(feats):
    """Rows on disk are read back exactly; batches are normalised row by row, so the batch size
    (and the row blocks of a wide layer) do not change a single bit of the RDM."""
    x = np.random.default_rng(3).normal(size=(25, 2**20 // 8 + 5)).astype(np.float32)  # 15-row float64 blocks
    results = []
    for budget, batches in ((2**30, 1), (0, 1), (0, 5), (2**30, 25)):
        acc = RDMAccumulator(25, max_memory_bytes=budget)
        for idx in np.array_split(np.arange(25), batches):
            acc.update(idx, x[idx])
        results.append(acc.result().vectors)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_a_shared_budget_keeps_what_fits_and_spills_the_rest(feats):
    budget = MemoryBudget(25 * 300 * 8 + 25 * 100 * 8)  # the first layer and one small one
    accs = [RDMAccumulator(25, max_memory_bytes=budget) for _ in range(3)]
    for acc, width in zip(accs, (300, 100, 100)):
        acc.update(np.arange(25), feats[:, :width])
    assert [a._spill is not None for a in accs] == [False, False, True]
    assert budget.used == budget.total
    for acc, width in zip(accs, (300, 100, 100)):
        np.testing.assert_allclose(acc.result().vectors[0], pdist(feats[:, :width], "correlation"), atol=1e-12)
    assert budget.used == 0  # result() gives the claims back
    with pytest.raises(ConfigError, match=">= 0 bytes"):
        MemoryBudget(-1)


def test_spill_errors_name_the_folder(feats, tmp_path):
    missing = tmp_path / "missing"
    acc = RDMAccumulator(25, max_memory_bytes=0, tmp_dir=str(missing))
    with pytest.raises(ResourceError, match="cannot create a temporary file .*missing.*tmp_dir="):
        acc.update(np.arange(5), feats[:5])



def test_a_full_disk_while_spilling_is_a_clear_error_and_leaves_no_file(feats, tmp_path, monkeypatch):
    import errno
    import os

    def full(*a):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    acc = RDMAccumulator(25, max_memory_bytes=0, tmp_dir=str(tmp_path))
    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(ResourceError, match=r"No space left on device; .* needed\): free disk space .*tmp_dir="):
        acc.update(np.arange(5), feats[:5])
    assert acc._spill is None and list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="rows were freed .* start a new RDMAccumulator"):
        acc.update(np.arange(5, 10), feats[5:10])


def test_accumulator_float32_rows_stay_within_1e6(feats):
    acc = RDMAccumulator(25)
    for idx in np.array_split(np.arange(25), 3):
        acc.update(idx, feats[idx].astype(np.float32))
    assert acc._rows.dtype == np.float32
    ref = pdist(feats.astype(np.float32).astype(np.float64), "correlation")
    np.testing.assert_allclose(acc.result().vectors[0], ref, atol=1e-6)


@pytest.mark.parametrize("method", ["correlation", "cosine", "euclidean"])
def test_accumulator_feature_chunks_equal_full(feats, method):
    acc = RDMAccumulator(25, method)
    for cols in np.array_split(np.arange(300), 7):
        acc.update_features(feats[:, cols])
    np.testing.assert_allclose(acc.result().vectors[0], pdist(feats, method), atol=1e-10, rtol=1e-9)


def test_accumulator_takes_torch_tensors(feats):
    torch = pytest.importorskip("torch")
    acc = RDMAccumulator(25, descriptors={"layer": "IT"})
    acc.update(torch.arange(25), torch.from_numpy(feats))
    out = acc.result()
    np.testing.assert_allclose(out.vectors[0], pdist(feats, "correlation"), atol=1e-12)
    assert out.descriptors["layer"].tolist() == ["IT"]
    half = rdm(torch.from_numpy(feats).to(torch.bfloat16))  # no NumPy bfloat16: upcast
    ref = pdist(torch.from_numpy(feats).to(torch.bfloat16).float().numpy().astype(np.float64), "correlation")
    np.testing.assert_allclose(half.vectors[0], ref, atol=1e-9)


def test_bad_input_names_images(feats):
    x = feats.copy()
    x[3] = 7.0
    x[11] = 0.1  # not exactly representable: its float64 mean is off by rounding
    with pytest.raises(DataError, match=r"image\(s\) 3, 11 have constant features"):
        rdm(x)
    with pytest.raises(DataError, match=r"image\(s\) 3, 11 have constant features"):
        acc = RDMAccumulator(25)
        for cols in np.array_split(np.arange(300), 3):
            acc.update_features(x[:, cols])
        acc.result()
    assert np.isfinite(rdm(x, "euclidean").vectors).all()  # constant rows are fine there
    x = feats.copy()
    x[5, 17] = np.nan
    with pytest.raises(DataError, match=r"NaN or inf for image\(s\) 5"):
        rdm(x)
    acc = RDMAccumulator(25)
    with pytest.raises(DataError, match=r"NaN or inf for image\(s\) 5"):
        acc.update(np.arange(10), x[:10])
    z = feats.copy()
    z[2] = 0
    with pytest.raises(DataError, match=r"image\(s\) 2 have all-zero"):
        rdm(z, "cosine")


def test_accumulator_misuse(feats):
    acc = RDMAccumulator(25)
    acc.update(np.arange(5), feats[:5])
    with pytest.raises(DataError, match="given twice"):
        acc.update([4, 5], feats[4:6])
    with pytest.raises(DataError, match="features missing for image"):
        acc.result()
    with pytest.raises(DataError, match="has 299 features"):
        acc.update([6], feats[6:7, :299])
    with pytest.raises(DataError, match=r"in \[0, 25\)"):
        acc.update([25], feats[:1])
    with pytest.raises(ConfigError, match="not both"):
        acc.update_features(feats)
    with pytest.raises(ConfigError, match="unknown RDM method"):
        RDMAccumulator(25, "manhattan")
    with pytest.raises(DataError, match="at least 2 images"):
        rdm(feats[:1])


def test_device_choice(feats):
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(rdm(feats, device="cpu").vectors, rdm(feats).vectors, atol=1e-12)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            rdm(feats, device="cuda")
    else:  # same float64 result on the GPU
        np.testing.assert_allclose(rdm(feats, device="cuda").vectors, rdm(feats, device="cpu").vectors,
                                   atol=1e-10)


def test_torch_backend_equals_numpy(feats):
    """The code path a GPU runs (torch, float64), exercised on the CPU."""
    torch = pytest.importorskip("torch")
    from brainalign.rsa.compute import _Matmul

    np_mm, t_mm = _Matmul("cpu"), _Matmul("cpu")
    t_mm.torch, t_mm.device = torch, torch.device("cpu")
    x = feats.astype(np.float32)[:, ::2]  # strided float32 input
    shift = x.mean(axis=1, dtype=np.float64)
    for kw in [dict(row_shift=shift, centre_columns=False), dict(row_shift=None, centre_columns=True)]:
        g_np, s_np = np_mm.centred_gram(x, **kw)
        g_t, s_t = t_mm.centred_gram(x, **kw)
        np.testing.assert_allclose(g_t, g_np, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(s_t, s_np, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(t_mm(x[:5], x), np_mm(x[:5], x), rtol=1e-12)
