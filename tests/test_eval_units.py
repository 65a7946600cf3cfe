"""Unit tests of the evaluation building blocks (fast: toy models, random data)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from brainalign.errors import BrainAlignError, ConfigError, DataError, OutputExistsError
from brainalign import io as cache_mod
from brainalign.data.subjects import parse_subjects
from brainalign.evaluate.image_sources import folder_labels
from brainalign.io import prepare_output_dir, write_json
from brainalign.evaluate.robustness import (PixelClassifier, fgsm, parse_eps, pgd, robustness_curve,
                                            topk_correct)
from brainalign.evaluate.variability import variability_matrix


# --- output folders -----------------------------------------------------------------
def test_output_dir_refuses_file_and_nonempty_folder(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        prepare_output_dir(f)
    d = tmp_path / "report"
    prepare_output_dir(d)  # created
    (d / "report.md").write_text("previous")
    (d / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        prepare_output_dir(d)
    assert prepare_output_dir(d, overwrite=True) == d
    assert (d / "notes.txt").read_text() == "mine"  # overwrite never deletes other files


def test_write_json_handles_numpy_and_nan(tmp_path):
    import json

    p = write_json(tmp_path / "r.json", {"a": np.arange(3), "b": np.float32(0.5), "c": float("nan")})
    assert json.loads(p.read_text()) == {"a": [0, 1, 2], "b": 0.5, "c": None}


# --- cache ----------------------------------------------------------------------------
def test_cache_detects_corruption_and_recomputes(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(10.0)}

    key = cache_mod.content_key(np.ones(3), settings={"a": 1})
    assert key != cache_mod.content_key(np.ones(3), settings={"a": 2})
    a, hit = cache_mod.cached_arrays(tmp_path, "k", key, compute)
    assert not hit and len(calls) == 1
    a, hit = cache_mod.cached_arrays(tmp_path, "k", key, compute)
    assert hit and len(calls) == 1 and np.array_equal(a["x"], np.arange(10.0))
    path = tmp_path / "k" / f"{key}.npz"
    # tamper with the payload but keep a valid npz: the stored checksum no longer matches
    arrays = dict(np.load(path))
    arrays["x"] = arrays["x"] + 1
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="checksum"):
        a, hit = cache_mod.cached_arrays(tmp_path, "k", key, compute)
    assert not hit and len(calls) == 2 and np.array_equal(a["x"], np.arange(10.0))
    path.write_bytes(path.read_bytes()[:50])  # truncated file
    with pytest.warns(UserWarning, match="unreadable"):
        _, hit = cache_mod.cached_arrays(tmp_path, "k", key, compute)
    assert not hit and len(calls) == 3


# --- parsing --------------------------------------------------------------------------
def test_parse_subjects_and_eps():
    assert parse_subjects("1-3,7") == [1, 2, 3, 7]
    assert parse_subjects("2,1") == [1, 2]
    assert parse_subjects(None) is None
    for bad in ("a", "3-1", "1;2"):
        with pytest.raises(ConfigError):
            parse_subjects(bad)
    assert parse_eps("0.02,0,0.01") == [0.0, 0.01, 0.02]
    for bad in ("x", "", "-0.1", "2"):
        with pytest.raises(ConfigError):
            parse_eps(bad)


def test_folder_labels():
    assert folder_labels(np.array(["3", "0", "3"]), 5).tolist() == [3, 0, 3]
    assert folder_labels(np.array(["n01443537", "n01440764"]), 1000).tolist() == [1, 0]  # ImageNet wnids
    assert folder_labels(np.array(["b", "a", "c"]), 3).tolist() == [1, 0, 2]
    with pytest.raises(ConfigError, match="--labels model"):
        folder_labels(np.array(["b", "a"]), 10)


# --- attacks --------------------------------------------------------------------------
def _toy_classifier(seed=0):
    torch.manual_seed(seed)
    return PixelClassifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)))


def test_fgsm_raises_loss_and_stays_in_range():
    clf = _toy_classifier()
    x = torch.rand(16, 3, 8, 8)
    y = clf(x).argmax(1)
    adv = fgsm(clf, x, y, 0.05)
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - x).abs().max() <= 0.05 + 1e-6
    loss = nn.functional.cross_entropy
    assert loss(clf(adv), y) > loss(clf(x), y)
    assert torch.equal(fgsm(clf, x, y, 0.0), x)


def test_pgd_stronger_than_fgsm_and_seeded():
    clf = _toy_classifier()
    x = torch.rand(16, 3, 8, 8)
    y = clf(x).argmax(1)
    loss = nn.functional.cross_entropy
    a1 = pgd(clf, x, y, 0.03, steps=5, seed=1)
    assert (a1 - x).abs().max() <= 0.03 + 1e-6 and a1.min() >= 0 and a1.max() <= 1
    assert torch.equal(a1, pgd(clf, x, y, 0.03, steps=5, seed=1))
    assert loss(clf(a1), y) >= loss(clf(fgsm(clf, x, y, 0.03)), y) - 1e-4


def test_topk_and_curve():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05]])
    assert topk_correct(logits, torch.tensor([1, 2]), (1, 5)) == {1: 1, 5: 2}  # k capped at n_classes
    clf = _toy_classifier()
    x = torch.rand(20, 3, 8, 8)
    y = clf(x).argmax(1).numpy()
    curve = robustness_curve(clf, x, y, eps=[0, 0.05, 0.2], batch_size=8, progress=False, name="toy")
    assert curve.top1[0] == 1.0 and curve.top1[-1] < curve.top1[0]
    assert curve.baseline_aligned("top1")[0] == 0.0
    assert all(t5 >= t1 for t1, t5 in zip(curve.top1, curve.top5))
    params = [p.requires_grad for p in clf.parameters()]
    assert all(params)  # parameters' requires_grad restored after the attack
    with pytest.raises(DataError):
        robustness_curve(clf, x, y[:5], eps=[0], progress=False)
    with pytest.raises(ConfigError):
        robustness_curve(clf, x, y, attack="cw", progress=False)


# --- variability ----------------------------------------------------------------------
def test_variability_matrix():
    rng = np.random.default_rng(0)
    base = rng.random(45)
    stack = np.stack([base, base + 0.01 * rng.random(45), rng.random(45)])
    m = variability_matrix(stack)
    assert m.shape == (3, 3) and np.allclose(np.diag(m), 0) and np.allclose(m, m.T)
    assert m[0, 1] < 0.05 < m[0, 2]


# --- zero-shot ------------------------------------------------------------------------
def test_zero_shot_head_small(tmp_path):
    from brainalign.evaluate.zero_shot import ZeroShotHead, open_clip_identity, zero_shot_head
    from brainalign.models.spec import BackboneSpec

    spec = BackboneSpec(name="clip", factory=lambda **k: None, layers=("x",), output="embedding")
    assert open_clip_identity(spec) == ("RN101", "openai")
    head = zero_shot_head(spec, pretrained=False, templates="single", classnames=["cat", "dog", "car"],
                          cache_dir=tmp_path, progress=False)
    assert isinstance(head, ZeroShotHead) and head.weights.shape[1] == 3
    assert torch.allclose(head.weights.norm(dim=0), torch.ones(3), atol=1e-4)
    logits = head(torch.randn(4, head.weights.shape[0]))
    assert logits.shape == (4, 3)
    assert list((tmp_path / "zero_shot").glob("*.pt"))  # cached for the next run
    with pytest.raises(BrainAlignError):
        open_clip_identity(BackboneSpec(name="mynet", factory=lambda **k: None, layers=("x",), output="embedding"))


def test_default_subjects_of_a_things_root_are_the_subjects_it_holds(tmp_path):
    from brainalign.data.synthetic import SyntheticBrain
    from brainalign.evaluate.data_sources import default_subjects

    SyntheticBrain(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=2, test_images_per_concept=2,
                   image_size=16, n_subjects=2, n_times=50, n_repetitions_train=2,
                   n_repetitions_test=4).write_things_eeg2(tmp_path / "eeg")
    assert default_subjects(f"things-eeg2:{tmp_path / 'eeg'}") == [1, 2]
    assert default_subjects(str(tmp_path / "eeg")) == [1, 2]
