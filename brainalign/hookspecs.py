"""Hook specifications: what a brainalign plugin can provide.

A plugin is a module (or object) with functions marked ``@brainalign.hookimpl``,
registered under the entry-point group ``brainalign`` in its package metadata::

    [project.entry-points.brainalign]
    mynet = "mypackage.brainalign_plugin"

First-party plugins in ``plugins/`` are registered exactly this way.
"""
from __future__ import annotations

import pluggy

PROJECT = "brainalign"
ENTRY_POINT_GROUP = "brainalign"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def brainalign_backbones():
    """Return a list of :class:`brainalign.models.spec.BackboneSpec` this plugin provides."""


@hookspec(firstresult=True)
def brainalign_resolve_backbone(name: str):
    """Return a BackboneSpec for a dynamic name such as ``timm:<model>``, or None if not yours."""


@hookspec
def brainalign_datasets():
    """Return a list of :class:`brainalign.data.registry.DatasetSpec` this plugin provides."""


@hookspec
def brainalign_objectives():
    """Return a list of :class:`brainalign.alignment.objectives.ObjectiveSpec` (alignment objectives
    selectable by name: ``align(objective="rsa")``, ``--objective rsa``)."""


@hookspec
def brainalign_analyses():
    """Return a list of :class:`brainalign.analyses.AnalysisSpec` (analyses ``compare`` runs on
    the data that supports them)."""
