"""Conversion to and from rsatoolbox (optional dependency)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .rdms import RDMs

__all__ = ["to_rsatoolbox", "from_rsatoolbox"]


def _rsatoolbox():
    try:
        import rsatoolbox.rdm
    except ImportError as exc:
        raise ConfigError("rsatoolbox is not installed: pip install rsatoolbox "
                          "(or brainalign[dev])") from exc
    return rsatoolbox.rdm


def to_rsatoolbox(rdms: RDMs):
    """:class:`RDMs` -> ``rsatoolbox.rdm.RDMs`` (same vectors, descriptors as lists)."""
    mod = _rsatoolbox()
    return mod.RDMs(rdms.vectors.copy(), dissimilarity_measure=rdms.measure,
                    rdm_descriptors={k: list(v) for k, v in rdms.descriptors.items()},
                    pattern_descriptors={k: list(v) for k, v in rdms.condition_descriptors.items()})


def from_rsatoolbox(obj) -> RDMs:
    """``rsatoolbox.rdm.RDMs`` -> :class:`RDMs` (rsatoolbox's automatic 'index' descriptors dropped)."""
    if not (hasattr(obj, "dissimilarities") and hasattr(obj, "n_cond")):
        raise DataError(f"expected an rsatoolbox RDMs object, got {type(obj).__name__}")
    n_rdm = int(obj.n_rdm)
    rdm_desc = {k: np.asarray(v) for k, v in obj.rdm_descriptors.items()
                if not (k == "index" and list(v) == list(range(n_rdm)))}
    cond_desc = {k: np.asarray(v) for k, v in obj.pattern_descriptors.items()
                 if not (k == "index" and list(v) == list(range(int(obj.n_cond))))}
    return RDMs(np.asarray(obj.dissimilarities, dtype=np.float64), int(obj.n_cond),
                descriptors=rdm_desc, condition_descriptors=cond_desc,
                measure=obj.dissimilarity_measure)
