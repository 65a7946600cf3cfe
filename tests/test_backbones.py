"""Backbone registry, the timm and open_clip plugins, weight files and the CLI commands."""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import brainalign
from brainalign.cli import main
from brainalign.errors import BackboneError, CheckpointError, ConfigError, MissingWeightsError
from brainalign.models.registry import available_backbones, get_backbone_spec, spec_of
from brainalign.models.weights import load_state_dict_file, load_weights_into
from brainalign.taps import LayerTap

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)


@pytest.fixture(scope="module")
def resnet101():
    torch.manual_seed(0)
    return brainalign.load_backbone("resnet101", pretrained=False, device="cpu")


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return brainalign.load_backbone("clip", pretrained=False, device="cpu")


def test_reference_backbones_are_registered_by_their_plugins():
    specs = available_backbones()
    assert {"cornet", "cornet_tiny", "resnet101", "clip"} <= set(specs)
    assert specs["cornet"].plugin == "cornet" and specs["resnet101"].plugin == "timm"
    assert specs["clip"].plugin == "open_clip" and specs["clip"].output == "embedding"
    assert specs["cornet"].layers == ("V1", "V2", "V4", "IT") and specs["cornet"].labels() == specs["cornet"].layers
    assert specs["resnet101"].layers == ("layer1", "layer2", "layer3", "layer4")
    assert specs["clip"].layers == ("layer1", "layer2", "layer3", "layer4", "attnpool")


@pytest.mark.parametrize("alias,name", [("cornet_s", "cornet"), ("CORnet-S", "cornet"), ("clip_rn101", "clip"),
                                        ("resnet101", "resnet101"), (" cornet ", "cornet")])
def test_aliases(alias, name):
    assert get_backbone_spec(alias).name == name


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(BackboneError,
                       match=r"unknown backbone 'cornet_z'.*Did you mean: .*cornet.*brainalign backbones"):
        get_backbone_spec("cornet_z")
    with pytest.raises(BackboneError, match=r"unknown timm model 'resnet1O1'.*Did you mean: resnet101"):
        get_backbone_spec("timm:resnet1O1")
    with pytest.raises(BackboneError, match=r"unknown open_clip model 'RN10'.*Did you mean: .*RN101"):
        get_backbone_spec("open_clip:RN10")
    with pytest.raises(BackboneError, match=r"no installed plugin handles the prefix 'keras:'"):
        get_backbone_spec("keras:resnet")


def test_resnet101_stage_shapes_at_224(resnet101):
    with LayerTap(resnet101, None) as tap:
        logits = tap.run(torch.rand(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in tap.outputs.items()} == {
        "layer1": (256, 56, 56), "layer2": (512, 28, 28), "layer3": (1024, 14, 14), "layer4": (2048, 7, 7)}
    assert logits.shape == (1, 1000)
    assert not resnet101.training and spec_of(resnet101).name == "resnet101"


def test_clip_rn101_stage_shapes_at_224(clip):
    spec = spec_of(clip)
    assert spec.preprocessing.size == 224 and spec.preprocessing.mean == OPENAI_MEAN
    with LayerTap(clip, None) as tap:
        emb = tap.run(torch.rand(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in tap.outputs.items()} == {
        "layer1": (256, 56, 56), "layer2": (512, 28, 28), "layer3": (1024, 14, 14), "layer4": (2048, 7, 7),
        "attnpool": (512,)}
    assert emb.shape == (1, 512)


def test_timm_prefix_gives_any_timm_model():
    spec = get_backbone_spec("timm:resnet18")
    assert spec.name == "timm:resnet18" and spec.plugin == "timm"
    assert spec.layers == ("act1", "layer1", "layer2", "layer3", "layer4")
    model = brainalign.load_backbone("timm:resnet18", pretrained=False, device="cpu", num_classes=5)
    with LayerTap(model, ["layer4"]) as tap:
        out = tap.run(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5) and tap.outputs["layer4"].shape == (2, 512, 2, 2)
    vit = get_backbone_spec("timm:vit_tiny_patch16_224")
    assert vit.layers == ("blocks.0", "blocks.4", "blocks.7", "blocks.11")  # 4 of 12, evenly spaced
    assert vit.preprocessing.mean == (0.5, 0.5, 0.5)  # from timm's pretrained config


def test_open_clip_vit_tokens_are_batch_first():
    spec = get_backbone_spec("open_clip:ViT-S-32")
    assert spec.layers == ("transformer.resblocks.0", "transformer.resblocks.4", "transformer.resblocks.7",
                           "transformer.resblocks.11", "embedding")
    model = brainalign.load_backbone(spec, pretrained=False, device="cpu")
    with LayerTap(model, None) as tap:
        emb = tap.run(torch.rand(2, 3, 224, 224))
    assert tap.outputs["transformer.resblocks.4"].shape == (2, 50, 384)  # (N, 1 + 7*7 tokens, width)
    assert torch.equal(tap.outputs["embedding"], emb)
    with pytest.raises(BackboneError, match="no pretrained tag 'nope'"):
        get_backbone_spec("open_clip:ViT-S-32@nope")


@pytest.mark.parametrize("name,needle", [("resnet101", "timm/resnet101"), ("clip", "resnet101_clip.openai")])
def test_offline_pretrained_is_a_fast_clear_error(name, needle, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # fresh, empty caches
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(MissingWeightsError) as info:
        brainalign.load_backbone(name, pretrained=True, device="cpu")
    assert time.monotonic() - start < 20
    msg = str(info.value)
    assert needle in msg and str(tmp_path / "hf") in msg
    assert "--weights" in msg and "pretrained=False" in msg and "--no-pretrained" in msg


def test_weights_for_timm_and_open_clip_load_from_local_files(tmp_path):
    torch.manual_seed(0)
    vit = brainalign.load_backbone("open_clip:ViT-S-32", pretrained=False, device="cpu")
    path = tmp_path / "clip_full.pt"
    # a full CLIP state dict (image tower under 'visual.', plus text-tower keys) loads into the tower
    torch.save({"visual." + k: v for k, v in vit.state_dict().items()} | {"token_embedding.weight": torch.zeros(2)},
               path)
    torch.manual_seed(1)
    loaded = brainalign.load_backbone("open_clip:ViT-S-32", weights=path, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), vit.state_dict().values()))
    tiny = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    torch.save(tiny.state_dict(), tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match="missing key.*unexpected key.*V1.conv1.weight.*another backbone"):
        brainalign.load_backbone("timm:resnet18", weights=tmp_path / "tiny.pth", device="cpu")


def test_load_backbone_argument_errors(tmp_path):
    with pytest.raises(MissingWeightsError, match="weights file not found"):
        brainalign.load_backbone("cornet_tiny", weights=tmp_path / "nope.pth")
    with pytest.raises(ConfigError, match="does not take option.*colour.*num_classes"):
        brainalign.load_backbone("cornet_tiny", pretrained=False, colour=True)
    assert spec_of(nn.Linear(2, 2)) is None


def test_weight_file_formats(tmp_path):
    from safetensors.torch import save_file

    sd = nn.Linear(3, 2).state_dict()
    save_file(dict(sd), str(tmp_path / "w.safetensors"))
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded = load_state_dict_file(tmp_path / name)
        assert set(loaded) == {"weight", "bias"} and torch.equal(loaded["weight"], sd["weight"])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read weights file"):
        load_state_dict_file(tmp_path / "bad.pt")
    torch.save({"epoch": 3, "note": "no tensors"}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="contains no tensors"):
        load_state_dict_file(tmp_path / "empty.pt")
    with pytest.raises(MissingWeightsError, match="not found"):
        load_state_dict_file(tmp_path / "missing.pt")
    model = nn.Linear(3, 2)
    load_weights_into(model, tmp_path / "w.pt")
    assert torch.equal(model.weight, sd["weight"])


def test_duplicate_backbone_names_across_plugins_name_both():
    from brainalign import hookimpl
    from brainalign.models.spec import BackboneSpec
    from brainalign.plugin_manager import get_plugin_manager

    class Clash:
        @hookimpl
        def brainalign_backbones(self):
            return [BackboneSpec(name="my_net", factory=lambda **k: nn.Identity(), layers=("x",),
                                 aliases=("cornet_s",))]

    pm = get_plugin_manager()
    pm.register(Clash(), name="clashing_plugin")
    try:
        with pytest.raises(BackboneError, match=r"'cornet_s' is provided twice.*'cornet'.*'clashing_plugin'"):
            available_backbones()
    finally:
        pm.unregister(name="clashing_plugin")
    assert "my_net" not in available_backbones()


def test_cli_backbones(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    for needle in ("cornet", "cornet_s", "resnet101", "clip", "clip_rn101", "timm:<model>", "open_clip:<model>",
                   "V1, V2, V4, IT"):
        assert needle in out


def test_cli_layers_cornet_prints_the_tree_with_shapes(capsys):
    assert main(["layers", "cornet", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "(64, 56, 56)" in lines["V1"] and "*" in lines["V1"]
    assert "(128, 28, 28)" in lines["V2"] and "(256, 14, 14)" in lines["V4"] and "(512, 7, 7)" in lines["IT"]
    assert "(1000,)" in lines["decoder"] and "*" not in lines["decoder"]
    assert "x4 calls" in lines["V4.conv2"] and "V4.norm1_3" in lines


def test_cli_layers_errors(capsys):
    assert main(["layers", "cornett"]) == 2
    assert "Did you mean: cornet" in capsys.readouterr().err
    assert main(["layers", "cornet_tiny", "--size", "2"]) == 2


def test_timm_pretrained_comes_from_the_hf_cache_without_network(tmp_path, monkeypatch):
    """A weights file already in the Hugging Face cache is used as is (what an offline machine has)."""
    from safetensors.torch import save_file

    import timm

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    torch.manual_seed(5)
    reference = timm.create_model("test_resnet", pretrained=False)
    repo = tmp_path / "hf" / "hub" / "models--timm--test_resnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(snapshot / "model.safetensors"))
    model = brainalign.load_backbone("timm:test_resnet", pretrained=True, device="cpu")
    assert spec_of(model).preprocessing.size == 160
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), k
