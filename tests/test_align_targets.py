"""Joint alignment: several datasets over the same images as weighted targets, one head each."""
import numpy as np
import pytest
import torch

from brainalign.alignment import AlignedModel, align, load_aligned
from brainalign.alignment.config import AlignConfig
from brainalign.alignment.targets import join_targets
from brainalign.data.synthetic import SyntheticBrain
from brainalign.errors import CheckpointError, ConfigError, DataError

from align_helpers import FAST, TinyNet, tiny_dataset

LAYERS = ["block1", "block2"]


@pytest.fixture(scope="module")
def pair():
    eeg = tiny_dataset()
    fmri = tiny_dataset(n_targets=5, seed=3)._replace(images=eeg.images, modality="fmri")
    return eeg, fmri


def _sd(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def test_joint_run_has_a_head_and_terms_per_target_and_round_trips(pair, tmp_path):
    eeg, fmri = pair
    res = align(TinyNet(), LAYERS, eeg=eeg, fmri=fmri, target_weights={"fmri": 0.5}, **FAST, out_dir=tmp_path)
    assert isinstance(res, AlignedModel) and list(res.heads) == ["eeg", "fmri"]
    assert [h.n_targets for h in res.heads.values()] == [12, 5]
    row = res.history[-1]
    assert {"eeg/mse", "eeg/contrastive", "fmri/mse", "fmri/contrastive", "val_spearman/eeg",
            "val_spearman/fmri"} <= set(row)
    w = {"eeg": 1.0, "fmri": 0.5}
    assert row["val_spearman"] == pytest.approx(sum(w[n] * row[f"val_spearman/{n}"] for n in w) / 1.5)
    assert [(t["name"], t["weight"], t["stop"] - t["start"]) for t in res.config["targets"]] == \
        [("eeg", 1.0, 12), ("fmri", 0.5, 5)]
    assert res.config["settings"]["target_weights"] == {"fmri": 0.5}
    assert AlignConfig.from_dict(res.config["settings"]).target_weights == {"fmri": 0.5}
    x = eeg.images.load([0, 1, 2])
    assert res.predict(x, target="eeg").shape == (3, 12) and res.predict(x, target="fmri").shape == (3, 5)
    with pytest.raises(ConfigError, match="2 heads"):
        res.head
    with pytest.raises(ConfigError, match=r"predict\(images, target=name\)"):
        res.predict(x)
    back = load_aligned(tmp_path / "aligned.pt", model=TinyNet())
    assert list(back.heads) == ["eeg", "fmri"]
    assert torch.allclose(back.predict(x, target="fmri"), res.predict(x, target="fmri"))


def test_a_target_of_weight_zero_leaves_the_single_target_run(pair):
    """fmri weighted 0 adds exact zeros to the loss and the gradients: the backbone and the EEG head
    end as in the EEG-only run, so the weights really scale each target's term."""
    eeg, fmri = pair
    single = align(TinyNet(), LAYERS, eeg=eeg, **FAST)
    joint = align(TinyNet(), LAYERS, targets={"eeg": eeg, "fmri": fmri}, target_weights={"fmri": 0}, **FAST)
    weighted = align(TinyNet(), LAYERS, targets={"eeg": eeg, "fmri": fmri}, **FAST)
    a, b, c = _sd(single.backbone), _sd(joint.backbone), _sd(weighted.backbone)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert not all(torch.allclose(a[k].float(), c[k].float(), atol=1e-6) for k in a)
    ha, hb = _sd(single.head), _sd(joint.heads["eeg"])
    assert all(torch.allclose(ha[k], hb[k], atol=1e-6) for k in ha)
    assert [r["eeg/mse"] for r in joint.history] == pytest.approx([r["mse"] for r in single.history], abs=1e-6)


def test_eeg_and_roi_fmri_of_the_synthetic_brain_join_column_for_column():
    brain = SyntheticBrain(seed=0, n_train_concepts=3, train_images_per_concept=2, n_test_concepts=2,
                           test_images_per_concept=2, image_size=16)
    eeg, fmri = brain.eeg(1, "training"), brain.fmri(1, "training")
    ds, targets = join_targets({"eeg": eeg, "fmri": fmri}, {"eeg": 2})
    assert ds.modality == "eeg+fmri" and ds.targets().shape == (6, eeg.n_targets + fmri.n_targets)
    assert [(t.name, t.weight, t.response_shape) for t in targets] == \
        [("eeg", 2.0, eeg.response_shape), ("fmri", 1.0, fmri.response_shape)]
    assert np.array_equal(ds.targets()[:, targets[1].start:], fmri.targets())
    assert np.array_equal(ds.select_channels(target="eeg").responses, eeg.targets())
    assert list(ds.concepts) == list(eeg.concepts)


def test_bad_joint_input_fails_before_work(pair):
    eeg, fmri = pair
    other = tiny_dataset(seed=5)
    with pytest.raises(DataError, match="target 'fmri' has a different image set than target 'eeg'"):
        align(TinyNet(), LAYERS, eeg=eeg, fmri=other, **FAST)
    with pytest.raises(ConfigError, match="'fmir', which is not a target.*Did you mean: fmri"):
        align(TinyNet(), LAYERS, eeg=eeg, fmri=fmri, target_weights={"fmir": 2}, **FAST)
    with pytest.raises(ConfigError, match="needs several datasets"):
        align(TinyNet(), LAYERS, eeg=eeg, target_weights={"eeg": 2}, **FAST)
    with pytest.raises(ConfigError, match="data= is the one-dataset keyword"):
        align(TinyNet(), LAYERS, eeg=eeg, data=fmri, **FAST)
    with pytest.raises(ConfigError, match="at least one > 0"):
        align(TinyNet(), LAYERS, eeg=eeg, fmri=fmri, target_weights={"eeg": 0, "fmri": 0}, **FAST)
    with pytest.raises(ConfigError, match="without '.' or '/'"):
        align(TinyNet(), LAYERS, targets={"a/b": eeg, "c": fmri}, **FAST)
    with pytest.raises(ConfigError, match="name=weight pairs"):
        AlignConfig(target_weights="eeg:1")
    assert AlignConfig(target_weights="eeg=1,fmri=0.5").target_weights == {"eeg": 1.0, "fmri": 0.5}


def test_a_joint_run_resumes_bit_identical(pair, tmp_path):
    eeg, fmri = pair
    kw = dict(eeg=eeg, fmri=fmri, target_weights={"eeg": 2}, objective="realnet+0.5*rsa")
    full = align(TinyNet(), LAYERS, **kw, **{**FAST, "epochs": 3}, out_dir=tmp_path / "full")
    align(TinyNet(), LAYERS, **kw, **{**FAST, "epochs": 2}, out_dir=tmp_path / "part")
    resumed = align(TinyNet(), LAYERS, **kw, **{**FAST, "epochs": 3}, out_dir=tmp_path / "part", resume=True)
    a, b = _sd(full), _sd(resumed)
    assert a.keys() == b.keys() and any(k.startswith("heads.fmri.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "fmri/rsa" in resumed.history[-1]
    with pytest.raises(CheckpointError, match="differs in: target_weights, targets"):  # other weights: not this run
        align(TinyNet(), LAYERS, eeg=eeg, fmri=fmri, objective="realnet+0.5*rsa", **{**FAST, "epochs": 3},
              out_dir=tmp_path / "part", resume=True)
