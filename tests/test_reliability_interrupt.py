"""Interruption: SIGKILL an alignment run mid-epoch and mid-checkpoint-write, resume, same result.

The runs happen in child processes (a real SIGKILL: no cleanup, no finally blocks). The
child's model reports each training forward to a file; at a chosen point it blocks, so the
parent kills it at a known place with no timing race: during epoch 2 (after epoch 1's
checkpoint exists). The resumed child then dies inside the write of epoch 2's checkpoint
(torch.save is wrapped to write half the bytes, then SIGKILL itself). A third child resumes
again; its weights, head, optimizer state and history must equal an uninterrupted run's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from brainalign.io import atomic_torch_save as atomic_save
from brainalign.alignment.checkpoint import (ALIGNED_FORMAT, CHECKPOINT_FORMAT, checked_load,
                                             load_aligned_file)
from brainalign.errors import CheckpointError

TESTS = Path(__file__).resolve().parent
EPOCHS = 3
BATCHES_PER_EPOCH = 4  # 28 training images (one of 8 concepts is validation) / batch_size 8

CHILD = r"""
import os, signal, sys, time
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from align_helpers import FAST, TinyNet, tiny_dataset
from brainalign.alignment import align
from brainalign.alignment import checkpoint as ckmod

out, resume, mode, progress_file = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
PAUSE_AT = {pause_at}


class ReportingNet(TinyNet):
    # numerically TinyNet; training forwards are counted in a file
    calls = 0

    def forward(self, x):
        if self.training:
            ReportingNet.calls += 1
            with open(progress_file, "w") as fh:
                fh.write(str(ReportingNet.calls))
            if mode == "pause_mid_epoch" and ReportingNet.calls == PAUSE_AT:
                time.sleep(120)  # the parent SIGKILLs us here
        return super().forward(x)


if mode == "kill_in_write":  # die half-way through writing this process's first training checkpoint
    real_save, writes = torch.save, []

    def dying_save(obj, f, *a, **k):
        name = getattr(f, "name", str(f))
        if ".checkpoint.pt." in str(name) and str(name).endswith(".tmp"):
            writes.append(name)
            if len(writes) == 1:
                import io
                buf = io.BytesIO()
                real_save(obj, buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *a, **k)

    ckmod.torch.save = dying_save

align(ReportingNet(), ["block1", "block2"], tiny_dataset(), **{{**FAST, "epochs": {epochs}}}, out_dir=out,
      resume=resume)
print("DONE")
""".format(tests=str(TESTS), epochs=EPOCHS, pause_at=BATCHES_PER_EPOCH + 2)


def _start(script: Path, out: Path, progress: Path, resume=False, mode="run") -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, str(script), str(out), "1" if resume else "0", mode, str(progress)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen, timeout=240) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0 and "DONE" in out, f"child failed ({proc.returncode}):\n{err[-3000:]}"


def _calls(progress: Path) -> int:
    try:
        return int(progress.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _result(run: Path):
    parts = load_aligned_file(run / "aligned.pt")
    model, head = parts.backbone, parts.heads["target"]
    history = [{k: v for k, v in row.items() if k != "time_s"} for row in json.loads((run / "history.json").read_text())]
    ck = checked_load(run / "checkpoint.pt", CHECKPOINT_FORMAT)
    return model, head, history, ck


def _assert_same(a: Path, b: Path) -> None:
    ma, ha, hista, cka = _result(a)
    mb, hb, histb, ckb = _result(b)
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma), "aligned weights differ"
    assert all(torch.equal(ha[k], hb[k]) for k in ha), "head weights differ"
    assert hista == histb and len(hista) == EPOCHS, (hista, histb)
    for part in ("model", "head", "optimizer", "best_model", "best_head"):
        assert cka["payload"][part].keys() == ckb["payload"][part].keys()
    assert cka["sha256"] != "" and cka["epoch"] == ckb["epoch"] == EPOCHS
    assert torch.equal(cka["payload"]["optimizer"]["state"][0]["exp_avg"], ckb["payload"]["optimizer"]["state"][0]["exp_avg"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted reference run (started in the background while the others are set up)."""
    root = tmp_path_factory.mktemp("interrupt")
    script = root / "child.py"
    script.write_text(CHILD)
    ref = _start(script, root / "reference", root / "ref.progress")
    return {"root": root, "script": script, "ref": ref}


def _reference(runs) -> Path:
    if runs["ref"].returncode is None:
        _finish(runs["ref"])
    return runs["root"] / "reference"


def test_sigkill_mid_epoch_and_mid_write_then_resume_equals_uninterrupted_run(runs):
    root, script = runs["root"], runs["script"]
    run, progress = root / "killed", root / "killed.progress"
    # 1) killed on the 2nd batch of epoch 2: epoch 1's checkpoint exists, epoch 2 is half done
    proc = _start(script, run, progress, mode="pause_mid_epoch")
    deadline = time.monotonic() + 240
    while _calls(progress) < BATCHES_PER_EPOCH + 2:
        assert proc.poll() is None, f"child ended early: {proc.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "child made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "aligned.pt").exists() and not (run / "history.json").exists()
    assert checked_load(run / "checkpoint.pt", CHECKPOINT_FORMAT)["epoch"] == 1  # intact after the kill

    # 2) resumed, then killed half-way through writing epoch 2's checkpoint
    proc = _start(script, run, root / "write.progress", resume=True, mode="kill_in_write")
    proc.communicate(timeout=240)
    assert proc.returncode == -signal.SIGKILL
    assert _calls(root / "write.progress") == BATCHES_PER_EPOCH  # it resumed at epoch 2
    leftovers = sorted(run.glob(".checkpoint.pt.*.tmp"))
    assert len(leftovers) == 1, "the kill should leave the half-written temp file behind"
    # the final path still holds epoch 1, complete and verified: the half file never replaced it
    assert checked_load(run / "checkpoint.pt", CHECKPOINT_FORMAT)["epoch"] == 1
    with pytest.raises(CheckpointError, match="corrupted"):
        checked_load(leftovers[0], CHECKPOINT_FORMAT)  # had it been renamed, it would be refused

    # 3) resumed again: trains only epochs 2-3, ignores the leftover, ends like the reference
    _finish(_start(script, run, root / "resumed.progress", resume=True))
    assert _calls(root / "resumed.progress") == (EPOCHS - 1) * BATCHES_PER_EPOCH
    _assert_same(_reference(runs), run)


def test_truncated_or_altered_file_at_the_final_path_is_refused(tmp_path):
    """What a non-atomic writer could leave: every prefix/bit-flip is detected, never loaded."""
    payload = {"w": torch.arange(2000, dtype=torch.float32)}
    from brainalign.alignment.checkpoint import payload_sha256

    path = tmp_path / "checkpoint.pt"
    atomic_save({"format": CHECKPOINT_FORMAT, "payload": payload, "sha256": payload_sha256(payload)}, path)
    assert checked_load(path, CHECKPOINT_FORMAT)["payload"]["w"].shape == (2000,)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file after success
    raw = path.read_bytes()
    for cut in (0, 10, len(raw) // 3, len(raw) // 2, len(raw) - 1):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="corrupted|not a"):
            checked_load(path, CHECKPOINT_FORMAT)
    # a flipped byte inside the tensor data: the container parses, the sha256 does not match
    data_at = raw.find(torch.arange(2000, dtype=torch.float32)[1000:1001].numpy().tobytes())
    assert data_at > 0
    bad = bytearray(raw)
    bad[data_at] ^= 0x01
    path.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="sha256"):
        checked_load(path, CHECKPOINT_FORMAT)


def test_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    from brainalign.alignment import checkpoint as ckmod

    path = tmp_path / "aligned.pt"
    atomic_save({"format": ALIGNED_FORMAT, "v": 1}, path)
    old = path.read_bytes()

    def disk_full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckmod.torch, "save", disk_full)
    with pytest.raises(OSError):
        atomic_save({"format": ALIGNED_FORMAT, "v": 2}, path)
    assert path.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["aligned.pt"]
