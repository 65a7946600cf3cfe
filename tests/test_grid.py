"""run_grid: one folder per run, skip complete, resume interrupted, refuse other settings, locks, executors."""
import json
import os
import subprocess
import sys

import pytest

import brainalign.alignment.trainer as trainer
from brainalign.alignment import Submitit, run_grid
from brainalign.alignment.checkpoint import state_sha256
from brainalign.alignment.grid import execute_run, load_start_model
from brainalign.cli import main
from brainalign.errors import ConfigError, RunLockedError

from align_helpers import TinyNet, tiny_dataset

DATA = {1: tiny_dataset(seed=1), 2: tiny_dataset(seed=2)}
OPTS = dict(layers=["block1", "block2"], epochs=1, batch_size=8, lr=1e-3, device="cpu", progress=False, seed=1, log=lambda *a: None)


def _files(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_grid_skips_complete_runs_and_refuses_other_settings(tmp_path):
    res = run_grid(TinyNet(), [1, 2], [10], out=tmp_path, source=DATA, **OPTS)
    assert [r["name"] for r in res.rows] == ["sub-01_beta-10", "sub-02_beta-10"]
    assert {r["status"] for r in res.rows} == {"trained"} and all(r["best_epoch"] == 1 for r in res.rows)
    summary = json.loads((tmp_path / "runs.json").read_text())
    assert summary["subjects"] == [1, 2] and len(summary["runs"]) == 2
    assert (tmp_path / "runs.tsv").read_text().splitlines()[0].startswith("subject\tbeta\tcontrol")
    again = run_grid(TinyNet(), [1, 2], [10], out=tmp_path, source=DATA, **OPTS)
    assert {r["status"] for r in again.rows} == {"skipped"}
    assert again.rows[0]["val_spearman"] == res.rows[0]["val_spearman"]
    before = _files(tmp_path)
    with pytest.raises(ConfigError, match=r"other settings \(lr"):
        run_grid(TinyNet(), [1, 2], [10], out=tmp_path, source=DATA, **{**OPTS, "lr": 1e-2})
    assert _files(tmp_path) == before  # nothing changed


def test_interrupted_run_resumes_like_an_uninterrupted_one(tmp_path, monkeypatch):
    opts = {**OPTS, "epochs": 2}
    ref = run_grid(TinyNet(), [1], [10], out=tmp_path / "ref", source=DATA, **opts).rows[0]
    real = trainer.save_checkpoint

    def killed_after_first(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt  # the process dies after epoch 1's checkpoint

    monkeypatch.setattr(trainer, "save_checkpoint", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        run_grid(TinyNet(), [1], [10], out=tmp_path / "cut", source=DATA, **opts)
    monkeypatch.setattr(trainer, "save_checkpoint", real)
    row = run_grid(TinyNet(), [1], [10], out=tmp_path / "cut", source=DATA, **opts).rows[0]
    assert row["status"] == "resumed" and row["epochs"] == 2
    assert row["val_spearman"] == pytest.approx(ref["val_spearman"], abs=1e-6)


def test_random_initialisation_is_seeded_so_no_pretrained_runs_resume():
    a = load_start_model("cornet_tiny", pretrained=False, seed=3)
    b = load_start_model("cornet_tiny", pretrained=False, seed=3)
    c = load_start_model("cornet_tiny", pretrained=False, seed=4)
    assert state_sha256(a) == state_sha256(b) != state_sha256(c)


def test_submitit_debug_executor_and_requeue(tmp_path):
    ex = Submitit(cluster="debug", folder=tmp_path / "logs")
    res = run_grid(TinyNet(), [1], [1, 10], out=tmp_path / "grid", source=DATA, executor=ex, **OPTS)
    assert [r["status"] for r in res.rows] == ["trained", "trained"]
    # preemption: the job's checkpoint() requeues the same call, which finds the run complete (or resumes it)
    job_fn = ex.jobs[0].submission().function
    again = job_fn.checkpoint(*ex.jobs[0].submission().args)
    assert again.function is job_fn and execute_run(*again.args)["status"] == "skipped"


def test_second_grid_into_a_locked_folder_is_refused_and_stale_lock_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = tmp_path / ".brainalign.lock"
        import socket
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now",
                                    "command": "brainalign align"}))
        before = _files(tmp_path)
        assert main(["align", "cornet_tiny", "--no-pretrained", "--epochs", "1", "--device", "cpu",
                     "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path) in err and str(holder.pid) in err and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err and _files(tmp_path) == before
        with pytest.raises(RunLockedError):
            run_grid(TinyNet(), [1], [10], out=tmp_path, source=DATA, **OPTS)
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock is stale and taken over
    assert run_grid(TinyNet(), [1], [10], out=tmp_path, source=DATA, **OPTS).rows[0]["status"] == "trained"
    assert not (tmp_path / ".brainalign.lock").exists()


def test_cli_refuses_a_folder_with_a_run_of_another_backbone(tmp_path, capsys):
    run = tmp_path / "sub-01_beta-100"
    run.mkdir(parents=True)
    (run / "aligned.pt").write_bytes(b"x")
    (run / "history.json").write_text("[]")
    (run / "config.json").write_text(json.dumps({"spec_name": "resnet101", "settings": {"beta": 100.0}}))
    before = _files(tmp_path)
    assert main(["align", "cornet_tiny", "--no-pretrained", "--epochs", "1", "--device", "cpu",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "resnet101" in err and len(err.strip().splitlines()) == 1
    assert {p: t for p, t in _files(tmp_path).items() if p.name != ".brainalign.lock"} == before


def test_jobs_beyond_cores_is_a_clear_error(tmp_path, capsys):
    n = len(os.sched_getaffinity(0))
    assert main(["align", "cornet_tiny", "--no-pretrained", "--jobs", str(n + 1), "--device", "cpu",
                 "--out", str(tmp_path)]) == 2
    assert "--jobs" in capsys.readouterr().err


@pytest.mark.slow  # spawns 3 Python processes (41 s CPU time at load 10 on 2 cores)
def test_local_processes_and_submitit_local_executor(tmp_path):
    """--jobs 2 (two spawned processes) on a 2x1 grid, then submitit's LocalExecutor adds a beta and skips the rest."""
    from brainalign.alignment import LocalParallel

    kw = dict(out=tmp_path, source="synthetic", pretrained=False, epochs=1, batch_size=4, head_pooling="avg",
              device="cpu", progress=False, val_fraction=0.25, log=lambda *a: None,
              source_options=dict(n_train_concepts=4, train_images_per_concept=4, n_test_concepts=2,
                                  test_images_per_concept=2, n_subjects=2, image_size=32))
    res = run_grid("cornet_tiny", [1, 2], [10], executor=LocalParallel(2, device="cpu"), **kw)
    assert [r["status"] for r in res.rows] == ["trained", "trained"]
    res = run_grid("cornet_tiny", [1], [10, 100], executor=Submitit(cluster="local", timeout_min=10), **kw)
    assert [r["status"] for r in res.rows] == ["skipped", "trained"]
    assert (tmp_path / "slurm-logs").is_dir() and (tmp_path / "sub-01_beta-100" / "aligned.pt").is_file()


def test_each_local_worker_keeps_one_device_slot(monkeypatch):
    """LocalParallel gives each worker process one slot (a GPU, or a CPU share) for its life: runs finishing
    out of order never put two runs on one GPU while another idles."""
    import queue

    import torch

    from brainalign.alignment import LocalParallel, executors
    from brainalign.alignment.grid import RunTask

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    slots = LocalParallel(3)._plan()
    assert [s["device"] for s in slots] == ["cuda:0", "cuda:1", "cuda:0"]
    q = queue.Queue()
    q.put(slots[1])
    executors._take_slot(q)  # what a worker does once, at start
    task = RunTask("r", "/tmp/r", 1, 10.0, True, False, "cornet_tiny", align_options={"epochs": 1})
    seen = [executors._run_in_slot(lambda t: t.align_options, task) for _ in range(2)]
    assert seen == [{"epochs": 1, "device": "cuda:1"}] * 2 and task.align_options == {"epochs": 1}
