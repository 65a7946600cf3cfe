"""align(): results, determinism, resume, checkpoints, saved models and bad input (tiny CPU runs)."""
import json

import numpy as np
import pytest
import torch

import brainalign
from brainalign.alignment import AlignedModel, align, load_aligned, save_aligned
from brainalign.alignment.checkpoint import CHECKPOINT_FORMAT
from brainalign.data.dataset import NeuralDataset
from brainalign.errors import (CheckpointError, ConfigError, DataError, LayerError, MissingWeightsError,
                               OutputExistsError, TrainingError)

from align_helpers import FAST, NaNAfter, TinyNet, tiny_dataset

LAYERS = ["block1", "block2"]


def _sd(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_align_returns_a_fresh_aligned_copy():
    net, ds = TinyNet(), tiny_dataset()
    before = _sd(net)
    res = align(net, LAYERS, ds, **FAST)
    assert isinstance(res, AlignedModel) and res.model is res.backbone and res.model is not net
    assert _equal(before, _sd(net))  # the caller's model is never modified
    assert type(res.model) is TinyNet and not _equal(before, _sd(res.model))
    assert [n for n, _ in res.model.named_modules()] == [n for n, _ in net.named_modules()]
    assert len(res.history) == 2 and 1 <= res.best_epoch <= 2
    row = res.history[0]
    assert set(row) >= {"task", "mse", "contrastive", "total", "val_spearman", "val_task_agreement"}
    assert res.config["task_loss"] == "ce" and res.config["layers"] == LAYERS
    json.dumps(res.config)
    assert res.predict(ds.images.load(list(range(5)))).shape == (5, 12)
    # brainalign.align resolves lazily to the same function
    assert brainalign.align is align


def test_same_seed_same_weights_and_brain_signal_learned():
    ds = tiny_dataset()
    a = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 4})
    b = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 4})
    assert _equal(_sd(a.model), _sd(b.model)) and _equal(_sd(a.head), _sd(b.head))
    assert a.history == [dict(r, time_s=a.history[i]["time_s"]) for i, r in enumerate(b.history)]
    assert a.history[-1]["mse"] < a.history[0]["mse"]


def test_resume_is_bit_identical(tmp_path):
    ds = tiny_dataset()
    full = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 3}, out_dir=tmp_path / "full")
    align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 2}, out_dir=tmp_path / "part")
    resumed = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 3}, out_dir=tmp_path / "part", resume=True)
    ck_full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    ck_res = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert ck_full["format"] == CHECKPOINT_FORMAT and ck_res["epoch"] == 3
    for part in ("model", "head", "best_model", "best_head"):
        assert _equal(ck_full["payload"][part], ck_res["payload"][part]), part
    assert _equal(_sd(full.model), _sd(resumed.model)) and full.best_epoch == resumed.best_epoch
    assert [r["total"] for r in full.history] == [r["total"] for r in resumed.history]
    # without resume=True an existing run is never overwritten
    with pytest.raises(OutputExistsError, match="resume=True"):
        align(TinyNet(), LAYERS, ds, **FAST, out_dir=tmp_path / "part")


def test_checkpoint_from_other_settings_or_backbone_or_corrupted(tmp_path):
    ds = tiny_dataset()
    run = tmp_path / "run"
    align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1}, out_dir=run)
    ck = run / "checkpoint.pt"
    original = ck.read_bytes()
    with pytest.raises(CheckpointError, match="beta"):
        align(TinyNet(), LAYERS, ds, **FAST, beta=5.0, out_dir=run, resume=True)
    with pytest.raises(CheckpointError, match="backbone"):
        align(NaNAfter(10**9), ["net.block1"], ds, **FAST, out_dir=run, resume=True)
    assert ck.read_bytes() == original  # nothing overwritten
    ck.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(CheckpointError, match="corrupted"):
        align(TinyNet(), LAYERS, ds, **FAST, out_dir=run, resume=True)
    # a flipped byte inside a tensor: the container may still parse, the sha256 does not match
    obj = torch.load(tmp_path / "run" / "aligned.pt", weights_only=True)
    obj["payload"]["backbone"]["fc.bias"][0] += 1
    torch.save(obj, ck.with_name("tampered.pt"))
    with pytest.raises(CheckpointError, match="hash"):
        load_aligned(ck.with_name("tampered.pt"), model=TinyNet())


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_save_and_load_aligned(tmp_path, suffix):
    ds = tiny_dataset()
    res = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1})
    path = res.save(tmp_path / f"aligned{suffix}")
    if suffix == ".pt":
        raw = torch.load(path, weights_only=True)
        assert json.loads(raw["aligned_json"])["config"]["layers"] == LAYERS
    loaded = load_aligned(path, model=TinyNet(seed=5))
    assert isinstance(loaded, AlignedModel) and type(loaded.backbone) is TinyNet
    assert _equal(_sd(loaded), _sd(res))  # backbone + head, one state dict
    assert _equal(_sd(loaded.backbone), _sd(res.model)) and _equal(_sd(loaded.head), _sd(res.head))
    assert loaded.history == res.history and loaded.best_epoch == res.best_epoch
    x = ds.images.load([0, 1, 2])
    assert torch.allclose(loaded(x), res.model(x))
    assert torch.allclose(loaded.predict(x), res.predict(x))
    # taps read the backbone's own layer names
    assert set(brainalign.extract_features(loaded, x, LAYERS)) == set(LAYERS)
    with pytest.raises(CheckpointError, match="custom model"):
        load_aligned(path)  # an unregistered class cannot be rebuilt by name
    save_aligned(loaded, tmp_path / f"again{suffix}")
    assert _equal(_sd(load_aligned(tmp_path / f"again{suffix}", model=TinyNet()).backbone), _sd(res.model))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        load_aligned(path, model=TinyNet())


def test_registered_backbone_round_trip(tmp_path):
    from brainalign.alignment import train_classifier

    rng = np.random.default_rng(0)
    images = rng.random((24, 3, 32, 32), dtype=np.float32)
    concepts = np.repeat(["a", "b", "c", "d", "e", "f"], 4)
    ds = NeuralDataset(images=images, responses=rng.standard_normal((24, 2, 5)), concepts=concepts)
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    train_classifier(net, ds.images, concepts, epochs=1, batch_size=8, seed=0, device="cpu")
    assert net.decoder.linear.out_features == 6 and net.brainalign_classes == list("abcdef")
    res = align(net, ["V1", "IT"], ds, **{**FAST, "epochs": 1}, head_pooling="adaptive2")
    assert res.config["spec_name"] == "cornet_tiny" and res.config["layers"] == ["V1", "IT"]
    loaded = load_aligned(res.save(tmp_path / "a.pt"))  # rebuilt from the registry by name
    assert brainalign.models.registry.spec_of(loaded).name == "cornet_tiny"
    assert _equal(_sd(loaded.backbone), _sd(res.model))


def test_task_loss_auto_rule_and_options():
    ds = tiny_dataset()
    assert align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1}, task_loss="kl").config["task_loss"] == "kl"
    emb = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1}, task_loss="cosine")
    assert 0 < emb.history[0]["val_task_agreement"] <= 1.0001
    nocont = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1, "batch_size": 1}, contrastive=False)
    assert nocont.history[0]["contrastive"] is None
    unp = align(TinyNet(), LAYERS, ds, **{**FAST, "epochs": 1}, unpaired=True)
    assert unp.config["settings"]["unpaired"] is True


def test_bad_input_is_reported_before_work():
    ds = tiny_dataset()
    with pytest.raises(LayerError, match="block1"):
        align(TinyNet(), ["blok1"], ds, **FAST)
    with pytest.raises(DataError, match="count"):
        align(TinyNet(), LAYERS, targets=(ds.images.load(list(range(10))), np.zeros((9, 4))), **FAST)
    with pytest.raises(ConfigError, match="batch_size=1"):
        align(TinyNet(), LAYERS, ds, **{**FAST, "batch_size": 1})
    with pytest.raises(ConfigError, match="no training data"):  # (eeg= with fmri= is a joint alignment)
        align(TinyNet(), LAYERS, **FAST)
    bad = tiny_dataset()
    bad.responses[7] = 1.5
    with pytest.raises(DataError, match="img007"):
        align(TinyNet(), LAYERS, bad, **FAST)
    with pytest.raises(ConfigError, match="resume"):
        align(TinyNet(), LAYERS, ds, **FAST, resume=True)


def test_nan_loss_names_epoch_and_batch_and_keeps_checkpoint(tmp_path):
    ds = tiny_dataset()  # 28 training images (1 of 8 concepts validates) at batch 8 -> 4 batches
    with pytest.raises(TrainingError, match=r"epoch 2, batch 2.*epoch \(1\)"):
        align(NaNAfter(5), ["net.block1"], ds, **{**FAST, "epochs": 3}, out_dir=tmp_path)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 1
    assert not (tmp_path / "aligned.pt").exists()


def test_amp_true_runs_bf16_on_cpu():
    res = align(TinyNet(), LAYERS, tiny_dataset(), **{**FAST, "epochs": 1}, amp=True)
    assert res.config["settings"]["amp"] == "bf16"


def test_model_name_string_and_default_layers():
    rng = np.random.default_rng(1)
    ds = NeuralDataset(images=rng.random((12, 3, 32, 32), dtype=np.float32),
                       responses=rng.standard_normal((12, 6)), concepts=np.repeat(list("abcd"), 3))
    # a name loads the registered backbone with its standard pretrained weights (none for cornet_tiny)
    with pytest.raises(MissingWeightsError, match="cornet_tiny"):
        align("cornet_tiny", None, ds, **FAST)
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    res = align(net, None, ds, **{**FAST, "epochs": 1}, head_pooling="avg", val_fraction=0.25)
    assert res.config["layers"] == list(brainalign.get_backbone_spec("cornet_tiny").layers)


def test_torchvision_model_and_embedding_spec():
    import torchvision

    from brainalign.models.registry import attach_spec
    from brainalign.models.spec import BackboneSpec, Preprocessing

    ds = tiny_dataset(size=32)
    net = torchvision.models.resnet18(num_classes=4)
    res = align(net, ["layer1", "layer4"], ds, **{**FAST, "epochs": 1}, head_pooling="adaptive2")
    assert res.config["task_loss"] == "ce" and type(res.model) is type(net)
    # an embedding backbone (e.g. CLIP's image tower) gets the cosine task loss automatically
    emb = TinyNet(n_classes=8)
    attach_spec(emb, BackboneSpec(name="tiny_embed", factory=lambda **kw: TinyNet(8), layers=("block2",),
                                  preprocessing=Preprocessing(size=16), output="embedding"))
    res = align(emb, None, ds, **{**FAST, "epochs": 1})
    assert res.config["task_loss"] == "cosine" and res.config["layers"] == ["block2"]
