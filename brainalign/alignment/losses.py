"""Losses of the alignment objective: L = L_task + beta * (MSE + L_cont).

* Soft ranks: ``soft_rank`` replaces the step function of ranking by a sigmoid, so the
  Spearman correlation becomes differentiable (the published ReAlnet code built its
  contrastive term from Python floats and therefore never trained with it).
* ``spearman_matrix``: all (b, b) correlations between two batches of vectors in one shot.
* ``contrastive_loss``: mean_i[1 - rho(S_i, S^_i)] - mean_{i!=j}[1 - rho(S_i, S^_j)].
* Task losses keep the starting model's behaviour by distillation from cached teacher
  targets: 'ce' (teacher's predicted labels), 'kl' (soft targets), 'cosine' (embeddings).
"""
from __future__ import annotations

import torch

from ..errors import ConfigError, DataError
from .tasks import TASK_LOSSES  # noqa: F401  (kept importable from here)

DEFAULT_RANK_TEMPERATURE = 0.1


def _sigmoid_rank_sum(z: torch.Tensor, zc: torch.Tensor, temperature: float) -> torch.Tensor:
    """sum_j sigmoid((z_i - zc_j) / temperature) over the columns zc: (b, d), (b, c) -> (b, d)."""
    return torch.sigmoid((z.unsqueeze(-1) - zc.unsqueeze(-2)) / temperature).sum(-1)


def soft_rank(x: torch.Tensor, temperature: float = DEFAULT_RANK_TEMPERATURE,
              max_elements: int = 2**25) -> torch.Tensor:
    """Differentiable ranks along the last dimension (1-based, like exact ranks).

    rank_i = 1 + sum_{j != i} sigmoid((z_i - z_j) / temperature), where z is x standardised
    per row, so ``temperature`` is in units of the row's standard deviation and the result
    does not depend on the scale of x. As temperature -> 0 this tends to the exact rank.
    The pairwise (b, d, d) term is fine for EEG (d = 340) and ROI-sized fMRI; above
    ``max_elements`` it is computed in column chunks recomputed in the backward pass
    (activation checkpointing), so memory stays O(max_elements) for many voxels.

    x: (b, d) -> (b, d).
    """
    if temperature <= 0:
        raise ConfigError(f"rank_temperature must be > 0, got {temperature}")
    z = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-8)
    b, d = z.shape
    # the diagonal contributes sigmoid(0) = 0.5 per row; +0.5 makes ranks start at 1
    if b * d * d <= max_elements:
        return _sigmoid_rank_sum(z, z, temperature) + 0.5
    from torch.utils.checkpoint import checkpoint

    step = max(1, max_elements // (b * d))
    total = sum(checkpoint(_sigmoid_rank_sum, z, z[:, s:s + step], temperature, use_reentrant=False)
                for s in range(0, d, step))
    return total + 0.5


def exact_rank(x: torch.Tensor) -> torch.Tensor:
    """Exact 1-based ranks along the last dimension with ties averaged. (b, d) -> (b, d)."""
    x = x.detach()
    order = x.argsort(-1)
    ranks = torch.empty_like(x)
    ar = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device).expand_as(x)
    ranks.scatter_(-1, order, ar)
    # average ties: rank = mean of the ranks of equal values (rare for real data, exact anyway)
    eq = x.unsqueeze(-1) == x.unsqueeze(-2)  # (b, d, d)
    if bool((eq.sum(-1) > 1).any()):
        ranks = (eq.to(x.dtype) @ ranks.unsqueeze(-1)).squeeze(-1) / eq.sum(-1).to(x.dtype)
    return ranks


def _standardise_rows(r: torch.Tensor) -> torch.Tensor:
    r = r - r.mean(-1, keepdim=True)
    return r / (r.norm(dim=-1, keepdim=True) + 1e-12)


def spearman_matrix(real: torch.Tensor, pred: torch.Tensor, *, temperature: float | None = None) -> torch.Tensor:
    """rho[i, j] = Spearman(real_i, pred_j) for every pair of rows, in one matrix product.

    ``temperature=None`` uses exact ranks for both (evaluation); otherwise ``pred`` gets soft
    ranks (differentiable) while ``real`` (a constant) keeps exact ranks.
    real, pred: (b, d) -> (b, b).
    """
    r_real = _standardise_rows(exact_rank(real.float()))
    r_pred = exact_rank(pred.float()) if temperature is None else soft_rank(pred.float(), temperature)
    return r_real @ _standardise_rows(r_pred).T


def spearman_rows(real: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Exact Spearman between matching rows: (b, d), (b, d) -> (b,)."""
    a = _standardise_rows(exact_rank(real.float()))
    b = _standardise_rows(exact_rank(pred.float()))
    return (a * b).sum(-1)


def contrastive_loss(real: torch.Tensor, pred: torch.Tensor, temperature: float = DEFAULT_RANK_TEMPERATURE) -> torch.Tensor:
    """L_cont = mean_i[1 - rho(S_i, S^_i)] - mean_{i != j}[1 - rho(S_i, S^_j)].

    Positives are matching rows (same image), negatives every other pair in the batch.
    Needs b >= 2 (no negatives otherwise). real, pred: (b, d) -> scalar.
    """
    b = real.shape[0]
    if b < 2:
        raise ConfigError("the contrastive term needs at least 2 images per batch (it compares "
                          "each image with the others): use batch_size >= 2 or contrastive=False")
    rho = spearman_matrix(real, pred, temperature=temperature)
    eye = torch.eye(b, dtype=torch.bool, device=rho.device)
    pos = (1 - rho[eye]).mean()
    neg = (1 - rho[~eye]).mean()
    return pos - neg


def check_targets_rankable(targets, names=None) -> None:
    """Raise DataError when some target vectors are constant (Spearman is undefined).

    targets: (n, d) array or tensor; ``names`` (optional) identify the images in the message.
    """
    t = torch.as_tensor(targets)
    if t.shape[-1] < 2:
        raise DataError(f"targets have {t.shape[-1]} value per image; the generation Spearman needs at "
                        "least 2 values per image: give vector responses (channels x times, voxels)")
    const = (t.max(-1).values == t.min(-1).values).nonzero().flatten().tolist()
    if const:
        which = [str(names[i]) if names is not None else str(i) for i in const[:5]]
        more = f" (and {len(const) - 5} more)" if len(const) > 5 else ""
        raise DataError(f"{len(const)} images have constant target vectors, so their Spearman "
                        f"correlation is undefined: {', '.join(which)}{more}; remove these images "
                        "or fix their responses")


def task_loss_fn(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distillation loss of task ``kind`` ('ce', 'kl', 'cosine'): see :mod:`.tasks`."""
    from .tasks import get_task

    if kind == "none":
        raise ConfigError("task loss 'none' has no loss to compute: use one of ce, kl, cosine")
    return get_task(kind).loss(output, target)


def task_agreement(kind: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image agreement with the teacher (top-1 match for ce/kl, cosine for cosine) -> (b,)."""
    from .tasks import get_task

    return get_task(kind).agreement(output, target)
