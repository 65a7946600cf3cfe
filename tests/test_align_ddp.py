"""align() under torchrun with 2 CPU processes (gloo): finishes, rank 0 alone writes, weights match."""
import os
import subprocess
import sys
from pathlib import Path

import torch


def test_two_process_ddp(tmp_path):
    script = Path(__file__).with_name("align_ddp_script.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world_size"] == 2
    for part in ("model", "head"):
        assert all(torch.equal(r0[part][k], r1[part][k]) for k in r0[part])
    assert r0["history"] == r1["history"]  # epoch means are all-reduced
    # two epochs -> 2 checkpoints + 2 teacher caches, all from rank 0; rank 1 writes nothing
    assert r1["n_saves"] == 0 and r0["n_saves"] >= 2
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "aligned.pt").is_file()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
