"""`brainalign align`: grid of runs, one folder each, complete runs skipped, errors as exit 2."""
import json

import numpy as np
import pytest

import brainalign.data.registry as data_registry
from brainalign.alignment import grid
from brainalign.alignment import load_aligned
from brainalign.cli import main
from brainalign.cli.align import run_name
from brainalign.data.subjects import parse_numbers, parse_subjects
from brainalign.data.dataset import NeuralDataset


@pytest.fixture
def tiny_source(monkeypatch):
    calls = []

    def fake(source, subject=1, split="test", **kw):
        calls.append((source, subject, split))
        rng = np.random.default_rng(subject)
        return NeuralDataset(images=rng.random((16, 3, 32, 32), dtype=np.float32),
                             responses=rng.standard_normal((16, 3, 4)), modality="eeg", subject=subject,
                             concepts=np.repeat(list("abcdefgh"), 2))

    monkeypatch.setattr(data_registry, "load_eeg_source", fake)
    monkeypatch.setattr(grid, "_CACHE", {})  # no dataset kept from another test's grid
    return calls


def test_grid_writes_one_folder_per_run_and_skips_complete(tmp_path, tiny_source, capsys):
    argv = ["align", "cornet_tiny", "--no-pretrained", "--subjects", "1-2", "--beta", "1,10", "--epochs", "1",
            "--batch-size", "4", "--lr", "1e-3", "--head-pooling", "avg", "--device", "cpu", "--no-progress",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert names == ["sub-01_beta-1", "sub-01_beta-10", "sub-02_beta-1", "sub-02_beta-10"]
    assert {c[2] for c in tiny_source} == {"training"} and tiny_source[0][0] == "synthetic"
    run = tmp_path / "sub-02_beta-10"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["settings"]["beta"] == 10 and cfg["data"]["subject"] == "2"
    assert len(json.loads((run / "history.json").read_text())) == 1
    assert load_aligned(run).config["spec_name"] == "cornet_tiny"
    capsys.readouterr()
    assert main(argv) == 0  # everything complete: nothing reloaded, nothing retrained
    assert capsys.readouterr().out.count("skipped") == 4 and len(tiny_source) == 2


def test_controls_and_safetensors(tmp_path, tiny_source):
    assert main(["align", "cornet_tiny", "--no-pretrained", "--no-contrastive", "--unpaired", "--epochs", "1",
                 "--head-pooling", "avg", "--device", "cpu", "--no-progress", "--format", "safetensors",
                 "--out", str(tmp_path)]) == 0
    run = tmp_path / "sub-01_beta-100_nocont_unpaired"
    assert (run / "aligned.safetensors").is_file() and not (run / "aligned.pt").exists()
    assert load_aligned(run).config["settings"]["unpaired"] is True


def test_bad_arguments_exit_2(tmp_path, tiny_source, capsys):
    assert main(["align", "cornet_tiny", "--subjects", "one", "--out", str(tmp_path)]) == 2
    assert "subjects" in capsys.readouterr().err
    assert main(["align", "cornet_tiny", "--no-pretrained", "--layers", "V5", "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path)]) == 2
    assert "V5" in capsys.readouterr().err
    assert main(["align", "no_such_net", "--out", str(tmp_path)]) == 2


def test_parsing_helpers():
    assert parse_subjects("1-3,7") == [1, 2, 3, 7]
    assert parse_numbers("1,10,100") == [1.0, 10.0, 100.0]
    assert run_name(3, 100.0, True, False) == "sub-03_beta-100"
    assert run_name(1, 0.5, False, True) == "sub-01_beta-0.5_nocont_unpaired"


def test_eeg_and_fmri_together_are_one_joint_run_per_subject(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(source, subject=1, split="test", *, modality=None, **kw):
        calls.append((source, modality, kw))
        rng = np.random.default_rng(subject)
        images = rng.random((16, 3, 32, 32), dtype=np.float32)
        shape = (16, 3, 4) if modality == "eeg" else (16, 10)
        return NeuralDataset(images=images, responses=np.random.default_rng(len(calls)).standard_normal(shape),
                             modality=modality, subject=subject, concepts=np.repeat(list("abcdefgh"), 2))

    monkeypatch.setattr(data_registry, "load_source", fake)
    argv = ["align", "cornet_tiny", "--no-pretrained", "--eeg", "synthetic", "--fmri", "shen:X", "--fmri-images",
            "imgs", "--target-weights", "fmri=0.5", "--epochs", "1", "--batch-size", "4", "--head-pooling", "avg",
            "--device", "cpu", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert calls == [("synthetic", "eeg", {}), ("shen:X", "fmri", {"images": "imgs"})]
    aligned = load_aligned(tmp_path / "sub-01_beta-100")
    assert list(aligned.heads) == ["eeg", "fmri"] and aligned.heads["fmri"].n_targets == 10
    assert aligned.config["settings"]["target_weights"] == {"fmri": 0.5}
    assert "fmri/mse" in aligned.history[0]
    capsys.readouterr()
    assert main(argv) == 0 and "skipped" in capsys.readouterr().out  # same settings: complete, skipped
    assert main([*argv[:-2], "--target-weights", "fmri=2", "--out", str(tmp_path)]) == 2
    assert "target_weights" in capsys.readouterr().err
    assert main(["align", "cornet_tiny", "--target-weights", "eeg=1", "--out", str(tmp_path / "x")]) == 2
    assert "give both --eeg and --fmri" in capsys.readouterr().err


def test_training_options_come_from_align_config_and_are_checked_before_any_run(tmp_path, tiny_source, capsys):
    from brainalign.alignment.config import AlignConfig
    from brainalign.cli import build_parser

    args = build_parser().parse_args(["align", "cornet_tiny"])
    cfg = AlignConfig()
    assert (args.epochs, args.batch_size, args.lr, args.seed, args.val_fraction, args.head_pooling, args.objective) == \
        (cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed, cfg.val_fraction, cfg.head_pooling, cfg.objective)
    for bad, word in ((["--lr", "-1"], "lr"), (["--val-fraction", "1.5"], "val_fraction"),
                      (["--objective", "rsaa"], "rsa")):
        assert main(["align", "cornet_tiny", "--no-pretrained", *bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1
    assert tiny_source == [] and not (tmp_path / "x").exists()  # nothing loaded, nothing written
