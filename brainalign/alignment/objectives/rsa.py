"""``rsa``: representational-similarity loss (Federer et al. 2020; Li et al. 2019).

For each tapped layer the batch's correlation-distance RDM is compared with the batch's
neural RDM (from the real responses); the loss is 1 - Pearson r between the two, averaged
over layers. It shapes the backbone's geometry directly; the head is not involved.
"""
from __future__ import annotations

from typing import Mapping

import torch

from . import ObjectiveBatch
from .similarity import batch_rdm, pearson


class RSAObjective:
    """{'rsa': mean over layers of 1 - Pearson(layer RDM, neural RDM)} on the batch (needs >= 3 images)."""

    uses_head = False
    terms = ("rsa",)
    min_batch = 3  # an RDM of 2 images has one pair: no correlation

    @classmethod
    def from_settings(cls, settings: Mapping) -> "RSAObjective":
        return cls()

    def __call__(self, batch: ObjectiveBatch) -> dict[str, torch.Tensor]:
        neural = batch_rdm(batch.targets)
        losses = [1 - pearson(batch_rdm(act), neural) for act in batch.activations.values()]
        return {"rsa": torch.stack(losses).mean()}
