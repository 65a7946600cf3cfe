"""First-party brainalign plugin: the alignment objectives (registered like a third party's)."""
from __future__ import annotations

from brainalign.hookspecs import hookimpl


@hookimpl
def brainalign_objectives():
    return []
