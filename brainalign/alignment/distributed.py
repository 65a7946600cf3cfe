"""Data-parallel training under ``torchrun --nproc_per_node=N``.

``align`` calls :func:`setup`: with WORLD_SIZE > 1 in the environment it joins (or creates)
the process group (gloo on CPU, NCCL on CUDA, one GPU per LOCAL_RANK) and wraps the
backbone + taps + head module in DistributedDataParallel. ``batch_size`` is per process;
every process takes a disjoint shard of the same seeded (seed, epoch) permutation, padded
like torch's DistributedSampler so all ranks run the same number of steps. Only rank 0
writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import resolve_device


@dataclass
class DistContext:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # we created the process group, so we tear it down

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks (a copy on the training device; CPU result)."""
        if not self.enabled:
            return t
        t = t.to(self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) over ranks.

        DDP broadcasts rank 0's buffers before each forward, so after the last step of an
        epoch every rank holds its own statistics; averaging makes all ranks (and the saved
        checkpoint) identical and uses every rank's data.
        """
        if not self.enabled:
            return
        for buf in module.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf.data, op=dist.ReduceOp.SUM)
                buf.data /= self.world_size

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup(device=None) -> DistContext:
    """Detect torchrun's environment and prepare the process group and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistContext(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":  # one GPU per local rank; more ranks than GPUs share them round-robin
        dev = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(dev)
    owns = False
    if not dist.is_initialized():
        # BRAINALIGN_DIST_BACKEND overrides (e.g. gloo for ranks sharing one GPU, which NCCL refuses)
        backend = os.environ.get("BRAINALIGN_DIST_BACKEND") or ("nccl" if dev.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
        owns = True
    return DistContext(world_size=dist.get_world_size(), rank=dist.get_rank(), local_rank=local_rank,
                       device=dev, owns_group=owns)


def shard(perm: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """This rank's part of a global permutation (padded by wrapping, as DistributedSampler)."""
    if not ctx.enabled:
        return perm
    n = perm.numel()
    total = -(-n // ctx.world_size) * ctx.world_size
    if total > n:
        perm = torch.cat([perm, perm[: total - n]])
    return perm[ctx.rank:total:ctx.world_size]


def wrap(module: torch.nn.Module, ctx: DistContext, find_unused_parameters: bool = False):
    """DistributedDataParallel around ``module`` when running distributed, else ``module``."""
    if not ctx.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
