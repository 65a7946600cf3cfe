"""EEG comparison: model layer RDMs vs time-resolved EEG decoding RDMs (paper's Figure 2A).

Per subject, the test-set decoding RDMs (pairwise decoding accuracy per time point) are
computed once and cached on disk, keyed by a content hash of the trials and the decoding
settings. Each model layer's RDM (1 - Pearson of flattened activations) is compared
with each time point's RDM by Spearman; results are mean +- SEM over subjects, and each
model is tested against the first with a cluster-based sign-flip permutation test.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..io import cached_arrays, content_key
from .results import EEGResult

MIN_SUBJECTS_FOR_TEST = 3  # a sign-flip test over fewer subjects cannot reach p < .05
DECODING_DEFAULTS = {"engine": "lda", "n_pseudo": 5, "n_folds": 4, "n_permutations": 10, "seed": 0}


def decoding_settings(n_repetitions: int, **overrides) -> dict:
    """The decoding settings for trials with ``n_repetitions``: defaults, n_pseudo lowered to fit."""
    s = {**DECODING_DEFAULTS, **{k: v for k, v in overrides.items() if v is not None}}
    if "n_pseudo" not in overrides or overrides.get("n_pseudo") is None:
        s["n_pseudo"] = max(1, min(s["n_pseudo"], n_repetitions // s["n_folds"]))
    return s


def subject_decoding_rdms(dataset, *, cache_dir=None, settings: dict | None = None,
                          progress: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """(rdms (n_times, n_pairs), times_s (n_times,), cache_hit) for one subject's EEG dataset.

    dataset.trials() is (n_images, n_repetitions, n_channels, n_times).
    """
    from ..rsa import decoding_rdm

    trials = dataset.trials()
    times = np.asarray(dataset.times if dataset.times is not None else np.arange(trials.shape[-1]), dtype=float)
    settings = settings or decoding_settings(trials.shape[1])
    key = content_key(trials, times, settings=settings)

    def compute():
        r = decoding_rdm(trials, times=times, **settings)
        return {"rdms": r.vectors, "times": np.asarray(r.descriptors.get("time", times), dtype=float)}

    arrays, hit = cached_arrays(cache_dir, "decoding_rdms", key, compute)
    return arrays["rdms"], arrays["times"], hit


def check_same_images(datasets: dict, what: str) -> str:
    """The shared image fingerprint of per-subject datasets; DataError if subjects differ."""
    prints = {s: d.images.fingerprint() for s, d in datasets.items()}
    ids = {s: None if d.stimulus_ids is None else tuple(map(str, d.stimulus_ids)) for s, d in datasets.items()}
    first = next(iter(datasets))
    bad = [s for s in datasets if prints[s] != prints[first] or ids[s] != ids[first]]
    if bad:
        raise DataError(f"{what} of subject(s) {', '.join(map(str, bad))} were recorded on a different image "
                        f"set than subject {first}'s (different images or order): RSA across subjects needs the "
                        "same test images in the same order; check the data paths / --subjects")
    return prints[first]


def as_model_rdm_sets(models, stimuli: dict, *, batch_size: int = 32, device=None, pooling: str = "flatten",
                      progress: bool = True, stages=None) -> list:
    """ModelRDMSet per model: sets pass through; ModelEntry objects get their RDMs on ``stimuli``."""
    from ..analyses.context import model_rdm_sets

    return model_rdm_sets(models, stimuli, batch_size=batch_size, device=device, pooling=pooling,
                          progress=progress, stages=stages)


def eeg_neural_rdms(eeg: dict, *, cache_dir=None, decoding: dict | None = None, progress: bool = True,
                    log=print) -> tuple[np.ndarray, np.ndarray]:
    """(rdms (n_subjects, n_times, n_pairs), times (n_times,)) of every subject's decoding RDMs."""
    from ..progress import progress as _progress

    subjects = list(eeg)
    neural, times = [], None
    for s in _progress(subjects, desc="EEG decoding RDMs", enabled=progress):
        d = eeg[s]
        settings = decoding_settings(d.trials().shape[1], **(decoding or {}))
        vecs, t, hit = subject_decoding_rdms(d, cache_dir=cache_dir, settings=settings)
        log(f"  subject {s}: decoding RDMs {vecs.shape[0]} time points x {d.trials().shape[0]} images "
            f"({'from cache' if hit else 'computed'})")
        if times is not None and (len(t) != len(times) or not np.allclose(t, times)):
            raise DataError(f"subject {s}'s EEG has different time points than subject {subjects[0]}'s: "
                            "load all subjects with the same time window")
        times = t
        neural.append(vecs)
    return np.stack(neural), times


def compare_eeg(models: list, eeg: dict, *, cache_dir=None, decoding: dict | None = None,
                batch_size: int = 32, device=None, pooling: str = "flatten", n_permutations: int = 1000,
                cluster_threshold: float | None = None, seed: int = 0, progress: bool = True,
                log=print, stages=None) -> EEGResult:
    """Time-resolved RSA of every model's layers against every subject's EEG.

    Args:
        models: models to compare (the first is the reference for the significance tests):
            :class:`~brainalign.analyses.ModelRDMSet` objects or loaded ModelEntry objects.
        eeg: {subject: NeuralDataset} test-set EEG (or MEG) with raw repetitions kept.
        decoding: overrides of the decoding settings (engine, n_pseudo, n_folds, n_permutations, seed).
        stages: a :class:`brainalign.progress.Stages` timing 'decoding RDMs', 'features', 'RSA',
            'statistics'.
    """
    from ..progress import Stages
    from ..rsa import time_resolved_rsa

    stages = stages or Stages(log_fn=None)
    subjects = list(eeg)
    fingerprint = check_same_images(eeg, "EEG test images")
    with stages("decoding RDMs"):
        neural, times = eeg_neural_rdms(eeg, cache_dir=cache_dir, decoding=decoding, progress=progress, log=log)
    images = eeg[subjects[0]]
    models = as_model_rdm_sets(models, {s: {fingerprint: images} for s in subjects}, batch_size=batch_size,
                               device=device, pooling=pooling, progress=progress, stages=stages)
    values, layers = {}, {}
    with stages("RSA"):
        for m in models:
            layers[m.label] = m.layer_labels
            per_subject = []
            for si, s in enumerate(subjects):
                mv = m.for_subject(s, fingerprint)
                _check_conditions(mv, neural[si], m.label, s)
                per_subject.append(time_resolved_rsa(mv, neural[si][None])[:, 0])  # (n_layers, n_times)
            values[m.label] = np.stack(per_subject, axis=1)  # (n_layers, n_subjects, n_times)
    times_ms = times * 1000.0 if np.nanmax(np.abs(times)) < 20 else times  # seconds -> ms
    res = EEGResult(times_ms=times_ms, subjects=subjects, models=[m.label for m in models], layers=layers,
                    values=values,
                    settings={"decoding": decoding_settings(images.trials().shape[1], **(decoding or {})),
                              "model_rdm": "1 - Pearson", "pooling": pooling, "similarity": "spearman",
                              "n_permutations": n_permutations, "cluster_threshold": cluster_threshold,
                              "seed": seed, "n_images": int(images.trials().shape[0])})
    with stages("statistics"):
        res.noise_ceiling = eeg_noise_ceiling(neural)
        res.significance = significance_vs_reference(res, n_permutations=n_permutations,
                                                     threshold=cluster_threshold, seed=seed)
    return res


def _check_conditions(model_vecs: np.ndarray, neural_vecs: np.ndarray, label: str, subject) -> None:
    if model_vecs.shape[1] != neural_vecs.shape[1]:
        from ..rsa.rdms import n_conditions_from_pairs

        raise DataError(f"model {label!r} RDMs cover {n_conditions_from_pairs(model_vecs.shape[1])} images but "
                        f"subject {subject}'s neural RDMs cover {n_conditions_from_pairs(neural_vecs.shape[1])}: "
                        "models and neural data must use the same image set")


def eeg_noise_ceiling(neural: np.ndarray) -> dict | None:
    """{'lower': (n_times,), 'upper': (n_times,)} from (n_subjects, n_times, n_pairs); None for 1 subject."""
    from ..rsa import stats

    if neural.shape[0] < 2:
        return None
    lower, upper = stats.noise_ceiling(neural)
    return {"lower": np.asarray(lower, dtype=float).reshape(-1), "upper": np.asarray(upper, dtype=float).reshape(-1)}


def cluster_test(diff: np.ndarray, *, n_permutations: int, threshold: float | None, seed: int) -> tuple[np.ndarray, list[dict]]:
    """(mask (n_times,), clusters) of a cluster sign-flip test on diff (n_subjects, n_times)."""
    from ..rsa import stats

    diff = np.asarray(diff, dtype=float)
    if np.allclose(diff, 0.0):  # identical models: no effect, and t would be 0/0
        return np.zeros(diff.shape[1], dtype=bool), []
    kw = {"n_permutations": n_permutations, "seed": seed}
    if threshold is not None:
        kw["threshold"] = threshold
    out = stats.cluster_permutation_test(diff, **kw)
    mask = _get(out, "mask", "significant", "sig_mask")
    clusters = _get(out, "clusters")
    norm = []
    for c in clusters or []:
        if isinstance(c, dict):
            norm.append({k: c[k] for k in ("start", "stop", "mass", "p") if k in c})
        elif hasattr(c, "_asdict"):
            norm.append(dict(c._asdict()))
        elif hasattr(c, "__dataclass_fields__"):
            norm.append({k: getattr(c, k) for k in c.__dataclass_fields__})
        else:
            start, stop, mass, p = tuple(c)[:4]
            norm.append({"start": start, "stop": stop, "mass": mass, "p": p})
    return np.asarray(mask, dtype=bool).reshape(-1), norm


def _get(obj, *names):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    if isinstance(obj, tuple) and names[0] in ("mask", "significant", "sig_mask"):
        return obj[1]
    if isinstance(obj, tuple) and names[0] == "clusters":
        return obj[0]
    raise TypeError(f"unexpected cluster test result {type(obj).__name__}")


def significance_vs_reference(res: EEGResult, *, n_permutations: int = 1000, threshold: float | None = None,
                              seed: int = 0) -> list[dict]:
    """Cluster-corrected tests of (model - first model) per shared layer and for the best layer.

    Needs >= 3 subjects (sign flips of whole subjects); returns [] otherwise.
    """
    if len(res.subjects) < MIN_SUBJECTS_FOR_TEST or len(res.models) < 2:
        return []
    ref = res.models[0]
    t = res.times_ms
    out = []
    for m in res.models[1:]:
        pairs = []
        if res.layers[m] == res.layers[ref]:
            pairs = [(lab, res.values[m][i] - res.values[ref][i]) for i, lab in enumerate(res.layers[m])]
        pairs.append(("max over layers", res.best_layer(m) - res.best_layer(ref)))
        for layer, diff in pairs:
            mask, clusters = cluster_test(diff, n_permutations=n_permutations, threshold=threshold, seed=seed)
            for c in clusters:  # report cluster bounds in ms as well as samples
                if "start" in c and "stop" in c:
                    c["start_ms"] = float(t[int(c["start"])])
                    c["stop_ms"] = float(t[min(int(c["stop"]), len(t)) - 1])
            out.append({"model": m, "reference": ref, "layer": layer, "mask": mask, "clusters": clusters,
                        "n_permutations": n_permutations})
    return out
