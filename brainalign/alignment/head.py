"""The multi-layer encoder head (generalises ReAlnet's EEG generation module).

One encoder per tapped layer: pool -> flatten -> Linear(D_layer, hidden) -> ReLU (the
reference uses no pooling and hidden = 128); the codes are concatenated and a plain
Linear(hidden * n_layers, n_targets) predicts the neural response. D_layer comes from one
dry run of the backbone (:func:`probe_layer_shapes`), never from hard-coded sizes.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..errors import ConfigError


def _check_pooling(p: str) -> str:
    from ..features import check_pooling

    return check_pooling(p)


def _pool(t: torch.Tensor, pooling: str) -> torch.Tensor:
    from ..features import pool

    return pool(t, pooling)


class LayerEncoder(nn.Module):
    """pool -> flatten -> Linear(in_features, hidden) -> ReLU. (b, *shape) -> (b, hidden)."""

    def __init__(self, in_features: int, hidden: int, pooling: str):
        super().__init__()
        self.pooling = pooling
        self.fc = nn.Linear(in_features, hidden)
        self.act = nn.ReLU()

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(_pool(t, self.pooling).flatten(1)))


class EncoderHead(nn.Module):
    """Predicts neural targets from several layers' activations.

    Args:
        layer_shapes: ordered {layer name: activation shape without the batch dim}.
        n_targets: size of the flat target vector (e.g. 17 channels x 20 times = 340).
        hidden: width of each layer encoder (128 in the reference).
        pooling: 'flatten' | 'avg' | 'adaptive<k>', or a {layer: pooling} dict.

    forward({layer: (b, *shape)}) -> (b, n_targets).
    """

    def __init__(self, layer_shapes: Mapping[str, tuple[int, ...]], n_targets: int, hidden: int = 128,
                 pooling: str | Mapping[str, str] = "flatten"):
        super().__init__()
        if not layer_shapes:
            raise ConfigError("the encoder head needs at least one layer")
        if int(hidden) < 1 or int(n_targets) < 1:
            raise ConfigError(f"head_hidden ({hidden}) and n_targets ({n_targets}) must be >= 1")
        self.layers = list(layer_shapes)
        self.layer_shapes = {k: tuple(int(s) for s in v) for k, v in layer_shapes.items()}
        if isinstance(pooling, str):
            pooling = {k: pooling for k in self.layers}
        missing = [k for k in self.layers if k not in pooling]
        if missing:
            raise ConfigError(f"head_pooling has no entry for layers {missing}: give one per layer or a single string")
        self.pooling = {k: _check_pooling(pooling[k]) for k in self.layers}
        self.hidden, self.n_targets = int(hidden), int(n_targets)
        encoders = []
        for k in self.layers:
            dummy = torch.zeros(1, *self.layer_shapes[k])
            d = int(math.prod(_pool(dummy, self.pooling[k]).shape[1:]))
            encoders.append(LayerEncoder(d, self.hidden, self.pooling[k]))
        # ModuleDict keys cannot contain '.', so encoders are indexed by position
        self.encoders = nn.ModuleList(encoders)
        self.readout = nn.Linear(self.hidden * len(self.layers), self.n_targets)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        codes = [enc(features[k]) for k, enc in zip(self.layers, self.encoders)]
        return self.readout(torch.cat(codes, dim=1))

    def config(self) -> dict:
        """JSON-able description that :meth:`from_config` rebuilds the head from."""
        return {"layer_shapes": {k: list(v) for k, v in self.layer_shapes.items()},
                "n_targets": self.n_targets, "hidden": self.hidden, "pooling": dict(self.pooling)}

    @classmethod
    def from_config(cls, cfg: dict) -> "EncoderHead":
        shapes = {k: tuple(v) for k, v in cfg["layer_shapes"].items()}
        return cls(shapes, cfg["n_targets"], cfg["hidden"], cfg["pooling"])


class JointHead(nn.Module):
    """One :class:`EncoderHead` per neural target of a joint alignment, as one module.

    forward({layer: (b, *shape)}) -> (b, sum of the targets' n_targets): each head's
    prediction in target order (the columns of :class:`~.targets.Target`).
    """

    def __init__(self, heads: Mapping[str, EncoderHead]):
        super().__init__()
        self.heads = nn.ModuleDict(dict(heads))

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([h(features) for h in self.heads.values()], dim=1)

    def config(self) -> dict:
        """{target name: that head's :meth:`EncoderHead.config`}."""
        return {name: h.config() for name, h in self.heads.items()}


@torch.no_grad()
def probe_layer_shapes(model: nn.Module, layers: list[str], image_size: int | tuple[int, int],
                       device: torch.device, preprocessing=None) -> dict[str, tuple[int, ...]]:
    """Shapes of ``layers``' outputs (without batch dim) from one dry run on a dummy batch.

    Runs in eval mode (BatchNorm would reject a batch of 1 in train mode) and restores the
    model's mode afterwards.
    """
    from ..taps import LayerTap

    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    x = torch.full((2, 3, h, w), 0.5, device=device)
    if preprocessing is not None:
        x = preprocessing(x)
    was_training = model.training
    model.eval()
    try:
        with LayerTap(model, layers, detach=True) as tap:
            tap.run(x)
            shapes = {k: tuple(tap.outputs[k].shape[1:]) for k in layers}
    finally:
        model.train(was_training)
    return shapes
