"""First-party brainalign plugin: the alignment objectives (registered like a third party's)."""
from __future__ import annotations

from brainalign.hookspecs import hookimpl


@hookimpl
def brainalign_objectives():
    from brainalign.alignment.objectives import ObjectiveSpec
    from brainalign.alignment.objectives.cka import CKAObjective
    from brainalign.alignment.objectives.realnet import RealnetObjective
    from brainalign.alignment.objectives.rsa import RSAObjective

    return [
        ObjectiveSpec("realnet", RealnetObjective.from_settings,
                      "ReAlnet encoding head: MSE + differentiable Spearman contrast (default)"),
        ObjectiveSpec("rsa", RSAObjective.from_settings,
                      "1 - Pearson(layer batch RDM, neural batch RDM), mean over layers"),
        ObjectiveSpec("cka", CKAObjective.from_settings, "1 - linear CKA(layer, neural responses), mean over layers"),
    ]
