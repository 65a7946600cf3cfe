"""Crossnobis RDMs against rsatoolbox's calc_rdm(method='crossnobis') per time point."""
import numpy as np
import pytest

from brainalign import rsa
from brainalign.errors import ConfigError, DataError

# rsatoolbox's Dataset casts descriptors with NaN fill values internally (not brainalign's code)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")


@pytest.fixture
def trials():
    rng = np.random.default_rng(0)
    c, r, e, t = 6, 4, 5, 3
    patterns = rng.normal(size=(c, 1, e, t))
    mix = rng.normal(size=(e, e))  # correlated channel noise, where the precision matters
    noise = np.einsum("ij,crjt->crit", mix, rng.normal(size=(c, r, e, t)))
    return patterns + noise


def _rsatoolbox_rdm(rsatoolbox, x, t, precision, cv):
    c, r, e, _ = x.shape
    ds = rsatoolbox.data.Dataset(x[:, :, :, t].reshape(c * r, e),
                                 obs_descriptors={"cond": np.repeat(np.arange(c), r),
                                                  "fold": np.tile(cv, c)})
    return rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="cond", cv_descriptor="fold",
                                   noise=precision).dissimilarities[0]


@pytest.mark.parametrize("n_folds", [None, 2])
def test_given_precision_equals_rsatoolbox(trials, n_folds):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    c, r, e, t = trials.shape
    a = np.random.default_rng(1).normal(size=(e, e))
    precision = a @ a.T + np.eye(e)
    ours = rsa.crossnobis_rdm(trials, n_folds=n_folds, noise=precision)
    assert ours.measure == "crossnobis" and ours.vectors.shape == (t, c * (c - 1) // 2)
    cv = np.arange(r) % (n_folds or r)
    for ti in range(t):
        np.testing.assert_allclose(ours.vectors[ti], _rsatoolbox_rdm(rsatoolbox, trials, ti, precision, cv),
                                   rtol=1e-10, atol=1e-12)
    euclid = rsa.crossnobis_rdm(trials, n_folds=n_folds, noise="identity")
    np.testing.assert_allclose(euclid.vectors[0], _rsatoolbox_rdm(rsatoolbox, trials, 0, None, cv), atol=1e-12)


def test_shrinkage_precision_from_training_folds_equals_rsatoolbox_per_fold(trials):
    """noise='shrinkage': each fold uses the Ledoit-Wolf precision of its own training folds'
    residuals (sklearn), the fold's RDM equals rsatoolbox on (train, test) with that precision."""
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from sklearn.covariance import LedoitWolf
    _, r, e, t = trials.shape
    ours = rsa.crossnobis_rdm(trials, n_folds=2)
    fold_of = np.arange(r) % 2
    for ti in range(t):
        per_fold = []
        for f in range(2):
            train = trials[..., ti][:, fold_of != f]  # (c, r_train, e)
            res = (train - train.mean(axis=1, keepdims=True)).reshape(-1, e)
            precision = np.linalg.inv(LedoitWolf(assume_centered=True).fit(res).covariance_)
            # two folds: rsatoolbox averages both directions, which are equal (d is symmetric in a, b)
            per_fold.append(_rsatoolbox_rdm(rsatoolbox, trials, ti, precision, (fold_of == f).astype(int)))
        np.testing.assert_allclose(ours.vectors[ti], np.mean(per_fold, axis=0), rtol=1e-8, atol=1e-10)


def test_unbiased_and_informative():
    rng = np.random.default_rng(2)
    c, r, e, t = 4, 10, 6, 2
    same = rng.normal(size=(c, r, e, t))  # no condition effect: distances centre on 0
    d0 = rsa.crossnobis_rdm(same).vectors
    signal = same + 3.0 * rng.normal(size=(c, 1, e, t))
    d1 = rsa.crossnobis_rdm(signal).vectors
    assert abs(d0.mean()) < 0.1 and d1.mean() > 1.0 and (d0 < 0).any()


def test_descriptors_and_bad_input(trials):
    out = rsa.crossnobis_rdm(trials, times=[0.0, 0.1, 0.2], descriptors={"subject": 3})
    np.testing.assert_allclose(out.descriptors["time"], [0.0, 0.1, 0.2])
    assert (out.descriptors["subject"] == 3).all()
    with pytest.raises(ConfigError, match="n_folds"):
        rsa.crossnobis_rdm(trials, n_folds=9)
    with pytest.raises(ConfigError, match="unknown noise"):
        rsa.crossnobis_rdm(trials, noise="diag")
    with pytest.raises(DataError, match="noise precision of shape"):
        rsa.crossnobis_rdm(trials, noise=np.eye(3))
    with pytest.raises(DataError, match="symmetric"):
        rsa.crossnobis_rdm(trials, noise=np.triu(np.ones((5, 5))))
    with pytest.raises(DataError, match="trials must be"):
        rsa.crossnobis_rdm(trials[0])
