"""CORnet-S (Kubilius et al. 2019), written from its published architecture.

Module and parameter names match the published model, so its checkpoints load:
top level ``V1, V2, V4, IT, decoder``; V1 is a conv-pool-conv stem, V2/V4/IT are
recurrent bottleneck blocks unrolled ``times`` steps, the decoder is avgpool-flatten-linear.
With the default channels (64, 128, 256, 512) and 1000 classes it has 53,416,616 parameters.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from brainalign.errors import ConfigError

CHANNELS = (64, 128, 256, 512)  # V1, V2, V4, IT
TIMES = (2, 4, 2)  # recurrent steps of V2, V4, IT


class Flatten(nn.Module):
    """(n, C, 1, 1) -> (n, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), -1)


class Identity(nn.Module):
    """Named pass-through (``output``) kept for checkpoint/tap compatibility with the published model."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _StridedConv2d(nn.Conv2d):
    """Conv2d whose stride can be chosen per call.

    The published block mutates ``conv2.stride`` inside forward (stride 2 at the first step,
    1 later); passing it per call gives the same result without changing module state
    (safe with threads, DDP and compilation) while forward hooks still fire.
    """

    def forward(self, x: torch.Tensor, stride: int | None = None) -> torch.Tensor:
        if stride is None:
            return super().forward(x)
        return F.conv2d(x, self.weight, self.bias, stride, self.padding, self.dilation, self.groups)


class CORblock_S(nn.Module):
    """Recurrent bottleneck block: (n, in, H, W) -> (n, out, H/2, W/2) after ``times`` steps.

    Step 0 downsamples (conv2 stride 2) with a strided 1x1 skip; later steps use stride 1
    and an identity residual. Each step has its own batch norms (norm1_t, norm2_t, norm3_t).
    """

    scale = 4  # bottleneck expansion

    def __init__(self, in_channels: int, out_channels: int, times: int = 1):
        super().__init__()
        self.times = int(times)
        width = out_channels * self.scale
        self.conv_input = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.skip = nn.Conv2d(out_channels, out_channels, kernel_size=1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(out_channels, width, kernel_size=1, bias=False)
        self.nonlin1 = nn.ReLU()
        self.conv2 = _StridedConv2d(width, width, kernel_size=3, stride=2, padding=1, bias=False)
        self.nonlin2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.nonlin3 = nn.ReLU()
        self.output = Identity()
        for t in range(self.times):
            setattr(self, f"norm1_{t}", nn.BatchNorm2d(width))
            setattr(self, f"norm2_{t}", nn.BatchNorm2d(width))
            setattr(self, f"norm3_{t}", nn.BatchNorm2d(out_channels))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.conv_input(inp)
        output = x
        for t in range(self.times):
            if t == 0:
                residual = self.norm_skip(self.skip(x))
                stride = 2
            else:
                residual = x
                stride = 1
            x = self.nonlin1(getattr(self, f"norm1_{t}")(self.conv1(x)))
            x = self.nonlin2(getattr(self, f"norm2_{t}")(self.conv2(x, stride=stride)))
            x = getattr(self, f"norm3_{t}")(self.conv3(x))
            x = self.nonlin3(x + residual)
            output = self.output(x)
        return output


class CORnetS(nn.Sequential):
    """CORnet-S: (n, 3, H, W) normalised images -> (n, num_classes) logits.

    Args:
        channels: output channels of V1, V2, V4, IT (default 64, 128, 256, 512).
        width_multiplier: scales ``channels`` (e.g. 0.25 -> 16, 32, 64, 128); ignored
            when ``channels`` is given.
        num_classes: size of the decoder's linear layer.
        times: recurrent steps of V2, V4, IT (default 2, 4, 2).

    Stage outputs at 224x224: V1 (64, 56, 56), V2 (128, 28, 28), V4 (256, 14, 14), IT (512, 7, 7).
    """

    def __init__(self, channels: Sequence[int] | None = None, num_classes: int = 1000,
                 times: Sequence[int] = TIMES, width_multiplier: float = 1.0):
        if channels is None:
            if not width_multiplier > 0:
                raise ConfigError(f"width_multiplier must be > 0, got {width_multiplier}")
            channels = tuple(max(1, int(round(c * width_multiplier))) for c in CHANNELS)
        channels, times = tuple(int(c) for c in channels), tuple(int(t) for t in times)
        if len(channels) != 4 or min(channels) < 1:
            raise ConfigError(f"channels must be 4 positive ints (V1, V2, V4, IT), got {channels}")
        if len(times) != 3 or min(times) < 1:
            raise ConfigError(f"times must be 3 positive ints (V2, V4, IT), got {times}")
        if int(num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1, got {num_classes}")
        c1, c2, c4, cit = channels
        super().__init__(OrderedDict([
            ("V1", nn.Sequential(OrderedDict([
                ("conv1", nn.Conv2d(3, c1, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm1", nn.BatchNorm2d(c1)),
                ("nonlin1", nn.ReLU()),
                ("pool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
                ("conv2", nn.Conv2d(c1, c1, kernel_size=3, stride=1, padding=1, bias=False)),
                ("norm2", nn.BatchNorm2d(c1)),
                ("nonlin2", nn.ReLU()),
                ("output", Identity()),
            ]))),
            ("V2", CORblock_S(c1, c2, times=times[0])),
            ("V4", CORblock_S(c2, c4, times=times[1])),
            ("IT", CORblock_S(c4, cit, times=times[2])),
            ("decoder", nn.Sequential(OrderedDict([
                ("avgpool", nn.AdaptiveAvgPool2d(1)),
                ("flatten", Flatten()),
                ("linear", nn.Linear(cit, int(num_classes))),
                ("output", Identity()),
            ]))),
        ]))
        self.channels, self.times, self.num_classes = channels, times, int(num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He-style init as in the published model: N(0, sqrt(2 / (k*k*out))); BN at identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
