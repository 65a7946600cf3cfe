"""Tiny models and data shared by the tests/test_align_*.py files (no network, CPU-fast)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from brainalign.data.dataset import NeuralDataset
from brainalign.data.images import ImageSet


class TinyNet(nn.Module):
    """(n, 3, 16, 16) -> (n, n_classes) logits; layers 'block1', 'block2', 'fc'."""

    def __init__(self, n_classes: int = 5, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.block1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.fc(self.pool(self.block2(self.block1(x))).flatten(1))


class NaNAfter(nn.Module):
    """TinyNet whose output becomes NaN after ``after`` training forwards (to test NaN handling)."""

    def __init__(self, after: int):
        super().__init__()
        self.net = TinyNet()
        self.after = after
        self.calls = 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float("nan")
        return out


def tiny_dataset(n_concepts: int = 8, per_concept: int = 4, n_targets: int = 12, seed: int = 0,
                 size: int = 16) -> NeuralDataset:
    """Random images whose targets depend linearly on pixel statistics (learnable signal)."""
    rng = np.random.default_rng(seed)
    n = n_concepts * per_concept
    images = rng.random((n, 3, size, size), dtype=np.float32)
    w = rng.standard_normal((3 * 4 * 4, n_targets)).astype(np.float32)
    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(images), 4).flatten(1).numpy()
    responses = (pooled - pooled.mean(0)) @ w + 0.1 * rng.standard_normal((n, n_targets)).astype(np.float32)
    concepts = np.repeat([f"c{i}" for i in range(n_concepts)], per_concept)
    return NeuralDataset(images=ImageSet.from_array(images), responses=responses, concepts=concepts,
                         stimulus_ids=np.array([f"img{i:03d}" for i in range(n)]))


FAST = dict(epochs=2, batch_size=8, lr=1e-3, progress=False, device="cpu", seed=1)
