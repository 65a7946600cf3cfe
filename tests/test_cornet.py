"""CORnet-S: architecture facts, published checkpoint format, offline pretrained errors."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import brainalign
from brainalign.errors import CheckpointError, MissingWeightsError
from brainalign.models.registry import spec_of
from brainalign.taps import LayerTap

SHAPES_224 = {"V1": (64, 56, 56), "V2": (128, 28, 28), "V4": (256, 14, 14), "IT": (512, 7, 7)}


@pytest.fixture(scope="module")
def cornet():
    torch.manual_seed(0)
    return brainalign.load_backbone("cornet", pretrained=False, device="cpu")


def _randomise_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN statistics so that eval outputs depend on every buffer."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return model


def test_parameter_count_is_exactly_the_published_one(cornet):
    assert sum(p.numel() for p in cornet.parameters()) == 53_416_616


def test_module_names_match_the_published_model(cornet):
    assert [n for n, _ in cornet.named_children()] == ["V1", "V2", "V4", "IT", "decoder"]
    keys = set(cornet.state_dict())
    for key in ["V1.conv1.weight", "V1.norm2.running_var", "V2.conv_input.weight", "V2.skip.weight",
                "V2.norm_skip.weight", "V4.norm1_3.weight", "V4.norm3_3.running_mean", "IT.norm2_1.bias",
                "IT.conv3.weight", "decoder.linear.weight", "decoder.linear.bias"]:
        assert key in keys, key
    assert "V4.norm1_4.weight" not in keys  # V4 runs 4 steps (0..3)
    assert not any(k.endswith(".bias") and ".conv" in k for k in keys)  # all convs without bias


def test_stage_shapes_at_224(cornet):
    with LayerTap(cornet, None) as tap:
        logits = tap.run(torch.rand(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in tap.outputs.items()} == SHAPES_224
    assert logits.shape == (1, 1000)
    assert cornet.V2.conv2.stride == (2, 2)  # per-step stride is passed, never written into the module


def test_recurrent_block_tap_gives_final_state_once():
    model = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    x = torch.rand(2, 3, 64, 64)
    with LayerTap(model, ["V4", "V4.output"]) as tap:
        tap.run(x)
    # the identity `output` runs once per step (4x in V4); the tap keeps the last, as the block returns
    assert torch.equal(tap.outputs["V4"], tap.outputs["V4.output"])
    assert tap._calls == {"V4.output": 4, "V4": 1}


def test_cornet_tiny_same_architecture_quarter_width():
    tiny = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu", num_classes=7)
    full_keys = set(brainalign.models.registry.get_backbone_spec("cornet").build().state_dict())
    assert set(tiny.state_dict()) == full_keys
    assert spec_of(tiny).preprocessing.size == 64
    with LayerTap(tiny, None) as tap:
        out = tap.run(torch.rand(1, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in tap.outputs.items()} == {
        "V1": (16, 16, 16), "V2": (32, 8, 8), "V4": (64, 4, 4), "IT": (128, 2, 2)}
    assert out.shape == (1, 7)


def test_cornet_tiny_has_no_pretrained_weights():
    with pytest.raises(MissingWeightsError, match="no pretrained weights exist for 'cornet_tiny'.*weights="):
        brainalign.load_backbone("cornet_tiny", pretrained=True)


def _published_checkpoint(model: nn.Module) -> dict:
    """The layout of the CORnet authors' file: DataParallel keys inside 'state_dict'."""
    return {"epoch": 43, "arch": "CORnet_S",
            "state_dict": {f"module.{k}": v.clone() for k, v in model.state_dict().items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}}


@pytest.fixture(scope="module")
def random_cornet_and_output(cornet):
    """The module's CORnet-S with random BN statistics, a small input and its logits."""
    model = _randomise_bn(cornet, seed=1)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        y = model(x)
    return model, x, y


@pytest.fixture(scope="module")
def random_tiny_and_output():
    torch.manual_seed(3)
    model = _randomise_bn(brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu"), seed=3)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        y = model(x)
    return model, x, y


def test_published_format_checkpoint_reproduces_outputs(tmp_path, random_cornet_and_output):
    model, x, y = random_cornet_and_output
    path = tmp_path / "cornet_s-random.pth"
    torch.save(_published_checkpoint(model), path)
    torch.manual_seed(99)  # a different random init: only the file can make the outputs match
    loaded = brainalign.load_backbone("cornet_s", weights=path, device="cpu")
    with torch.inference_mode():
        assert torch.allclose(loaded(x), y, atol=1e-5)


def test_plain_state_dict_reproduces_outputs(tmp_path, random_tiny_and_output):
    model, x, y = random_tiny_and_output  # same loader and module names; quarter width keeps the file small
    path = tmp_path / "plain.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(98)
    loaded = brainalign.load_backbone("cornet_tiny", pretrained=False, weights=str(path), device="cpu")
    with torch.inference_mode():
        assert torch.allclose(loaded(x), y, atol=1e-5)
    published = tmp_path / "published_tiny.pth"
    torch.save(_published_checkpoint(model), published)
    loaded = brainalign.load_backbone("cornet_tiny", weights=published, device="cpu")
    with torch.inference_mode():
        assert torch.allclose(loaded(x), y, atol=1e-5)


def test_checkpoint_saved_by_old_pytorch_without_num_batches_tracked_loads(tmp_path, random_tiny_and_output):
    """PyTorch < 0.4.1 saved BatchNorm without num_batches_tracked (as the published CORnet-S file)."""
    model, x, y = random_tiny_and_output
    ckpt = _published_checkpoint(model)
    ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if not k.endswith("num_batches_tracked")}
    assert len(ckpt["state_dict"]) < len(model.state_dict())
    path = tmp_path / "old_pytorch.pth"
    torch.save(ckpt, path)
    loaded = brainalign.load_backbone("cornet_tiny", weights=path, device="cpu")
    with torch.inference_mode():
        assert torch.allclose(loaded(x), y, atol=1e-5)
    ckpt["state_dict"].pop("module.V1.conv1.weight")  # any other missing key is still an error
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="missing key.*V1.conv1.weight"):
        brainalign.load_backbone("cornet_tiny", weights=path, device="cpu")


def test_checkpoint_of_another_backbone_is_a_clear_error(tmp_path):
    tiny = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": tiny.state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*V1\.conv1\.weight.*another backbone"):
        brainalign.load_backbone("cornet", weights=path, device="cpu")
    other = tmp_path / "resnet_like.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2)).state_dict(), other)
    with pytest.raises(CheckpointError) as info:
        brainalign.load_backbone("cornet", weights=other, device="cpu")
    msg = str(info.value)
    assert "missing key(s): V1.conv1.weight" in msg and "unexpected key(s): 0.weight" in msg


def test_offline_pretrained_fails_fast_with_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # fresh, empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(MissingWeightsError) as info:
        brainalign.load_backbone("cornet", pretrained=True, device="cpu")
    assert time.monotonic() - start < 20
    msg = str(info.value)
    assert "cornet_s-1d3f7974.pth" in msg and "s3.amazonaws.com/cornet-models" in msg
    assert str(tmp_path / "torch") in msg
    assert "weights=" in msg and "--weights" in msg and "pretrained=False" in msg and "--no-pretrained" in msg


def test_no_network_without_offline_flag_also_fails_fast(tmp_path, monkeypatch):
    from brainalign.models import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for key in weights.OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(weights, "can_reach", lambda *a, **k: False)  # what an unplugged machine answers
    with pytest.raises(MissingWeightsError, match="no network connection"):
        brainalign.load_backbone("cornet", pretrained=True, device="cpu")


def test_pretrained_uses_the_torch_hub_cache_without_network(tmp_path, monkeypatch, random_tiny_and_output):
    import brainalign_cornet

    model, x, y = random_tiny_and_output
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(_published_checkpoint(model), cache / "cornet_s-1d3f7974.pth")
    # the full-width model would need a 200 MB file here: read the cached file into CORnet-S
    # code path (pretrained_state_dict_from_url), then into the same architecture at 1/4 width
    from brainalign.models.weights import load_state_dict_into, pretrained_state_dict_from_url

    sd = pretrained_state_dict_from_url(brainalign_cornet.CORNET_S_URL, brainalign_cornet.CORNET_S_FILE)
    loaded = load_state_dict_into(brainalign_cornet.CORnetS(brainalign_cornet.TINY_CHANNELS), sd).eval()
    with torch.inference_mode():
        assert torch.allclose(loaded(x), y, atol=1e-5)
    with pytest.raises(CheckpointError, match="shape mismatch"):  # and load_backbone reads that very file
        brainalign.load_backbone("cornet", pretrained=True, device="cpu")


def test_corrupt_cached_download_says_to_delete_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "cornet_s-1d3f7974.pth").write_bytes(b"truncated download")
    with pytest.raises(CheckpointError, match="delete it to download again"):
        brainalign.load_backbone("cornet", pretrained=True, device="cpu")
