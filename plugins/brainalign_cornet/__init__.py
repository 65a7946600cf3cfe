"""First-party brainalign plugin: CORnet-S (``cornet``) and a quarter-width variant (``cornet_tiny``).

``cornet`` is the backbone ReAlnet aligns; ``pretrained=True`` downloads the CORnet
authors' ImageNet checkpoint once into torch.hub's cache. ``cornet_tiny`` has the same
architecture, module names and recurrence with a quarter of the channels (V1 16, V2 32,
V4 64, IT 128) and 64x64 inputs: fast enough for CPU demos and tests; no pretrained
weights exist for it.
"""
from __future__ import annotations

from pathlib import Path

from brainalign.errors import MissingWeightsError
from brainalign.hookspecs import hookimpl
from brainalign.models.spec import BackboneSpec, Preprocessing

from .model import CHANNELS, TIMES, CORblock_S, CORnetS

__all__ = ["CORnetS", "CORblock_S", "cornet_s", "cornet_tiny", "CORNET_S_URL", "brainalign_backbones"]

CORNET_S_URL = "https://s3.amazonaws.com/cornet-models/cornet_s-1d3f7974.pth"
CORNET_S_FILE = "cornet_s-1d3f7974.pth"
LAYERS = ("V1", "V2", "V4", "IT")
TINY_CHANNELS = tuple(c // 4 for c in CHANNELS)


def cornet_s(pretrained: bool = False, weights: Path | None = None, num_classes: int = 1000) -> CORnetS:
    """CORnet-S; ``weights`` (published checkpoint or plain state dict) wins over ``pretrained``."""
    from brainalign.models.weights import load_state_dict_into, load_weights_into, pretrained_state_dict_from_url

    model = CORnetS(CHANNELS, num_classes=num_classes, times=TIMES)
    if weights is not None:
        load_weights_into(model, weights)
    elif pretrained:
        # check_hash off: the published name's suffix is the authors' tag, not verified to be a sha256 prefix
        sd = pretrained_state_dict_from_url(CORNET_S_URL, file_name=CORNET_S_FILE, what="'cornet' (CORnet-S)")
        load_state_dict_into(model, sd, source=f"published CORnet-S checkpoint {CORNET_S_FILE}")
    return model


def cornet_tiny(pretrained: bool = False, weights: Path | None = None, num_classes: int = 1000) -> CORnetS:
    """CORnet-S at quarter width (V1 16, V2 32, V4 64, IT 128); random init or ``weights``."""
    from brainalign.models.weights import load_weights_into

    if pretrained and weights is None:
        raise MissingWeightsError("no pretrained weights exist for 'cornet_tiny' (a small CPU demo variant): "
                                  "use pretrained=False (CLI: --no-pretrained), or weights=PATH (--weights PATH) "
                                  "for a cornet_tiny you trained and saved")
    model = CORnetS(TINY_CHANNELS, num_classes=num_classes, times=TIMES)
    if weights is not None:
        load_weights_into(model, weights)
    return model


@hookimpl
def brainalign_backbones():
    return [
        BackboneSpec(
            name="cornet", factory=cornet_s, layers=LAYERS, layer_labels=LAYERS,
            preprocessing=Preprocessing(size=224), output="logits", aliases=("cornet_s", "cornet-s"),
            description="CORnet-S (Kubilius et al. 2019), ImageNet; the ReAlnet backbone"),
        BackboneSpec(
            name="cornet_tiny", factory=cornet_tiny, layers=LAYERS, layer_labels=LAYERS,
            preprocessing=Preprocessing(size=64), output="logits", aliases=("cornet-tiny",),
            description="CORnet-S at 1/4 width, 64x64 input, no pretrained weights (CPU demos/tests)"),
    ]
