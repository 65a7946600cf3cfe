"""Differentiable batch similarity measures shared by the ``rsa`` and ``cka`` objectives."""
from __future__ import annotations

import torch


def batch_rdm(x: torch.Tensor) -> torch.Tensor:
    """Correlation-distance RDM upper triangle of a batch: (b, *shape) -> (b * (b - 1) / 2,).

    1 - Pearson r between the images' flattened vectors, as :func:`brainalign.rsa.rdm` computes
    it, but in torch and differentiable.
    """
    x = x.flatten(1).float()
    x = x - x.mean(1, keepdim=True)
    x = x / (x.norm(dim=1, keepdim=True) + 1e-8)
    d = 1 - x @ x.T
    i, j = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    return d[i, j]


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two vectors (n,), (n,) -> scalar."""
    a, b = a - a.mean(), b - b.mean()
    return (a * b).sum() / (a.norm() * b.norm() + 1e-12)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) between two batches: (b, *shape), (b, *shape) -> scalar in [0, 1].

    Computed from the (b, b) Gram matrices, so a wide layer costs b x b, not features x features.
    """
    x = x.flatten(1).float()
    y = y.flatten(1).float()
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    kx, ky = x @ x.T, y @ y.T
    return (kx * ky).sum() / (kx.norm() * ky.norm() + 1e-12)
