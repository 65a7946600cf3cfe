"""Teacher targets for the task loss, computed once per image and cached.

The teacher is the starting model in eval mode (BatchNorm running statistics, no
dropout). Its targets never change during training, so they are computed in one pass over
the training images before the first step (no augmentation) instead of running a frozen
copy every step as the reference did; no second copy of the model is kept in memory.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError
from ..taps import _first_tensor
from .tasks import TASK_LOSSES, get_task

def model_output(out) -> torch.Tensor:
    """The tensor a backbone returns (first tensor of a tuple/list/dict output)."""
    t = _first_tensor(out)
    if t is None:
        raise ConfigError(f"the model returned {type(out).__name__} without a tensor; align needs a "
                          "model whose forward returns logits or an embedding")
    return t


def resolve_task_loss(task_loss: str, spec, output: torch.Tensor | None) -> str:
    """'auto' -> 'cosine' for spec.output == 'embedding', 'ce' for 'logits'.

    Without a spec the output shape decides: a 2-D (b, C) output with C > 1 is treated as
    classifier logits ('ce'); anything else as an embedding ('cosine'). Pass
    ``task_loss='cosine'`` for a custom embedding model with 2-D outputs.
    """
    if task_loss not in TASK_LOSSES:
        raise ConfigError(f"unknown task_loss {task_loss!r}: use one of {', '.join(TASK_LOSSES)}")
    if task_loss != "auto":
        return task_loss
    if spec is not None:
        return "cosine" if spec.output == "embedding" else "ce"
    if output is not None and output.ndim == 2 and output.shape[1] > 1:
        return "ce"
    return "cosine"


@torch.no_grad()
def compute_teacher_targets(model: nn.Module, images, kind: str, *, preprocessing, device: torch.device,
                            batch_size: int = 64) -> torch.Tensor:
    """Targets of the starting model for every image, on the CPU.

    'ce' -> (n,) long predicted labels; 'kl' -> (n, C) float logits; 'cosine' -> (n, D)
    float embeddings; 'none' -> (n, 0). The model is put in eval mode for the pass and its
    mode restored afterwards (its weights and buffers are untouched).
    """
    n = len(images)
    task = get_task(kind)
    if not task.active:
        return torch.zeros(n, 0)
    was_training = model.training
    model.eval()
    outs = []
    try:
        for _, x in images.batches([range(s, min(n, s + batch_size)) for s in range(0, n, batch_size)], device):
            if preprocessing is not None:
                x = preprocessing(x)
            out = model_output(model(x)).float()
            outs.append(task.teacher_target(out).cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)


def cached_teacher_targets(cache: Path | None, key: str, compute) -> torch.Tensor:
    """Load the targets stored under ``key`` in the checked cache file ``cache`` (.npz), or
    compute and store them.

    An entry with another key (other data, weights or settings), or one that is unreadable
    or fails its sha256, is recomputed and replaced (see :mod:`brainalign.io`).
    """
    from ..io import load_arrays, save_arrays

    if cache is not None:
        stored = load_arrays(cache, key)
        if stored is not None and "targets" in stored:
            return torch.from_numpy(stored["targets"])
    targets = compute()
    if cache is not None:
        save_arrays(cache, {"targets": targets.numpy()}, key)
    return targets
