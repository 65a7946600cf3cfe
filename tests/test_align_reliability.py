"""align reliability: frozen models are trained as asked, fMRI grids (issue 13 classes 2-4; see also test_grid.py)."""
import torch

from brainalign.alignment import align, run_grid
from brainalign.alignment.checkpoint import state_sha256

from align_helpers import TinyNet, tiny_dataset

FAST = dict(layers=["block1", "block2"], epochs=1, batch_size=8, lr=1e-2, device="cpu", progress=False, seed=1)


def test_frozen_model_in_eval_mode_is_trained_as_asked(capsys):
    model = TinyNet().eval().requires_grad_(False)
    start = state_sha256(model)
    res = align(model, eeg=tiny_dataset(), **FAST)
    assert state_sha256(res.model if hasattr(res, "model") else res) != start  # the backbone moved
    cap = capsys.readouterr()
    assert "train_backbone" in cap.out + cap.err
    assert state_sha256(model) == start and not any(p.requires_grad for p in model.parameters())  # caller's copy


def test_head_only_keeps_the_backbone(capsys):
    model = TinyNet()
    start = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    res = align(model, eeg=tiny_dataset(), train_backbone=False, **FAST)
    trained = (res.model if hasattr(res, "model") else res).state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in start.items())


def test_grid_trains_on_fmri(tmp_path):
    ds = tiny_dataset(seed=3)
    res = run_grid(TinyNet(), [1], [10], out=tmp_path, source={1: ds}, modality="fmri", log=lambda *a: None, **FAST)
    assert res.rows[0]["status"] == "trained"
    import json
    cfg = json.loads((tmp_path / "sub-01_beta-10" / "config.json").read_text())
    assert json.loads((tmp_path / "runs.json").read_text())["data"]["modality"] == "fmri"
    assert cfg["data"]["modality"] in ("fmri", "other", None)


def test_api_align_into_a_folder_held_by_another_process_is_refused(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    import pytest

    from brainalign.errors import RunLockedError

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".brainalign.lock").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        with pytest.raises(RunLockedError, match=str(holder.pid)):
            align(TinyNet(), eeg=tiny_dataset(), out_dir=tmp_path, **FAST)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".brainalign.lock"]
    finally:
        holder.kill()
        holder.wait()
    align(TinyNet(), eeg=tiny_dataset(), out_dir=tmp_path, **FAST)  # stale lock taken over, then released
    assert (tmp_path / "aligned.pt").is_file() and not (tmp_path / ".brainalign.lock").exists()
