"""DDP smoke test under torchrun: a tiny align() per process; every rank must end with the
same weights and history, and only rank 0 writes the run folder.

    torchrun --standalone --nproc_per_node=2 benchmarks/ddp_smoke.py OUT_DIR [--device cuda]
    python benchmarks/ddp_smoke.py OUT_DIR --check      # then: compare what the ranks wrote
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--check", action="store_true", help="compare the ranks' outputs in OUT_DIR")
    a = ap.parse_args()
    if a.check:
        return check(a.out)
    import brainalign

    rng = np.random.default_rng(0)
    images = rng.random((48, 3, 32, 32), dtype=np.float32)
    responses = rng.standard_normal((48, 20)).astype(np.float32)
    concepts = np.repeat([f"c{i}" for i in range(12)], 4)
    data = brainalign.data.NeuralDataset(images=images, responses=responses, concepts=concepts)
    model = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    res = brainalign.align(model, data=data, epochs=2, batch_size=8, lr=1e-3, seed=0, progress=False,
                           device=a.device, out_dir=a.out / "run")
    flat = torch.cat([v.float().flatten() for v in res.model.state_dict().values()]).to(res.config["device"])
    rank, world = int(os.environ.get("RANK", 0)), res.config["world_size"]
    torch.save({"weights": flat.cpu(), "history": [h["total"] for h in res.history], "world": world},
               a.out / f"rank{rank}.pt")
    print(f"rank {rank}/{world} on {res.config['device']}: done, val_spearman {res.history[-1]['val_spearman']:.4f}")


def check(out: Path) -> None:
    r = [torch.load(out / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    assert r[0]["world"] == 2, f"world size {r[0]['world']}, expected 2"
    assert torch.equal(r[0]["weights"], r[1]["weights"]), "ranks ended with different weights"
    assert r[0]["history"] == r[1]["history"], "ranks logged different losses"
    assert (out / "run" / "aligned.pt").is_file(), "rank 0 wrote no aligned.pt"
    print("DDP smoke: 2 ranks, identical weights and history, one run folder: OK")


if __name__ == "__main__":
    main()
