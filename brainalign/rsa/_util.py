"""Small helpers shared by the rsa modules (kept free of torch so rsa imports fast)."""
from __future__ import annotations

import numpy as np


def numpy_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed (or a Generator passed through); same contract as
    :func:`brainalign.seeding.numpy_rng`, without importing torch."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
