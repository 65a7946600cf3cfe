"""align() times its stages: logged when progress is on, and saved as stages.json in the run folder."""
import json

import numpy as np

import brainalign
from brainalign.data.dataset import NeuralDataset


def test_align_logs_and_saves_stage_times(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_PROGRESS", "lines")  # as in a Slurm log: plain lines, no bars
    rng = np.random.default_rng(0)
    ds = NeuralDataset(images=rng.random((8, 3, 32, 32), dtype=np.float32), responses=rng.standard_normal((8, 6)),
                       modality="eeg", subject=1, concepts=np.repeat(list("abcd"), 2))
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    brainalign.align(net, eeg=ds, epochs=1, batch_size=4, val_fraction=0, device="cpu", seed=0,
                     progress=True, out_dir=tmp_path / "run")
    out = capsys.readouterr()
    saved = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert list(saved) == ["setup", "teacher targets", "training", "saving"]
    assert all(v >= 0 for v in saved.values()) and saved["training"] > 0
    for name in saved:
        assert f"[time] {name}: " in out.out
    assert "align: done in " in out.out and "\r" not in out.err
    # one line per epoch in a log file: the trainer's summary, not also the batch loop's closing line
    assert out.out.count("epoch 1/1:") == 1 and "epoch 1/1:" not in out.err
