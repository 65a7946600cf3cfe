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


def linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) between two batches: (b, *shape), (b, *shape) -> scalar.

    Computed from the (b, b) Gram matrices, so a wide layer costs b x b, not features x features.
    ``debiased=False``: the plug-in (biased) HSIC, in [0, 1]. ``debiased=True``: the unbiased HSIC
    estimator (Song et al. 2012, as minibatch CKA in Nguyen et al. 2021; needs b >= 4), which drops
    the Gram matrices' diagonals: with noisy responses the diagonal holds mostly noise power, and the
    biased estimate then rewards any layer whose images are spread out (a large trace), brain-like
    or not. Both equal 1 for x vs a scaled or rotated x.
    """
    x = x.flatten(1).float()
    y = y.flatten(1).float()
    if debiased:
        kx, ky = _offdiag_gram(x), _offdiag_gram(y)
        hxy, hxx, hyy = _unbiased_hsic(kx, ky), _unbiased_hsic(kx, kx), _unbiased_hsic(ky, ky)
        return hxy / (hxx.clamp_min(1e-12) * hyy.clamp_min(1e-12)).sqrt()
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    kx, ky = x @ x.T, y @ y.T
    return (kx * ky).sum() / (kx.norm() * ky.norm() + 1e-12)


def _offdiag_gram(x: torch.Tensor) -> torch.Tensor:
    """(b, f) -> (b, b) linear Gram matrix with a zero diagonal."""
    k = x @ x.T
    return k - torch.diag_embed(torch.diagonal(k))


def _unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimate (Song et al. 2012, eq. 5) from zero-diagonal (b, b) Gram matrices, b >= 4."""
    n = k.shape[0]
    ones_k, ones_l = k.sum(1), l.sum(1)
    return ((k * l).sum() + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2))
            - 2 * (ones_k @ ones_l) / (n - 2)) / (n * (n - 3))
