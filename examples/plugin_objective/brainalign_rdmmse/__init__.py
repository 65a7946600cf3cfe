"""Example objective plugin: ``rdm-mse``, the mean squared difference between each tapped layer's
batch correlation matrix and the neural responses' one (averaged over layers).

Install (``pip install examples/plugin_objective``), then ``align(model, eeg=ds, objective="rdm-mse")``
or ``brainalign align ... --objective realnet+0.5*rdm-mse``.
"""
from __future__ import annotations

from typing import Mapping

import torch

from brainalign.hookspecs import hookimpl


def batch_correlation(x: torch.Tensor) -> torch.Tensor:
    """(b, ...) -> (b, b) Pearson correlation between the batch's items."""
    x = x.reshape(x.shape[0], -1).float()
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)
    return x @ x.T


class RDMMSEObjective:
    uses_head = False  # reads layers and targets only; the trainer fits the head as a read-out
    terms = ("rdm_mse",)
    min_batch = 3  # 3 images: the fewest with more than one pair

    @classmethod
    def from_settings(cls, settings: Mapping) -> "RDMMSEObjective":
        return cls()

    def __call__(self, batch) -> dict[str, torch.Tensor]:
        neural = batch_correlation(batch.targets)
        off = ~torch.eye(neural.shape[0], dtype=torch.bool, device=neural.device)
        losses = [(batch_correlation(a) - neural)[off].pow(2).mean() for a in batch.activations.values()]
        return {"rdm_mse": torch.stack(losses).mean()}


@hookimpl
def brainalign_objectives():
    from brainalign.alignment.objectives import ObjectiveSpec

    return [ObjectiveSpec("rdm-mse", RDMMSEObjective.from_settings,
                          "mean squared difference of layer and neural batch correlation matrices")]
