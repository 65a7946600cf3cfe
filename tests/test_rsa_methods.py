"""Comparison methods (cosine, rho-a, tau-a, tau-b, ...) against rsatoolbox on the same RDMs."""
import numpy as np
import pytest

from brainalign import rsa
from brainalign.errors import ConfigError
from brainalign.rsa.compare import COMPARE_METHODS, METHOD_ALIASES

RSATOOLBOX_NAME = {"spearman": "spearman", "pearson": "corr", "cosine": "cosine", "rho_a": "rho-a",
                   "kendall_a": "tau-a", "kendall_b": "tau-b"}


@pytest.fixture
def stacks():
    rng = np.random.default_rng(0)
    a = rng.random((3, 45))
    b = rng.random((4, 45))
    a[1] = np.round(a[1] * 4)  # ties, where rho-a/tau-a/tau-b differ from Spearman/Kendall
    b[2] = np.round(b[2] * 3)
    return a, b


@pytest.mark.parametrize("method", COMPARE_METHODS)
def test_every_method_equals_rsatoolbox(stacks, method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    a, b = stacks
    ref = rsatoolbox.rdm.compare(rsatoolbox.rdm.RDMs(a), rsatoolbox.rdm.RDMs(b),
                                 method=RSATOOLBOX_NAME[method])
    np.testing.assert_allclose(rsa.compare(a, b, method), ref, atol=1e-10)
    # rsatoolbox's own name gives the same answer
    np.testing.assert_allclose(rsa.compare(a, b, RSATOOLBOX_NAME[method]), ref, atol=1e-10)


@pytest.mark.parametrize("method", ["cosine", "rho_a", "kendall_b"])
def test_new_methods_everywhere_a_method_is_taken(stacks, method):
    a, b = stacks
    full = rsa.compare(a, b, method)
    rows = rsa.correlate_rows(a[:, None], b[None], method)  # (3, 4) by broadcasting
    np.testing.assert_allclose(rows, full, atol=1e-12)
    grid = b.reshape(2, 2, 45)  # (n_subjects, n_times, n_pairs)
    np.testing.assert_allclose(rsa.time_resolved_rsa(a, grid, method), full.reshape(3, 2, 2), atol=1e-12)
    boot = rsa.stats.bootstrap_ci(a[0], b, n_boot=5, method=method, seed=0)
    np.testing.assert_allclose(boot.estimate, full[0], atol=1e-12)
    assert np.isfinite(boot.distribution).all()


def test_tau_b_large_rdms_match_scipy():
    from scipy.stats import kendalltau
    rng = np.random.default_rng(1)
    a, b = np.round(rng.random((2, 2775)) * 50)  # 75 conditions: beyond the O(P^2) sign-product size
    assert rsa.compare(a, b, "tau-b")[0, 0] == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


def test_degenerate_rdms_and_unknown_names():
    const = np.ones(10)
    other = np.arange(10.0)
    assert np.isnan(rsa.compare(const, other, "kendall_b")[0, 0])  # as scipy
    assert np.isnan(rsa.compare(np.zeros(10), other, "cosine")[0, 0])
    assert rsa.compare(const, other, "rho_a")[0, 0] == 0.0
    with pytest.raises(ConfigError, match="rho-a"):
        rsa.compare(other, other, "rho")
    assert set(METHOD_ALIASES.values()) <= set(COMPARE_METHODS)
