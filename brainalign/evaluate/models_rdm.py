"""Model RDMs: one RDM per layer (1 - Pearson by default), accumulated batch by batch."""
from __future__ import annotations

import numpy as np

from .model_sources import ModelSource

ROWS_IN_MEMORY_BYTES = 64 * 2**20  # stored feature rows a model may keep in memory, all layers together


def model_rdms(source: ModelSource, images, *, method: str = "correlation", pooling: str = "flatten",
               batch_size: int = 32, device=None, progress: bool = True,
               rows_in_memory_bytes: int | None = None) -> np.ndarray:
    """float64 (n_layers, n_pairs) upper-triangle RDMs of ``source``'s layers on ``images``.

    Features are streamed one image batch at a time into one RDMAccumulator per layer, so
    a layer's full (n_images, n_features) matrix is never held in memory: the layers share
    one budget of ``rows_in_memory_bytes`` (None: ``ROWS_IN_MEMORY_BYTES``, 64 MiB) for their
    stored rows, and rows beyond it go to temporary files (plain writes; the page cache holds
    them, not this process).
    images: ImageSet / NeuralDataset / (n, 3, H, W) tensor in [0, 1].
    """
    from ..features import iter_features
    from ..rsa import RDMAccumulator
    from ..rsa.compute import MemoryBudget

    n = len(images.images if hasattr(images, "images") and hasattr(images, "responses") else images)
    budget = MemoryBudget(ROWS_IN_MEMORY_BYTES if rows_in_memory_bytes is None else rows_in_memory_bytes)
    accs = {layer: RDMAccumulator(n, method, max_memory_bytes=budget) for layer in source.layers}
    for idx, batch in iter_features(source.model, images, source.layers, batch_size=batch_size,
                                    pooling=pooling, device=device, progress=progress):
        for layer, feats in batch.items():
            accs[layer].update(idx, feats.numpy())
        batch = feats = None  # the layer outputs are freed before the next forward pass, not after it
    return np.stack([accs[layer].result().vectors[0] for layer in source.layers])


class ModelRDMCache:
    """In-memory memo: (model id, image fingerprint) -> model RDMs, so shared images run once."""

    def __init__(self, **kw):
        self.kw = kw
        self._memo: dict = {}

    def get(self, source: ModelSource, images, fingerprint: str, *, progress: bool = True) -> np.ndarray:
        key = (id(source.model), tuple(source.layers), fingerprint)
        if key not in self._memo:
            self._memo[key] = model_rdms(source, images, progress=progress, **self.kw)
        return self._memo[key]
