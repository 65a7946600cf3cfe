"""Decoding RDMs: the vectorised LDA engine against the scikit-learn SVM reference on
structured synthetic EEG, chance without signal, seeds, windows, bad input."""
import numpy as np
import pytest
from scipy import stats as sps

from brainalign.errors import ConfigError, DataError
from brainalign.rsa import correlation_rdm_eeg, decoding_rdm
from brainalign.rsa.decoding import ledoit_wolf_shrinkage, pseudo_trials

ONSET = 2


def synthetic_eeg(n_cond=8, n_rep=64, n_chan=8, n_times=4, scale=0.3, seed=0):
    """Conditions in a 2 x 2 x 2 hierarchy (superclass, class, item): each level adds a
    random channel pattern (bigger for higher levels), present only from time ONSET on.
    Returns trials (C, R, E, T) and the true pattern distances (n_pairs,)."""
    rng = np.random.default_rng(seed)
    pattern = np.zeros((n_cond, n_chan))
    for n_groups, weight in [(2, 1.0), (4, 0.66), (n_cond, 0.33)]:
        pattern += scale * weight * rng.normal(size=(n_groups, n_chan))[np.arange(n_cond) * n_groups // n_cond]
    x = rng.normal(size=(n_cond, n_rep, n_chan, n_times))
    x[..., ONSET:] += pattern[:, None, :, None]
    i, j = np.triu_indices(n_cond, 1)
    return x, np.linalg.norm(pattern[i] - pattern[j], axis=1)


def test_lda_agrees_with_svm_reference_and_truth():
    x, true_dist = synthetic_eeg()
    kw = dict(n_pseudo=2, n_folds=4, n_permutations=3, seed=0)
    lda = decoding_rdm(x, **kw)
    svm = decoding_rdm(x, engine="svm", **kw)
    assert lda.square().shape == (4, 8, 8) and np.array_equal(lda.descriptors["time"], np.arange(4.0))
    for t in range(ONSET, 4):  # signal: both rank the pairs alike and follow the true distances
        assert sps.spearmanr(lda.vectors[t], svm.vectors[t]).statistic >= 0.9
        assert lda.vectors[t].mean() > 0.6 and svm.vectors[t].mean() > 0.6
    truth = np.mean([sps.spearmanr(lda.vectors[t], true_dist).statistic for t in range(ONSET, 4)])
    assert truth >= 0.7
    # no signal: chance (the mean over 28 pairs of 8 conditions still varies by ~0.03)
    assert abs(lda.vectors[:ONSET].mean() - 0.5) < 0.06
    assert abs(svm.vectors[:ONSET].mean() - 0.5) < 0.06


def test_units_do_not_matter():
    x, _ = synthetic_eeg(n_cond=4, n_rep=8, n_times=3)
    kw = dict(n_pseudo=2, n_folds=2, n_permutations=1, seed=0)
    for engine in ("lda", "svm"):
        np.testing.assert_allclose(decoding_rdm(x * 1e-6, engine=engine, **kw).vectors,
                                   decoding_rdm(x, engine=engine, **kw).vectors)


def test_chance_on_pure_noise_and_seed_reproducibility():
    x = np.random.default_rng(5).normal(size=(30, 20, 6, 3))
    a = decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=2, seed=1)
    b = decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=2, seed=1)
    c = decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=2, seed=2)
    assert np.array_equal(a.vectors, b.vectors) and not np.array_equal(a.vectors, c.vectors)
    assert abs(a.vectors.mean() - 0.5) < 0.02
    assert ((a.vectors >= 0) & (a.vectors <= 1)).all()


def test_windows_times_and_descriptors():
    x, _ = synthetic_eeg(n_rep=16, n_times=6)
    times = np.linspace(-0.1, 0.4, 6)
    r = decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=1, window=3, times=times,
                     descriptors={"subject": "sub-01"})
    assert r.vectors.shape == (4, 28)
    np.testing.assert_allclose(r.descriptors["time"], [times[i:i + 3].mean() for i in range(4)])
    assert set(r.descriptors["subject"]) == {"sub-01"} and r.measure == "decoding_accuracy"
    avg = decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=1, window=3, window_mode="average")
    assert avg.vectors.shape == (4, 28)


def test_pseudo_trials_average_distinct_repetitions():
    x = np.arange(2 * 7, dtype=float).reshape(2, 7)[..., None]  # (C=2, R=7, 1)
    pt = pseudo_trials(x, 3, np.random.default_rng(0))
    assert pt.shape == (2, 2, 1)
    for c in range(2):  # 6 of 7 distinct repetitions used, each once
        assert len(set(np.round(pt[c, :, 0] * 3).astype(int))) == 2
        assert np.all(pt[c] >= 7 * c) and np.all(pt[c] < 7 * (c + 1))


def test_ledoit_wolf_equals_sklearn():
    from sklearn.covariance import ledoit_wolf_shrinkage as sk_lw

    rng = np.random.default_rng(0)
    res = rng.normal(size=(3, 40, 6)) @ rng.normal(size=(6, 6))
    res -= res.mean(axis=1, keepdims=True)
    ours = ledoit_wolf_shrinkage(res)
    for k in range(3):
        assert ours[k] == pytest.approx(sk_lw(res[k], assume_centered=True), rel=1e-10)


def test_bad_input():
    x, _ = synthetic_eeg(n_rep=10)
    with pytest.raises(DataError, match=r"too few for n_folds=4 x n_pseudo=5 .* lower n_pseudo .* to <= 2"):
        decoding_rdm(x, n_pseudo=5, n_folds=4)
    bad = x.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf for condition\(s\) \[3\]"):
        decoding_rdm(bad, n_pseudo=1, n_folds=2)
    with pytest.raises(DataError, match="n_conditions, n_repetitions, n_channels, n_times"):
        decoding_rdm(x[:, 0])
    with pytest.raises(ConfigError, match="engine"):
        decoding_rdm(x, n_pseudo=1, n_folds=2, engine="knn")
    with pytest.raises(ConfigError, match="window"):
        decoding_rdm(x, n_pseudo=1, n_folds=2, window=9)
    with pytest.raises(DataError, match="times has"):
        decoding_rdm(x, n_pseudo=1, n_folds=2, times=[0, 1])


def test_correlation_rdm_eeg():
    x, _ = synthetic_eeg(n_rep=4)
    r = correlation_rdm_eeg(x)
    avg = x.mean(axis=1)
    assert r.vectors.shape == (4, 28)
    assert r.square()[3, 1, 5] == pytest.approx(1 - sps.pearsonr(avg[1, :, 3], avg[5, :, 3]).statistic)
    np.testing.assert_allclose(correlation_rdm_eeg(avg).vectors, r.vectors)
    avg[2, :, 1] = 4.0
    with pytest.raises(DataError, match="condition 2 has the same value on every channel at time index 1"):
        correlation_rdm_eeg(avg)


def test_accepts_a_neural_dataset():
    from brainalign.data.dataset import NeuralDataset

    x, _ = synthetic_eeg(n_rep=8)
    times = np.linspace(0, 0.03, 4)
    ds = NeuralDataset(images=np.zeros((8, 3, 4, 4), np.float32), responses=x.mean(1), repetitions=x,
                       modality="eeg", subject="sub-02", times=times)
    r = decoding_rdm(ds, n_pseudo=2, n_folds=2, n_permutations=1)
    np.testing.assert_allclose(r.descriptors["time"], times, rtol=1e-6)
    assert set(r.descriptors["subject"]) == {"sub-02"} and len(r.condition_descriptors["concept"]) == 8
    np.testing.assert_allclose(r.vectors, decoding_rdm(x.astype(np.float32), n_pseudo=2, n_folds=2,
                                                       n_permutations=1).vectors)
    ds.repetitions = None
    with pytest.raises(DataError, match="only averaged responses"):
        decoding_rdm(ds)


def test_vectorised_lda_equals_per_pair_lda():
    """All-pairs matrix form == a textbook per-pair LDA with sklearn's Ledoit-Wolf covariance."""
    from sklearn.covariance import ledoit_wolf

    from brainalign.rsa.decoding import _lda_fold

    rng = np.random.default_rng(4)
    t, c, p_tr, p_te, e = 2, 5, 6, 3, 4
    train = rng.normal(size=(t, c, p_tr, e)) + rng.normal(size=(1, c, 1, e))
    test = rng.normal(size=(t, c, p_te, e)) + rng.normal(size=(1, c, 1, e))
    got = _lda_fold(train, test, "auto")
    for ti in range(t):
        means = train[ti].mean(axis=1)
        cov, _ = ledoit_wolf((train[ti] - means[:, None]).reshape(-1, e), assume_centered=True)
        for a in range(c):
            for b in range(c):
                if a == b:
                    continue
                w = np.linalg.solve(cov, means[a] - means[b])
                score = (test[ti, a] - (means[a] + means[b]) / 2) @ w
                assert got[ti, a, b] == np.sum(score > 0)


def test_time_blocks_do_not_change_the_result(monkeypatch):
    import importlib

    dec = importlib.import_module("brainalign.rsa.decoding")
    x, _ = synthetic_eeg(n_rep=8, n_times=5)
    kw = dict(n_pseudo=2, n_folds=2, n_permutations=2, seed=3)
    whole = decoding_rdm(x, **kw).vectors
    monkeypatch.setattr(dec, "_LDA_BLOCK_BYTES", 1)  # one time point per block
    np.testing.assert_array_equal(decoding_rdm(x, **kw).vectors, whole)
