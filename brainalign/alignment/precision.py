"""How a training step runs on the hardware: mixed precision, memory format, compilation.

None of these change what is trained, only how fast; each matches the plain fp32 step within
the tolerance tests state (tests/test_precision.py):

* ``amp='bf16'``: autocast to bfloat16 (CUDA, and CPU where torch supports it); no loss
  scaling needed. ``amp='fp16'``: float16 autocast with a GradScaler, whose state the
  checkpoint keeps so a resumed run continues exactly. ``amp=True`` is 'bf16' where the
  device supports it, else 'fp16'.
* ``channels_last``: NHWC weights and inputs (faster convolutions on tensor cores).
* ``compile``: ``torch.compile`` of the step's forward (backbone + taps + head); the
  weights stay in the uncompiled modules, so checkpoints are the same files.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError

AMP_MODES = ("bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fp16 loss scale to start from: torch's 2**16 overflows on the first steps of a loss weighted by
# beta (totals of ~50-500), and each overflow skips an optimizer step; 2**8 fits (only gradients
# below ~1e-10 underflow), and the scaler still doubles it after every 2000 finite steps.
FP16_INIT_SCALE = 2.0 ** 8


def check_amp(amp) -> str | None:
    """None/False -> None; True -> 'auto'; 'bf16'/'fp16' (any case) as given; else ConfigError."""
    if amp is None or amp is False:
        return None
    if amp is True:
        return "auto"
    if isinstance(amp, str) and amp.strip().lower() in (*AMP_MODES, "auto"):
        return amp.strip().lower()
    if isinstance(amp, str) and amp.strip().lower() in ("none", "off", "no", "false", ""):
        return None
    raise ConfigError(f"amp must be 'bf16', 'fp16' or None (--amp bf16|fp16), got {amp!r}")


def resolve_amp(amp, device: torch.device) -> str | None:
    """The mode that will run on ``device`` ('auto' -> 'bf16' where supported, else 'fp16')."""
    mode = check_amp(amp)
    if mode == "auto":
        mode = "bf16" if device.type != "cuda" or torch.cuda.is_bf16_supported() else "fp16"
    if mode == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{device} does not support bfloat16: use amp='fp16' (--amp fp16)")
    return mode


@dataclass
class StepPrecision:
    """What :func:`setup` decided for one run."""

    amp: str | None
    channels_last: bool
    compile: bool
    device: torch.device
    scaler: "torch.amp.GradScaler | None" = None

    def autocast(self):
        """Context manager for the forward pass (a no-op without amp)."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.amp])

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """(b, 3, H, W) batch in the memory format the weights use."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def prepare(self, module: nn.Module) -> nn.Module:
        """Move ``module``'s weights to channels_last in place when asked (before any
        DistributedDataParallel wrapper, whose gradient buckets follow the weights' strides)."""
        if self.channels_last:
            module.to(memory_format=torch.channels_last)
        return module

    def forward_fn(self, module: nn.Module) -> Callable:
        """``module`` itself, or its ``torch.compile``d forward."""
        return torch.compile(module) if self.compile else module

    def describe(self) -> str:
        parts = [self.amp or "fp32"] + (["channels_last"] if self.channels_last else []) + (
            ["compiled"] if self.compile else [])
        return "+".join(parts)


def setup(amp=None, channels_last: bool = False, compile: bool = False, *, device: torch.device) -> StepPrecision:
    """Check the options for ``device`` and build the step's precision (and fp16's GradScaler)."""
    mode = resolve_amp(amp, device)
    if compile and not hasattr(torch, "compile"):  # pragma: no cover - torch < 2
        raise ConfigError("compile=True needs torch >= 2.0: upgrade torch or drop --compile")
    scaler = torch.amp.GradScaler(device.type, init_scale=FP16_INIT_SCALE) if mode == "fp16" else None
    return StepPrecision(amp=mode, channels_last=bool(channels_last), compile=bool(compile), device=device,
                         scaler=scaler)


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler) -> None:
    """loss.backward() + optimizer.step(), through the GradScaler for fp16."""
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
