"""AlignedModel: one nn.Module, old files, hub-style folders (save_pretrained / load_aligned /
hf-hub: / `brainalign export`) and their bad inputs. Offline: hf-hub is a mocked local folder."""
import hashlib
import json
import sys
import warnings

import pytest
import torch

import brainalign
from brainalign.alignment import AlignedModel, align, load_aligned
from brainalign.alignment import hub
from brainalign.alignment.checkpoint import payload_sha256
from brainalign.cli import main
from brainalign.errors import CheckpointError, ConfigError, OutputExistsError

from align_helpers import FAST, TinyNet, tiny_dataset

LAYERS = ["block1", "block2"]


def _sd(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("aligned") / "run"
    return align(TinyNet(), LAYERS, tiny_dataset(), **{**FAST, "epochs": 1}, out_dir=run)


def test_one_module_covers_backbone_and_head(trained):
    keys = trained.state_dict().keys()
    assert any(k.startswith("backbone.") for k in keys) and any(k.startswith("heads.target.") for k in keys)
    copy = AlignedModel(TinyNet(seed=7), type(trained.head).from_config(trained.head.config()),
                        config=trained.config)
    copy.load_state_dict(trained.state_dict())
    assert _equal(_sd(copy), _sd(trained))
    copy.to(torch.float64)  # .to() moves the head with the backbone
    assert next(copy.head.parameters()).dtype == torch.float64
    assert brainalign.models.registry.spec_of(copy) is None  # a custom backbone has no spec
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert brainalign.AlignResult is AlignedModel  # deprecated alias
        assert trained.brainalign_head is trained.head
    assert sum(issubclass(x.category, DeprecationWarning) for x in w) >= 2


def _write_format1(path, aligned):
    """A file exactly as brainalign 0.1.0 wrote it (format 1: one head, config only)."""
    model = {k: v.detach().clone() for k, v in aligned.backbone.state_dict().items()}
    head = {k: v.detach().clone() for k, v in aligned.head.state_dict().items()}
    payload = {"model": model, "head": head}
    config_json = json.dumps({**aligned.config, "head": aligned.head.config()})
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        flat = {f"model.{k}": v for k, v in model.items()} | {f"head.{k}": v for k, v in head.items()}
        save_file(flat, str(path), metadata={"format": "brainalign-aligned/1", "config": config_json,
                                             "sha256": payload_sha256(payload),
                                             "meta_sha256": hashlib.sha256(config_json.encode()).hexdigest()})
        return
    obj = {"format": "brainalign-aligned/1", "config_json": config_json, "payload": payload,
           "sha256": payload_sha256(payload)}
    meta = {k: v for k, v in obj.items() if k not in ("payload", "sha256")}
    obj["meta_sha256"] = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()
    torch.save(obj, path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_files_of_the_previous_format_still_load(trained, tmp_path, suffix):
    path = tmp_path / f"old{suffix}"
    _write_format1(path, trained)
    loaded = load_aligned(path, model=TinyNet(seed=3))
    assert _equal(_sd(loaded), _sd(trained)) and loaded.layers == LAYERS
    x = tiny_dataset().images.load([0, 1])
    assert torch.allclose(loaded.predict(x), trained.predict(x))


def test_save_pretrained_round_trip_config_and_card(trained, tmp_path):
    out = trained.save_pretrained(tmp_path / "tiny-realnet")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    cfg = json.loads((out / "config.json").read_text())
    best = trained.best_epoch
    assert cfg["layers"] == LAYERS and cfg["objective"] == "realnet" and cfg["beta"] == trained.config["settings"]["beta"]
    assert cfg["val_spearman"] == pytest.approx(trained.history[best - 1]["val_spearman"])
    assert len(cfg["history"]) == len(trained.history) and cfg["brainalign_version"] == brainalign.__version__
    assert "subject" in cfg and cfg["provenance"]["created"] and cfg["backbone"] == trained.config["backbone"]
    card = (out / "README.md").read_text()
    assert "library_name: brainalign" in card and "load_aligned" in card and "Validation Spearman" in card
    loaded = load_aligned(out, model=TinyNet(seed=4))
    assert _equal(_sd(loaded), _sd(trained)) and loaded.history == trained.history
    # an existing non-empty folder is refused (untouched) unless overwrite=True
    before = (out / "config.json").read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        trained.save_pretrained(out)
    assert (out / "config.json").read_bytes() == before
    trained.save_pretrained(out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_save_pretrained_is_all_or_nothing_and_falls_back_to_torch(trained, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hub, "write_json", boom)
    with pytest.raises(OSError):
        trained.save_pretrained(tmp_path / "half")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temporary one
    monkeypatch.undo()
    monkeypatch.setattr(hub, "safetensors_available", lambda: False)
    out = trained.save_pretrained(tmp_path / "torch-format")
    assert (out / "model.pt").is_file() and json.loads((out / "config.json").read_text())["weights"] == "model.pt"
    assert _equal(_sd(load_aligned(out, model=TinyNet())), _sd(trained))


def test_corrupted_or_mismatched_folders_are_refused(trained, tmp_path):
    good = trained.save_pretrained(tmp_path / "good")

    def variant(name, edit):
        d = trained.save_pretrained(tmp_path / name)
        edit(d)
        return d

    truncated = variant("truncated", lambda d: (d / "model.safetensors").write_bytes(
        (good / "model.safetensors").read_bytes()[:-200]))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_aligned(truncated, model=TinyNet())
    garbage = variant("garbage", lambda d: (d / "config.json").write_text("{not json"))
    with pytest.raises(CheckpointError, match=r"config\.json is corrupted"):
        load_aligned(garbage, model=TinyNet())

    def other_backbone(d):
        cfg = json.loads((d / "config.json").read_text())
        cfg["backbone"] = "cornet"
        (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not describe.*backbone"):
        load_aligned(variant("other", other_backbone), model=TinyNet())
    with pytest.raises(CheckpointError, match="no config.json"):
        load_aligned(variant("no-config", lambda d: (d / "config.json").unlink()), model=TinyNet())
    with pytest.raises(CheckpointError, match="holds no aligned model"):
        load_aligned(tmp_path / "truncated" / "..", model=TinyNet())


def test_hf_hub_through_snapshot_download(trained, tmp_path, monkeypatch):
    import huggingface_hub

    folder = trained.save_pretrained(tmp_path / "hubcopy")
    calls = []

    def fake_download(repo_id, revision=None, **kw):
        calls.append((repo_id, revision))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    loaded = load_aligned("hf-hub:someone/tiny-realnet@v1", model=TinyNet())
    assert calls == [("someone/tiny-realnet", "v1")] and _equal(_sd(loaded), _sd(trained))
    with pytest.raises(ConfigError, match="OWNER/NAME"):
        load_aligned("hf-hub:no-owner")


def test_hf_hub_offline_and_missing_package(monkeypatch):
    # HF_HUB_OFFLINE=1 (conftest): a repository that is not cached fails without any socket
    with pytest.raises(CheckpointError, match="connect to the internet|hf download"):
        load_aligned("hf-hub:brainalign-tests/not-cached-anywhere")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match=r"pip install brainalign\[hub\]"):
        load_aligned("hf-hub:owner/name")


def test_cli_export(trained, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(trained.out_dir), str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    assert _equal(_sd(load_aligned(out, model=TinyNet())), _sd(trained))
    # an exported folder is a MODEL for compare (the folder itself is what gets loaded)
    from brainalign.evaluate.model_sources import find_aligned_file

    assert find_aligned_file(str(out)) == out
    before = sorted(p.name for p in out.iterdir())
    for argv, pattern in [(["export", str(trained.out_dir), str(out)], "not empty"),
                          (["export", str(tmp_path / "missing"), str(tmp_path / "x")], "does not exist"),
                          (["export", str(tmp_path), str(tmp_path / "y")], "holds no aligned model"),
                          (["export", str(trained.out_dir.parent), str(tmp_path / "z")], "give one of them")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err and pattern in err, err
    assert sorted(p.name for p in out.iterdir()) == before
    assert not any((tmp_path / n).exists() for n in "xyz")
    assert main(["export", str(trained.out_dir), str(out), "--overwrite"]) == 0


def test_exported_registered_backbone_is_a_compare_model(tmp_path):
    import numpy as np

    from brainalign.data.dataset import NeuralDataset
    from brainalign.evaluate.model_sources import resolve_model

    rng = np.random.default_rng(0)
    ds = NeuralDataset(images=rng.random((16, 3, 32, 32), dtype=np.float32), responses=rng.standard_normal((16, 6)),
                       concepts=np.repeat(list("abcd"), 4))
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    res = align(net, ["V1", "IT"], ds, **{**FAST, "epochs": 1}, head_pooling="adaptive2")
    folder = res.save_pretrained(tmp_path / "tiny-hub")
    src = resolve_model(str(folder))
    assert src.origin == "aligned" and src.label == "tiny-hub" and src.spec.name == "cornet_tiny"
    assert _equal(_sd(src.model), _sd(res.backbone)) and src.config["layers"] == ["V1", "IT"]
