"""``cka``: linear CKA between each tapped layer and the neural responses (as in Dapello et al. 2023).

The loss is 1 - linear CKA(layer activations, real responses) over the batch, averaged over
layers: it rewards a layer whose batch geometry linearly matches the neural one.
"""
from __future__ import annotations

from typing import Mapping

import torch

from . import ObjectiveBatch
from .similarity import linear_cka


class CKAObjective:
    """{'cka': mean over layers of 1 - linear CKA(layer, neural responses)} on the batch."""

    uses_head = False
    terms = ("cka",)
    min_batch = 2

    @classmethod
    def from_settings(cls, settings: Mapping) -> "CKAObjective":
        return cls()

    def __call__(self, batch: ObjectiveBatch) -> dict[str, torch.Tensor]:
        losses = [1 - linear_cka(act, batch.targets) for act in batch.activations.values()]
        return {"cka": torch.stack(losses).mean()}
