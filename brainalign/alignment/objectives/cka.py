"""``cka``: linear CKA between each tapped layer and the neural responses (as in Dapello et al. 2023).

The loss is 1 - linear CKA(layer activations, real responses) over the batch, averaged over
layers: it rewards a layer whose batch geometry linearly matches the neural one. CKA uses the
unbiased HSIC estimator (as minibatch CKA, Nguyen et al. 2021): single-subject EEG is noisy, and
the plug-in estimator's Gram diagonals (mostly noise power) reward spreading the images apart
whatever the brain says (see :func:`.similarity.linear_cka`).
"""
from __future__ import annotations

from typing import Mapping

import torch

from . import ObjectiveBatch
from .similarity import linear_cka


class CKAObjective:
    """{'cka': mean over layers of 1 - debiased linear CKA(layer, neural responses)} on the batch (>= 4 images)."""

    uses_head = False
    terms = ("cka",)
    min_batch = 4  # the unbiased HSIC estimator needs >= 4 images

    @classmethod
    def from_settings(cls, settings: Mapping) -> "CKAObjective":
        return cls()

    def __call__(self, batch: ObjectiveBatch) -> dict[str, torch.Tensor]:
        losses = [1 - linear_cka(act, batch.targets, debiased=True) for act in batch.activations.values()]
        return {"cka": torch.stack(losses).mean()}
