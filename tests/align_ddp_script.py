"""Run by tests/test_align_ddp.py under torchrun: one tiny align() per process."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from align_helpers import TinyNet, tiny_dataset  # noqa: E402

import brainalign.alignment.checkpoint as ckpt  # noqa: E402
from brainalign.alignment import align  # noqa: E402

out = Path(sys.argv[1])
saves = []
_orig = ckpt.atomic_torch_save
ckpt.atomic_torch_save = lambda obj, path, *a: (saves.append(str(path)), _orig(obj, path, *a))[1]

res = align(TinyNet(), ["block1", "block2"], tiny_dataset(), epochs=2, batch_size=4, lr=1e-3, seed=3,
            progress=False, device="cpu", out_dir=out / "run")
rank = int(__import__("os").environ["RANK"])
torch.save({"model": res.model.state_dict(), "head": res.head.state_dict(), "n_saves": len(saves),
            "world_size": res.config["world_size"], "history": [r["total"] for r in res.history]},
           out / f"rank{rank}.pt")
