"""Noise ceiling: pooling per comparison method and grouping, equal to rsatoolbox's boot_noise_ceiling."""
import warnings

import numpy as np
import pytest

from brainalign.errors import DataError
from brainalign.rsa import RDMs, stats
from brainalign.rsa.compare import COMPARE_METHODS

RSATOOLBOX_NAME = {"spearman": "spearman", "pearson": "corr", "cosine": "cosine", "rho_a": "rho-a",
                   "kendall_a": "tau-a", "kendall_b": "tau-b"}


def _sessions(seed=0, n_sub=4, n_ses=(1, 2, 3, 2), p=21):
    """Session RDMs (n_sessions, n_pairs), subject label per session; unequal scales per subject."""
    rng = np.random.default_rng(seed)
    shared = rng.random(p)
    rows, labels = [], []
    for s in range(n_sub):
        for _ in range(n_ses[s]):
            rows.append((s + 1) * (shared + rng.normal(0, 0.4, p)) + 3 * s)
            labels.append(f"sub-{s}")
    return np.array(rows), np.array(labels)


def _rsatoolbox_ceiling(rsatoolbox, x, labels, method):
    from rsatoolbox.inference import boot_noise_ceiling
    rdms = rsatoolbox.rdm.RDMs(x, rdm_descriptors={"subject": list(labels)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rsatoolbox warns that tau ceilings use averaged ranks
        return boot_noise_ceiling(rdms, method=RSATOOLBOX_NAME[method], rdm_descriptor="subject")


@pytest.mark.parametrize("method", COMPARE_METHODS)
def test_grouped_ceiling_equals_rsatoolbox(method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    x, labels = _sessions()
    ref_lo, ref_hi = _rsatoolbox_ceiling(rsatoolbox, x, labels, method)
    lo, hi = stats.noise_ceiling(x, method, groups=labels)
    assert lo == pytest.approx(ref_lo, abs=1e-10) and hi == pytest.approx(ref_hi, abs=1e-10)
    # the same through RDMs and a descriptor name
    r = RDMs(x, descriptors={"subject": labels})
    assert stats.noise_ceiling(r, method, groups="subject")[0] == pytest.approx(ref_lo, abs=1e-10)


def test_one_rdm_per_subject_and_per_time_equals_rsatoolbox():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(3)
    x = rng.random((5, 3, 28)) + rng.random(28)  # (n_subjects, n_times, n_pairs)
    lo, hi = stats.noise_ceiling(x, "spearman")
    for t in range(3):
        ref = _rsatoolbox_ceiling(rsatoolbox, x[:, t], np.arange(5), "spearman")
        assert (lo[t], hi[t]) == pytest.approx(ref, abs=1e-10)


def test_leaving_out_sessions_differs_from_leaving_out_subjects():
    x, labels = _sessions(seed=1)
    by_subject = stats.noise_ceiling(x, "pearson", groups=labels)[0]
    by_session = stats.noise_ceiling(x, "pearson")[0]
    # a subject's other sessions in the pool inflate the lower bound
    assert by_session > by_subject


def test_pool_rdms_transforms():
    x = np.array([[1.0, 5.0, 3.0], [2.0, 2.0, 8.0]])
    np.testing.assert_allclose(stats.pool_rdms(x, "tau-a"), [[1, 3, 2], [1.5, 1.5, 3]])
    z = stats.pool_rdms(x, "pearson")
    np.testing.assert_allclose(z.mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(1), 1)
    np.testing.assert_allclose(np.mean(stats.pool_rdms(x, "cosine") ** 2, axis=1), 1)


def test_bad_groups():
    x, labels = _sessions()
    with pytest.raises(DataError, match="one label"):
        stats.noise_ceiling(x, groups=labels[:-1])
    with pytest.raises(DataError, match="at least 2 groups"):
        stats.noise_ceiling(x, groups=np.zeros(len(x)))
    with pytest.raises(DataError, match="no 'run' descriptor"):
        stats.noise_ceiling(RDMs(x, descriptors={"subject": labels}), groups="run")
