"""A minimal third-party brainalign plugin providing the backbone ``tinynet``.

brainalign finds it through the entry point declared in pyproject.toml::

    [project.entry-points.brainalign]
    tinynet = "brainalign_tinynet"
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from torch import nn

from brainalign import hookimpl
from brainalign.errors import MissingWeightsError
from brainalign.models.spec import BackboneSpec, Preprocessing


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.MaxPool2d(2))


class TinyNet(nn.Module):
    """(n, 3, 32, 32) -> (n, num_classes); stages give (8, 16, 16), (16, 8, 8), (32, 4, 4)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stage1 = _stage(3, 8)
        self.stage2 = _stage(8, 16)
        self.stage3 = _stage(16, 32)
        self.head = nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                                              fc=nn.Linear(32, num_classes)))

    def forward(self, x):
        return self.head(self.stage3(self.stage2(self.stage1(x))))


def build(pretrained: bool = False, weights: Path | None = None, num_classes: int = 10) -> TinyNet:
    """The factory brainalign calls: ``weights`` is a local file; there are no pretrained weights."""
    model = TinyNet(num_classes=num_classes)
    if weights is not None:
        from brainalign.models.weights import load_weights_into

        load_weights_into(model, weights)
    elif pretrained:
        raise MissingWeightsError("tinynet has no pretrained weights: use pretrained=False or weights=PATH")
    return model


@hookimpl
def brainalign_backbones():
    return [BackboneSpec(
        name="tinynet", factory=build, layers=("stage1", "stage2", "stage3"),
        layer_labels=("early", "middle", "late"), preprocessing=Preprocessing(size=32),
        output="logits", aliases=("tiny-net",), description="example third-party plugin: a 3-stage CNN")]
