"""First-party brainalign plugin: the analyses ``compare`` runs (registered like a third party's).

Each analysis is one module of ``brainalign.analyses``; this file lists them.
"""
from __future__ import annotations

from brainalign.hookspecs import hookimpl


@hookimpl
def brainalign_analyses():
    from brainalign.analyses.rdm_rsa import PrecomputedRDMRSA
    from brainalign.analyses.robustness import Robustness
    from brainalign.analyses.roi_rsa import ROIRSA
    from brainalign.analyses.time_resolved_rsa import TimeResolvedRSA
    from brainalign.analyses.variability import Variability

    return [TimeResolvedRSA(), ROIRSA(), PrecomputedRDMRSA(), Variability(), Robustness()]
