"""Statistics: agreement with scipy/MNE/brute force, error rates, seeds, bad input."""
import itertools

import numpy as np
import pytest
from scipy import stats as sps

from brainalign.errors import ConfigError, DataError
from brainalign.rsa import compare, stats


def _smooth_noise(rng, n_sub, n_t, width=3):
    x = rng.normal(size=(n_sub, n_t + width - 1))
    return np.stack([np.convolve(r, np.ones(width) / width, "valid") for r in x])


def _with_effects(seed=0, n_sub=9, n_t=40):
    d = _smooth_noise(np.random.default_rng(seed), n_sub, n_t)
    d[:, 10:18] += 0.6
    d[:, 25:28] -= 0.5
    return d


def test_mean_sem_and_paired_ttest_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, 7)), rng.normal(size=(10, 7))
    mean, sem = stats.mean_sem(a)
    np.testing.assert_allclose(mean, a.mean(0))
    np.testing.assert_allclose(sem, sps.sem(a, axis=0))
    t, p = stats.paired_ttest(a, b)
    ref = sps.ttest_rel(a, b, axis=0)
    np.testing.assert_allclose(t, ref.statistic)
    np.testing.assert_allclose(p, ref.pvalue)
    with pytest.raises(DataError, match="equal shapes"):
        stats.paired_ttest(a, b[:, :3])
    a[2, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        stats.paired_ttest(a, b)
    m, s = stats.mean_sem(a)  # mean_sem ignores NaN
    assert m[3] == pytest.approx(np.nanmean(a[:, 3])) and s[3] == pytest.approx(sps.sem(a[~np.isnan(a[:, 3]), 3]))


def test_sign_flip_exact_enumeration_and_seeded_random():
    rng = np.random.default_rng(1)
    d = rng.normal(0.5, 1, size=(6, 4))
    p = stats.sign_flip_test(d, n_permutations=64)  # 2^6 = 64: exact
    for t in range(4):
        null = [np.mean(np.array(s) * d[:, t]) for s in itertools.product([1, -1], repeat=6)]
        assert p[t] == pytest.approx(np.mean(np.abs(null) >= abs(d[:, t].mean()) - 1e-12))
    big = rng.normal(0.8, 1, size=(16, 4))
    p1 = stats.sign_flip_test(big, 2000, seed=3)
    assert np.array_equal(p1, stats.sign_flip_test(big, 2000, seed=3))
    assert p1.min() >= 1 / 2001
    # close to the t-test on data that suits it
    np.testing.assert_allclose(p1, sps.ttest_1samp(big, 0).pvalue, atol=0.03)
    assert (stats.sign_flip_test(big, 2000, tail="greater") <= p1 + 1e-12).all()


def test_cluster_test_matches_mne_two_sided_exact():
    mne = pytest.importorskip("mne")
    d = _with_effects()
    thr = 2.306
    _, clusters, p_mne, _ = mne.stats.permutation_cluster_1samp_test(
        d, threshold=thr, tail=0, n_permutations=2 ** 9, out_type="mask", verbose=False)
    res = stats.cluster_permutation_test(d, threshold=thr, n_permutations=2 ** 9)
    ours = {(c[0], c[1]): c[3] for c in res.clusters}
    theirs = {(c[0].start, c[0].stop): p for c, p in zip(clusters, p_mne)}  # 1-D: (slice,)
    assert len(theirs) == 4 and ours == pytest.approx(theirs, abs=1e-12)
    assert res.mask[13:18].all() and res.mask[25:28].all() and res.mask.sum() == 8


def test_cluster_test_one_sided_equals_brute_force():
    d = _with_effects()
    thr = 1.86
    res = stats.cluster_permutation_test(d, threshold=thr, n_permutations=2 ** 9, tail="greater")
    null = []
    for s in itertools.product([1, -1], repeat=9):  # every sign pattern of whole subjects
        x = d * np.array(s)[:, None]
        t = x.mean(0) / (x.std(0, ddof=1) / 3)
        best = cur = 0.0
        for v in t:
            cur = cur + v if v > thr else 0.0
            best = max(best, cur)
        null.append(best)
    assert len(res.clusters) == 3
    for _, _, mass, p in res.clusters:
        assert p == pytest.approx(np.mean(np.array(null) >= mass - 1e-9))
    np.testing.assert_allclose(np.sort(res.null), np.sort(null), atol=1e-9)


def test_cluster_test_finds_effect_and_keeps_nominal_rate():
    res = stats.cluster_permutation_test(_with_effects(n_sub=14), n_permutations=500, seed=0)
    assert res.mask[11:17].all() and not res.mask[:8].any() and not res.mask[32:].any()
    assert res.t_obs.shape == (40,)
    # family-wise false positives on null data: ~5 %
    hits = [stats.cluster_permutation_test(_smooth_noise(np.random.default_rng(100 + k), 12, 30),
                                           n_permutations=200, seed=k).mask.any() for k in range(200)]
    assert 0.01 <= np.mean(hits) <= 0.10
    with pytest.raises(ConfigError, match="tail"):
        stats.cluster_permutation_test(_with_effects(), tail="both")
    with pytest.raises(DataError, match="at least 3 subjects"):
        stats.cluster_permutation_test(np.ones((2, 5)))


def test_fdr_matches_scipy():
    p = np.random.default_rng(0).uniform(size=50) ** 3
    rej, adj = stats.fdr(p, 0.05)
    np.testing.assert_allclose(adj, sps.false_discovery_control(p), atol=1e-12)
    assert np.array_equal(rej, adj <= 0.05)
    assert stats.fdr(p.reshape(5, 10))[1].shape == (5, 10)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        stats.fdr([0.1, 1.5])


def test_bootstrap_drops_duplicated_conditions_and_covers_estimate():
    rng = np.random.default_rng(0)
    n = 12
    p = n * (n - 1) // 2
    model = rng.uniform(1, 2, p)
    neural = np.stack([model + rng.normal(0, s, p) for s in (0.1, 0.3)])
    res = stats.bootstrap_ci(model, neural, n_boot=200, seed=4)
    assert res.distribution.shape == (200, 2)
    np.testing.assert_allclose(res.estimate, compare(model, neural)[0])
    assert (res.low <= res.estimate).all() and (res.estimate <= res.high).all()
    # reproduce bootstrap sample 0 by hand: only pairs of two different original conditions
    idx = np.sort(np.random.default_rng(4).integers(0, n, size=n))
    sq_m = np.zeros((n, n))
    sq_m[np.triu_indices(n, 1)] = model
    sq_m += sq_m.T
    sq_n = np.zeros((n, n))
    sq_n[np.triu_indices(n, 1)] = neural[1]
    sq_n += sq_n.T
    a, b = np.triu_indices(n, 1)
    keep = idx[a] != idx[b]
    ref = sps.spearmanr(sq_m[idx[a], idx[b]][keep], sq_n[idx[a], idx[b]][keep]).statistic
    assert res.distribution[0, 1] == pytest.approx(ref, abs=1e-12)
    with pytest.raises(DataError, match="12 conditions, neural RDM 10"):
        stats.bootstrap_ci(model, np.ones(45))


def test_noise_ceiling_definition_per_time_and_square():
    rng = np.random.default_rng(0)
    n_sub, n_t, p = 6, 3, 28
    shared = rng.normal(size=(n_t, p))
    x = shared[None] + rng.normal(0, 1.0, size=(n_sub, n_t, p))
    lower, upper = stats.noise_ceiling(x)
    assert lower.shape == upper.shape == (n_t,)
    for t in range(n_t):
        ranks = sps.rankdata(x[:, t], axis=1)  # Spearman pools rank-transformed RDMs (Nili et al.)
        lo = np.mean([sps.spearmanr(x[s, t], np.delete(ranks, s, 0).mean(0)).statistic for s in range(n_sub)])
        up = np.mean([sps.spearmanr(x[s, t], ranks.mean(0)).statistic for s in range(n_sub)])
        assert lower[t] == pytest.approx(lo) and upper[t] == pytest.approx(up)
    assert (upper > lower).all()
    sq = np.zeros((n_sub, 8, 8))
    iu = np.triu_indices(8, 1)
    sq[:, iu[0], iu[1]] = x[:, 0]
    sq += np.swapaxes(sq, 1, 2)
    lo_sq, up_sq = stats.noise_ceiling(sq, "pearson")  # (n_subjects, n, n): scalar bounds
    assert lo_sq.shape == () and lo_sq == pytest.approx(stats.noise_ceiling(x[:, 0], "pearson")[0])
    same = np.repeat(x[:1], 3, axis=0)
    np.testing.assert_allclose(stats.noise_ceiling(same), 1.0)
    with pytest.raises(DataError, match="at least 2 subjects"):
        stats.noise_ceiling(x[:1])


def test_individual_variability():
    rng = np.random.default_rng(0)
    r = rng.random((4, 45))
    v = stats.individual_variability(r)
    assert v.shape == (4, 4) and np.allclose(np.diag(v), 0) and np.allclose(v, v.T)
    assert v[0, 2] == pytest.approx(1 - sps.spearmanr(r[0], r[2]).statistic)


def test_noise_ceiling_accepts_rdms_with_subject_descriptor():
    from brainalign.rsa import RDMs

    x = np.random.default_rng(1).random((4, 3, 15))  # 4 subjects x 3 times, 6 conditions
    r = RDMs(x.reshape(12, 15), descriptors={"subject": np.repeat([7, 3, 5, 1], 3),
                                             "time": np.tile([0.0, 0.1, 0.2], 4)})
    np.testing.assert_allclose(stats.noise_ceiling(r), stats.noise_ceiling(x))
    with pytest.raises(DataError, match="'subject' descriptor"):
        stats.noise_ceiling(RDMs(x[0]))


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_bootstrap_equals_explicit_resampling_with_ties(method):
    """Every bootstrap value equals scipy on the resampled pairs of distinct conditions."""
    rng = np.random.default_rng(2)
    n = 9
    a, b = np.triu_indices(n, 1)
    model = np.round(rng.uniform(0, 4, len(a)))  # heavy ties
    neural = np.round(model[None] + rng.normal(0, 1.5, (3, len(a))))
    res = stats.bootstrap_ci(model, neural, n_boot=25, method=method, seed=11)
    draw = np.random.default_rng(11)
    full_m = np.zeros((n, n))
    full_m[a, b] = model
    full_m += full_m.T
    full_n = np.zeros((3, n, n))
    full_n[:, a, b] = neural
    full_n += np.swapaxes(full_n, 1, 2)
    corr = (lambda x, y: sps.spearmanr(x, y).statistic) if method == "spearman" else \
        (lambda x, y: sps.pearsonr(x, y).statistic)
    for k in range(25):
        idx = np.sort(draw.integers(0, n, size=n))
        i, j = idx[a], idx[b]
        keep = i != j
        for t in range(3):
            ref = corr(full_m[i[keep], j[keep]], full_n[t, i[keep], j[keep]])
            assert res.distribution[k, t] == pytest.approx(ref, abs=1e-10)
