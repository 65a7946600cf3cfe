"""Determinism: the same seed gives the same weights, RDMs, statistics and synthetic data on one
machine; another seed gives other random draws; results record versions and settings."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from brainalign import rsa
from brainalign.rsa.decoding import pseudo_trials

from align_helpers import FAST, TinyNet, tiny_dataset

LAYERS = ["block1", "block2"]


def _no_time(history):
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history]


def _state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def aligned_runs(tmp_path_factory):
    from brainalign.alignment import align

    root = tmp_path_factory.mktemp("det")
    ds = tiny_dataset(n_concepts=4, per_concept=4)
    kw = {**FAST, "epochs": 2}
    return {"a": align(TinyNet(), LAYERS, ds, **kw, out_dir=root / "a"),
            "b": align(TinyNet(), LAYERS, ds, **kw),
            "seed2": align(TinyNet(), LAYERS, ds, **{**kw, "seed": 2}), "root": root}


def test_same_seed_same_aligned_weights_head_and_history(aligned_runs):
    a, b, other = aligned_runs["a"], aligned_runs["b"], aligned_runs["seed2"]
    assert _state_equal(a.model, b.model) and _state_equal(a.head, b.head)
    assert _no_time(a.history) == _no_time(b.history) and a.best_epoch == b.best_epoch
    # another seed: another head initialisation, shuffling and validation split
    assert not _state_equal(a.head, other.head)
    assert a.config["data"]["val_concepts"] != other.config["data"]["val_concepts"] or \
        _no_time(a.history) != _no_time(other.history)


def test_run_folder_records_versions_and_settings(aligned_runs):
    run = aligned_runs["root"] / "a"
    config = json.loads((run / "config.json").read_text())
    assert config["versions"]["torch"] == torch.__version__
    assert config["versions"]["brainalign"] == __import__("brainalign").__version__
    assert {"numpy", "python"} <= set(config["versions"])
    s = config["settings"]
    assert (s["seed"], s["lr"], s["batch_size"], s["beta"], s["epochs"]) == (1, 1e-3, 8, 100.0, 2)
    assert config["layers"] == LAYERS and config["fingerprint"] and config["start_weights_sha256"]
    assert config["data"]["fingerprint"] and config["data"]["val_concepts"]
    history = json.loads((run / "history.json").read_text())
    assert _no_time(history) == _no_time(aligned_runs["a"].history)


def _trials(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((5, 8, 3, 4))
    return x + np.arange(5)[:, None, None, None] * 0.3


def test_decoding_rdms_repeat_with_the_seed_and_change_with_it():
    x = _trials()
    a = rsa.decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=2, seed=7)
    b = rsa.decoding_rdm(x.copy(), n_pseudo=2, n_folds=2, n_permutations=2, seed=7)
    c = rsa.decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=2, seed=8)
    assert np.array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)  # other pseudo-trial assignments
    # the pseudo-trials themselves: same generator state -> same groups; other seed -> other groups
    p7 = pseudo_trials(x, 2, np.random.default_rng(7))
    assert np.array_equal(p7, pseudo_trials(x, 2, np.random.default_rng(7)))
    assert not np.array_equal(p7, pseudo_trials(x, 2, np.random.default_rng(8)))
    # the SVM engine draws the same pseudo-trials as LDA for a seed (documented), and repeats too
    s1 = rsa.decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=1, seed=7, engine="svm")
    s2 = rsa.decoding_rdm(x, n_pseudo=2, n_folds=2, n_permutations=1, seed=7, engine="svm")
    assert np.array_equal(s1.vectors, s2.vectors)


def test_model_rdms_are_deterministic():
    feats = np.random.default_rng(0).standard_normal((12, 40)).astype(np.float32)
    assert np.array_equal(rsa.rdm(feats).vectors, rsa.rdm(feats.copy()).vectors)
    acc1, acc2 = rsa.RDMAccumulator(12), rsa.RDMAccumulator(12)
    for s in range(0, 12, 5):
        acc1.update(np.arange(s, min(12, s + 5)), feats[s:s + 5])
    for s in (10, 5, 0):  # another batch order gives the same RDM
        acc2.update(np.arange(s, min(12, s + 5)), feats[s:s + 5])
    np.testing.assert_allclose(acc1.result().vectors, acc2.result().vectors, rtol=0, atol=1e-12)


def test_statistics_repeat_with_the_seed_and_change_with_it():
    rng = np.random.default_rng(0)
    diff = rng.standard_normal((9, 30)) * 0.5
    diff[:, 10:18] += 1.0  # a real effect
    a = rsa.stats.cluster_permutation_test(diff, n_permutations=200, seed=3)
    b = rsa.stats.cluster_permutation_test(diff.copy(), n_permutations=200, seed=3)
    c = rsa.stats.cluster_permutation_test(diff, n_permutations=200, seed=4)
    assert a.clusters == b.clusters and np.array_equal(a.null, b.null) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.null, c.null)
    assert np.array_equal(rsa.stats.sign_flip_test(diff, 100, seed=1), rsa.stats.sign_flip_test(diff, 100, seed=1))

    model = rng.random(45)
    neural = model + rng.standard_normal((3, 45)) * 0.5  # 10 conditions, 3 time points
    b1 = rsa.stats.bootstrap_ci(model, neural, n_boot=50, seed=5)
    b2 = rsa.stats.bootstrap_ci(model, neural, n_boot=50, seed=5)
    b3 = rsa.stats.bootstrap_ci(model, neural, n_boot=50, seed=6)
    assert np.array_equal(b1.distribution, b2.distribution) and np.array_equal(b1.low, b2.low)
    assert not np.array_equal(b1.distribution, b3.distribution)


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synthetic_data_is_a_function_of_the_seed(tmp_path):
    from brainalign.data.synthetic import SyntheticBrain

    kw = dict(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=2, test_images_per_concept=2,
              image_size=16, n_subjects=1, n_times=30, n_repetitions_train=2, n_repetitions_test=2)
    a, b, c = SyntheticBrain(seed=5, **kw), SyntheticBrain(seed=5, **kw), SyntheticBrain(seed=6, **kw)
    assert torch.equal(a.image_tensor("test"), b.image_tensor("test"))
    assert np.array_equal(a.eeg_trials(1, "test"), b.eeg_trials(1, "test"))
    assert not np.array_equal(a.eeg_trials(1, "test"), c.eeg_trials(1, "test"))
    # the written release is byte-identical (EEG, metadata, images, config)
    a.write_things_eeg2(tmp_path / "a")
    b.write_things_eeg2(tmp_path / "b")
    da, db = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert da == db and any(k.endswith(".npy") for k in da) and any(k.endswith(".jpg") for k in da)


def test_compare_results_record_versions_settings_and_repeat(tmp_path):
    """Two compare runs (the second from the decoding cache) give identical numbers; results.json
    holds the versions and every setting."""
    from brainalign.data.synthetic import SyntheticBrain
    from brainalign.evaluate.compare import run_compare

    SyntheticBrain(n_train_concepts=2, n_test_concepts=3, train_images_per_concept=2, test_images_per_concept=2,
                   image_size=16, n_subjects=2, n_times=50, n_repetitions_train=2,
                   n_repetitions_test=4).write_things_eeg2(tmp_path / "eeg")
    kw = dict(eeg=f"things-eeg2:{tmp_path / 'eeg'}", subjects=[1, 2], pretrained=False, batch_size=8,
              cache_dir=tmp_path / "cache", n_permutations=16, seed=0, progress=False, log=lambda *a: None,
              device="cpu")
    run_compare(["cornet_tiny"], out=tmp_path / "r1", argv=["brainalign", "compare", "x"], **kw)
    run_compare(["cornet_tiny"], out=tmp_path / "r2", argv=["brainalign", "compare", "x"], **kw)
    r1 = json.loads((tmp_path / "r1" / "results.json").read_text())
    r2 = json.loads((tmp_path / "r2" / "results.json").read_text())
    prov = r1["meta"].pop("provenance")
    r2["meta"].pop("provenance")
    assert set(r1.pop("stages")) == set(r2.pop("stages"))  # wall times differ run to run; the stages do not
    assert r1 == r2  # every value, summary and p-value
    assert prov["torch"] == torch.__version__ and prov["brainalign"] and prov["numpy"] == np.__version__
    assert prov["command"] == "brainalign compare x"
    settings = r1["eeg"]["settings"]
    assert settings["seed"] == 0 and settings["n_permutations"] == 16 and settings["decoding"]["seed"] == 0
    assert {"engine", "n_pseudo", "n_folds", "n_permutations"} <= set(settings["decoding"])


def test_cli_records_the_command_it_was_given(tmp_path, monkeypatch):
    from brainalign.cli import main
    from brainalign.data.synthetic import SyntheticBrain

    SyntheticBrain(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=2, test_images_per_concept=2,
                   image_size=16, n_subjects=1, n_times=50, n_repetitions_train=2,
                   n_repetitions_test=4).write_things_eeg2(tmp_path / "eeg")
    monkeypatch.setattr("sys.argv", ["pytest", "-q", "unrelated"])
    argv = ["compare", "cornet_tiny", "--no-pretrained", "--eeg", f"things-eeg2:{tmp_path / 'eeg'}", "--subjects",
            "1", "--permutations", "4", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"),
            "--no-progress", "--device", "cpu"]
    assert main(argv) == 0
    prov = json.loads((tmp_path / "out" / "results.json").read_text())["meta"]["provenance"]
    assert "--permutations 4" in prov["command"] and "unrelated" not in prov["command"]
