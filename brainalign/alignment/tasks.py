"""Task losses as objects: how the starting model's behaviour is kept during alignment.

Each task names the teacher target it needs (computed once per image from the starting model
in eval mode and cached), the distillation loss against it and the per-image agreement that
validation reports. ``TASKS`` maps the ``task_loss=`` names to them; :func:`get_task` looks one up.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclass(frozen=True)
class Task:
    """One task loss. ``name`` is what ``task_loss=`` and config.json say."""

    name: str

    def teacher_target(self, output: torch.Tensor) -> torch.Tensor:
        """The cached target from the teacher's float output (b, C) -> (b,) or (b, D)."""
        return output.flatten(1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar task loss of the student's output (b, C) against the teacher target."""
        raise NotImplementedError(f"{type(self).__name__} must define loss(output, target)")

    def agreement(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image agreement with the teacher -> (b,)."""
        raise NotImplementedError(f"{type(self).__name__} must define agreement(output, target)")

    @property
    def active(self) -> bool:
        return True


class CrossEntropyTask(Task):
    """'ce': cross-entropy on the teacher's predicted labels; agreement = top-1 match."""

    def teacher_target(self, output):
        return output.argmax(-1)

    def loss(self, output, target):
        return F.cross_entropy(output.float(), target)

    def agreement(self, output, target):
        return (output.argmax(-1) == target).float()


class SoftTargetTask(Task):
    """'kl': KL divergence to the teacher's softmax (T = 1); agreement = top-1 match."""

    def loss(self, output, target):
        return F.kl_div(F.log_softmax(output.float(), -1), F.log_softmax(target.float(), -1),
                        log_target=True, reduction="batchmean")

    def agreement(self, output, target):
        return (output.argmax(-1) == target.argmax(-1)).float()


class CosineTask(Task):
    """'cosine': 1 - cosine similarity to the teacher's embedding; agreement = cosine."""

    def loss(self, output, target):
        return (1 - self.agreement(output, target)).mean()

    def agreement(self, output, target):
        return F.cosine_similarity(output.float().flatten(1), target.float().flatten(1), dim=-1)


class NoTask(Task):
    """'none': no task loss (the teacher target is empty, nothing is distilled)."""

    @property
    def active(self) -> bool:
        return False

    def teacher_target(self, output):
        return output.new_zeros(len(output), 0)

    def loss(self, output, target):
        return output.new_zeros(())


TASKS: dict[str, Task] = {t.name: t for t in (CrossEntropyTask("ce"), SoftTargetTask("kl"), CosineTask("cosine"),
                                             NoTask("none"))}
TASK_LOSSES = ("auto", *TASKS)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown task loss {name!r}: use one of {', '.join(TASK_LOSSES)}")
    return TASKS[name]
