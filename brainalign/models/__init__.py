"""Backbones: the spec plugins return, the registry that builds them, weight loading."""
from .registry import available_backbones, get_backbone_spec, load_backbone, spec_of
from .spec import BackboneSpec, Preprocessing

__all__ = ["available_backbones", "get_backbone_spec", "load_backbone", "spec_of", "BackboneSpec",
           "Preprocessing"]
