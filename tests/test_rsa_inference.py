"""Bootstrap inference over subjects / subjects and stimuli; per-sample values against rsatoolbox."""
import warnings

import numpy as np
import pytest

from brainalign.errors import ConfigError
from brainalign.rsa._util import numpy_rng
from brainalign.rsa.inference import bootstrap_models


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    signal = rng.random(45)  # 10 conditions
    subjects = signal + rng.normal(0, 0.5, (8, 45))
    models = np.stack([signal, rng.random(45), signal + rng.normal(0, 0.05, 45)])
    return models, subjects


@pytest.mark.parametrize("over", ["subjects", "both"])
def test_first_sample_equals_rsatoolbox_on_the_same_draw(data, over):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsatoolbox.inference import boot_noise_ceiling
    models, subjects = data
    ev = bootstrap_models(models, subjects, "spearman", over=over, n_boot=1, seed=3)
    rng = numpy_rng(3)  # the draws bootstrap_models makes for its first sample
    drawn = rng.integers(0, 8, size=8)
    sample = rsatoolbox.rdm.RDMs(subjects, rdm_descriptors={"subject": list(range(8))}).subsample("subject", drawn)
    model_rdms = rsatoolbox.rdm.RDMs(models)
    if over == "both":
        idx = np.sort(rng.integers(0, 10, size=10))
        sample = sample.subsample_pattern("index", idx)
        model_rdms = model_rdms.subsample_pattern("index", idx)
    ref = rsatoolbox.rdm.compare(model_rdms, sample, method="spearman").mean(axis=1)
    np.testing.assert_allclose(ev.distribution[0], ref, atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_ceiling = boot_noise_ceiling(sample, method="spearman", rdm_descriptor="subject")
    np.testing.assert_allclose(ev.ceiling_distribution[0], ref_ceiling, atol=1e-10)


def test_known_cases(data):
    models, subjects = data
    ev = bootstrap_models(models, subjects, n_boot=300, seed=0)
    best = ev.test_models(0, 1)   # the true signal against an unrelated model
    assert best.diff > 0 and best.low > 0 and best.p < 0.05
    same = ev.test_models(0, 0)
    assert same.diff == 0 and same.p == 1.0
    lo, hi = ev.ci()
    assert (lo < ev.estimate).all() and (ev.estimate < hi).all()
    assert ev.test_ceiling(1).diff < 0 and ev.test_ceiling(1).p < 0.05  # far below the ceiling
    both = bootstrap_models(models, subjects, over="both", n_boot=300, seed=0)
    # stimuli resampled too: a wider interval for the same estimate
    assert np.all(both.ci()[1] - both.ci()[0] > hi - lo)
    np.testing.assert_array_equal(bootstrap_models(models, subjects, n_boot=20, seed=5).distribution,
                                  bootstrap_models(models, subjects, n_boot=20, seed=5).distribution)


def test_sessions_are_drawn_with_their_subject(data):
    models, subjects = data
    groups = np.repeat([0, 1, 2, 3], 2)
    ev = bootstrap_models(models, subjects, groups=groups, n_boot=50, seed=0)
    assert np.isfinite(ev.distribution).all() and ev.ceiling[0] < ev.ceiling[1]
    with pytest.raises(ConfigError, match="over must be"):
        bootstrap_models(models, subjects, over="stimuli")
