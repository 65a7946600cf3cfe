"""First-party brainalign plugin: the analyses ``compare`` runs (registered like a third party's)."""
from __future__ import annotations

from brainalign.hookspecs import hookimpl


@hookimpl
def brainalign_analyses():
    return []
