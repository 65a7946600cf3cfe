"""One contract every registered backbone keeps (in the manner of timm's tests/test_models.py):
its default layers resolve, the taps give one (b, ...) activation per layer in the spec's order, a
forward and a backward pass work at the spec's input size and nothing is NaN.

Random weights only (pretrained=False: no network). The full-size ImageNet backbones take
seconds to minutes per pass on 2 CPU cores, so they run only with BRAINALIGN_HEAVY_TESTS=1.
"""
from __future__ import annotations

import os

import pytest
import torch

from brainalign.models.registry import available_backbones, load_backbone, spec_of
from brainalign.taps import LayerTap, resolve_layers

HEAVY = {"cornet", "resnet101", "clip"}  # 224 px, 40-120 M parameters
NAMES = sorted(available_backbones())


@pytest.mark.parametrize("name", NAMES)
def test_backbone_contract(name):
    if name in HEAVY and os.environ.get("BRAINALIGN_HEAVY_TESTS") != "1":
        pytest.skip(f"{name}: full-size backbone, run with BRAINALIGN_HEAVY_TESTS=1")
    torch.manual_seed(0)
    model = load_backbone(name, pretrained=False, device="cpu")
    spec = spec_of(model)
    assert spec is not None and spec.name == name
    assert len(spec.labels()) == len(spec.layers) and len(set(spec.layers)) == len(spec.layers)
    layers = resolve_layers(model, None)
    assert list(layers) == list(spec.layers)  # the defaults are the spec's, in order
    assert dict(model.named_modules()).keys() >= set(layers)

    size = spec.preprocessing.size
    x = torch.rand(2, 3, size, size)
    model.train()
    with LayerTap(model, layers) as tap:
        out = tap.run(spec.preprocessing(x))
        acts = dict(tap.outputs)
    assert out.shape[0] == 2 and out.ndim == 2 and torch.isfinite(out).all()  # (b, classes or embedding)
    assert set(acts) == set(layers)
    for layer, a in acts.items():
        assert a.shape[0] == 2 and torch.isfinite(a).all(), layer
    (out.float().pow(2).mean() + sum(a.float().mean() for a in acts.values())).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
