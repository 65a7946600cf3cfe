"""RDM comparisons agree with scipy; time-resolved RSA; NaN policy; bad input."""
import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import squareform

from brainalign.errors import ConfigError, DataError
from brainalign.rsa import RDMs, compare, correlate_rows, stack, time_resolved_rsa
import importlib

compare_mod = importlib.import_module("brainalign.rsa.compare")  # the attribute is the function


def _tau_a_definition(x, y):
    n = len(x)
    i, j = np.triu_indices(n, 1)
    return np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / (n * (n - 1) / 2)


def _tau_a_from_scipy(x, y):
    """tau-a from scipy's tau-b and the tie counts: tau_b = S / sqrt((n0 - n1)(n0 - n2))."""
    n0 = len(x) * (len(x) - 1) / 2
    ties = lambda v: sum(c * (c - 1) / 2 for c in np.unique(v, return_counts=True)[1])
    return sps.kendalltau(x, y, variant="b").statistic * np.sqrt((n0 - ties(x)) * (n0 - ties(y))) / n0


def _data(ties, seed=0, n_a=3, n_b=4, n_pairs=45):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n_a, n_pairs)), rng.normal(size=(n_b, n_pairs))
    if ties:  # heavy ties: few distinct values, as in decoding accuracies
        a, b = np.round(a * 2) / 2, np.round(b * 2) / 2
    return a, b


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_pearson_kendall_equal_scipy(ties):
    a, b = _data(ties)
    sp = compare(a, b, "spearman")
    pe = compare(a, b, "pearson")
    ka = compare(a, b, "kendall_a")
    assert sp.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert sp[i, j] == pytest.approx(sps.spearmanr(a[i], b[j]).statistic, abs=1e-12)
            assert pe[i, j] == pytest.approx(sps.pearsonr(a[i], b[j]).statistic, abs=1e-12)
            assert ka[i, j] == pytest.approx(_tau_a_definition(a[i], b[j]), abs=1e-12)
            assert ka[i, j] == pytest.approx(_tau_a_from_scipy(a[i], b[j]), abs=1e-12)
            if not ties:  # without ties tau-a == tau-b
                assert ka[i, j] == pytest.approx(sps.kendalltau(a[i], b[j]).statistic, abs=1e-12)


def test_kendall_large_path_equals_definition(monkeypatch):
    a, b = _data(True, n_a=2, n_b=2, n_pairs=190)
    small = compare(a, b, "kendall_a")
    monkeypatch.setattr(compare_mod, "_KENDALL_VECTOR_MAX", 10)  # force the O(n log n) path
    np.testing.assert_allclose(compare(a, b, "kendall_a"), small, atol=1e-12)
    assert small[0, 1] == pytest.approx(_tau_a_definition(a[0], b[1]), abs=1e-12)


def test_square_and_rdms_inputs_give_the_same_answer():
    a, b = _data(False)
    sq_b = np.stack([squareform(v) for v in b])
    np.testing.assert_allclose(compare(a, sq_b), compare(a, b), atol=1e-14)
    np.testing.assert_allclose(compare(RDMs(a[0]), RDMs.from_square(sq_b)), compare(a[:1], b), atol=1e-14)
    np.testing.assert_allclose(correlate_rows(a, b[:3]), np.diag(compare(a, b[:3])), atol=1e-14)


def test_mismatched_conditions_and_bad_method():
    a, _ = _data(False)  # 10 conditions
    with pytest.raises(DataError, match=r"different numbers of conditions \(10 vs 9\)"):
        compare(a, np.ones(36))
    with pytest.raises(ConfigError, match="unknown comparison method"):
        compare(a, a, "manhattan")
    with pytest.raises(ConfigError, match="nan_policy"):
        compare(a, a, nan_policy="ignore")


def test_nan_policy():
    a, b = _data(False)
    b[2, 5] = np.nan
    with pytest.raises(DataError, match=r"RDM\(s\) \[2\] of the second argument contain NaN"):
        compare(a, b)
    prop = compare(a, b, nan_policy="propagate")
    assert np.isnan(prop[:, 2]).all() and np.isfinite(np.delete(prop, 2, axis=1)).all()
    omit = compare(a, b, nan_policy="omit")
    keep = np.isfinite(b[2])
    for i in range(3):
        assert omit[i, 2] == pytest.approx(sps.spearmanr(a[i, keep], b[2, keep]).statistic, abs=1e-12)
    np.testing.assert_allclose(np.delete(omit, 2, axis=1), np.delete(prop, 2, axis=1))
    # a constant RDM has no correlation (NaN, as scipy) but tau-a 0
    c = np.ones((1, 45))
    assert np.isnan(compare(a, c)).all() and (compare(a, c, "kendall_a") == 0).all()


def test_time_resolved_rsa_shapes_and_values():
    rng = np.random.default_rng(3)
    n, n_layers, n_sub, n_t = 8, 2, 3, 5
    p = n * (n - 1) // 2
    model = rng.random((n_layers, p))
    neural = rng.random((n_sub, n_t, p))
    out = time_resolved_rsa(model, neural)
    assert out.shape == (n_layers, n_sub, n_t)
    assert out[1, 2, 4] == pytest.approx(sps.spearmanr(model[1], neural[2, 4]).statistic, abs=1e-12)
    sq = np.stack([[squareform(v) for v in s] for s in neural])
    np.testing.assert_allclose(time_resolved_rsa(model, sq), out, atol=1e-14)
    # per-subject RDMs objects in a list, or one RDMs with subject/time descriptors (shuffled)
    per_subject = [RDMs(neural[s], descriptors={"time": np.arange(n_t) * 0.01}) for s in range(n_sub)]
    np.testing.assert_allclose(time_resolved_rsa(model, per_subject), out, atol=1e-14)
    flat = stack(per_subject, subject=np.repeat(["s1", "s2", "s3"], n_t))
    shuffled = flat[np.random.default_rng(0).permutation(len(flat))]
    got = time_resolved_rsa(model, shuffled)
    order = [list(shuffled.unique("subject")).index(s) for s in ["s1", "s2", "s3"]]
    np.testing.assert_allclose(got[:, order], out, atol=1e-14)
    with pytest.raises(DataError, match="no neural RDM for subject"):
        time_resolved_rsa(model, flat[1:])
    with pytest.raises(DataError, match="model RDMs have 8 conditions, neural RDMs 9"):
        time_resolved_rsa(model, rng.random((2, 3, 36)))
