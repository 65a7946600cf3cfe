"""``realnet``: ReAlnet's encoding objective (Lu, Wang & Golomb 2024), the default.

The encoder head's generated responses are pulled towards the real ones by MSE plus the
differentiable Spearman contrast (matching image vs the batch's other images); the gradient
reaches the backbone through the head. ``contrastive=False`` drops the second term (the
paper's "W/o ContLoss" control).
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from ..losses import DEFAULT_RANK_TEMPERATURE, contrastive_loss
from . import ObjectiveBatch


class RealnetObjective:
    """{'mse': MSE(prediction, targets), 'contrastive': Spearman contrast} (the latter only when enabled)."""

    uses_head = True
    terms = ("mse", "contrastive")

    def __init__(self, contrastive: bool = True, rank_temperature: float = DEFAULT_RANK_TEMPERATURE):
        self.contrastive = bool(contrastive)
        self.rank_temperature = float(rank_temperature)
        self.min_batch = 2 if self.contrastive else 1

    @classmethod
    def from_settings(cls, settings: Mapping) -> "RealnetObjective":
        return cls(settings.get("contrastive", True), settings.get("rank_temperature", DEFAULT_RANK_TEMPERATURE))

    def __call__(self, batch: ObjectiveBatch) -> dict[str, torch.Tensor]:
        pred, y = batch.prediction, batch.targets
        out = {"mse": F.mse_loss(pred, y)}
        if self.contrastive:
            out["contrastive"] = contrastive_loss(y, pred, self.rank_temperature)
        return out
