"""Representational similarity analysis: RDMs, EEG decoding RDMs, comparisons, statistics.

    from brainalign import rsa
    model = rsa.rdm(features)                       # (n_images, n_features) -> RDMs
    eeg = rsa.decoding_rdm(trials, seed=0)          # (C, R, E, T) -> RDMs, one per time point
    eeg = rsa.crossnobis_rdm(trials)                # cross-validated Mahalanobis, per time point
    rsa.compare(model, eeg)                         # (1, n_times) Spearman
    rsa.time_resolved_rsa(layer_rdms, subjects)     # (n_layers, n_subjects, n_times)
    rsa.stats.cluster_permutation_test(diff, seed=0)
    rsa.inference.bootstrap_models(models, subjects, over="both", seed=0).test_models(0, 1)
"""
from __future__ import annotations

from . import inference, stats
from .compare import compare, correlate_rows, time_resolved_rsa
from .compute import RDMAccumulator, rdm
from .crossnobis import crossnobis_rdm
from .decoding import correlation_rdm_eeg, decoding_rdm
from .rdms import RDMs, as_rdms, as_vectors, stack

__all__ = ["RDMs", "stack", "as_rdms", "as_vectors", "rdm", "RDMAccumulator", "decoding_rdm",
           "correlation_rdm_eeg", "crossnobis_rdm", "compare", "correlate_rows", "time_resolved_rsa", "stats",
           "inference"]
