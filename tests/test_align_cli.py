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


def _weights(run):
    import torch

    from brainalign.alignment.checkpoint import load_aligned_file

    parts = load_aligned_file(run / "aligned.pt")
    return {**{f"b.{k}": v for k, v in parts.backbone.items()},
            **{f"h.{n}.{k}": v for n, h in parts.heads.items() for k, v in h.items()}}, torch


def test_no_pretrained_run_interrupted_after_epoch_1_resumes_with_the_same_command(tmp_path, tiny_source, capsys,
                                                                                     monkeypatch):
    """Issue 13 class 3: the random starting weights are seeded, so the same command resumes (not 'written by
    a run ...') and ends with the weights of an uninterrupted run, even when the process's RNG differs."""
    import torch

    from brainalign.alignment import trainer

    argv = ["align", "cornet_tiny", "--no-pretrained", "--epochs", "2", "--batch-size", "4", "--head-pooling", "avg",
            "--device", "cpu", "--no-progress", "--no-image-cache", "--seed", "7", "--out"]
    assert main([*argv, str(tmp_path / "reference")]) == 0
    real_save = trainer.save_checkpoint

    def interrupted_after_epoch_1(*a, **k):
        real_save(*a, **k)
        raise KeyboardInterrupt  # Ctrl-C (or a kill) right after epoch 1's checkpoint

    monkeypatch.setattr(trainer, "save_checkpoint", interrupted_after_epoch_1)
    monkeypatch.setattr(grid, "_CACHE", {})  # a new invocation builds the backbone again...
    torch.manual_seed(12345)  # ...from another global RNG state
    assert main([*argv, str(tmp_path / "killed")]) == 130
    assert "the same command resumes" in capsys.readouterr().err
    run = tmp_path / "killed" / "sub-01_beta-100"
    assert (run / "checkpoint.pt").is_file() and not (run / "aligned.pt").exists()
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    monkeypatch.setattr(grid, "_CACHE", {})
    torch.manual_seed(999)
    capsys.readouterr()
    assert main([*argv, str(tmp_path / "killed")]) == 0
    assert "resumed" in capsys.readouterr().out
    (a, torch), (b, _) = _weights(tmp_path / "reference" / "sub-01_beta-100"), _weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]


def test_align_trains_on_shen_fmri_from_the_command_line(tmp_path, capsys):
    """`align --fmri shen:PATH --fmri-images DIR` (Shen's release has no images): one fMRI run."""
    pytest.importorskip("bdpy")
    from brainalign.data.synthetic import SyntheticBrain

    root = tmp_path / "shen"
    SyntheticBrain(n_train_concepts=4, n_test_concepts=2, train_images_per_concept=3, test_images_per_concept=1,
                   image_size=16, n_subjects=1).write_shen(root, images_dir=tmp_path / "stimuli")
    out = tmp_path / "runs"
    assert main(["align", "cornet_tiny", "--no-pretrained", "--fmri", f"shen:{root}", "--fmri-images",
                 str(tmp_path / "stimuli"), "--epochs", "1", "--batch-size", "4", "--head-pooling", "avg",
                 "--device", "cpu", "--no-progress", "--no-image-cache", "--out", str(out)]) == 0
    cfg = json.loads((out / "sub-01_beta-100" / "config.json").read_text())
    assert cfg["data"]["modality"] == "fmri" and cfg["data"]["meta"]["source"] == "shen-fmri"
    assert cfg["data"]["n_images"] == 12 and "Training" in cfg["data"]["meta"]["file"]
    assert load_aligned(out / "sub-01_beta-100").config["spec_name"] == "cornet_tiny"
    capsys.readouterr()
    assert main(["align", "cornet_tiny", "--no-pretrained", "--fmri", f"shen:{root}", "--epochs", "1",
                 "--out", str(tmp_path / "no_images")]) == 2  # the images are needed: one line, nothing left
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not (tmp_path / "no_images").exists()
