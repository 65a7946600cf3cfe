"""The training loop: one backbone pass per step feeds both the task loss and the head.

Per step: images -> preprocessing -> backbone (train mode) with layer taps -> logits/embedding
and {layer: activation} from the same pass -> head -> L = L_task + beta * sum of the objective's
weighted terms (default ``realnet``: MSE + L_cont; see :mod:`.objectives`). Every term is logged
under its own name per step (progress bar) and per epoch (history rows).
Per epoch: validation on a concept-disjoint split (exact Spearman), an atomic checkpoint,
one history row. Shuffling comes from a torch.Generator seeded by (seed, epoch), and the
checkpoint holds every RNG state, so a resumed run ends bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, TrainingError
from ..progress import log, progress
from ..taps import LayerTap
from . import distributed, precision
from .checkpoint import save_checkpoint, set_rng_state
from .losses import spearman_rows
from .objectives import ObjectiveBatch, build_objective
from .tasks import get_task
from .teacher import model_output

OPTIMIZERS = ("adam", "adamw", "sgd")


class AlignModule(nn.Module):
    """Backbone + layer taps + head, so one forward (and one DDP wrapper) serves both outputs.

    forward(x: (b, 3, H, W) preprocessed) -> (output (b, C) logits or embedding, prediction (b, n_targets)),
    plus {layer: activation} as a third element when built with ``with_activations=True``
    (objectives such as ``rsa`` and ``cka`` read the layers themselves).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, layers: list[str], with_activations: bool = False,
                 detach_head_input: bool = False):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.with_activations = with_activations
        self.detach_head_input = detach_head_input  # head trained as a read-out only: no gradient to the backbone
        self.tap = LayerTap(backbone, layers)  # hooks are attached only inside tap.run

    def forward(self, x: torch.Tensor):
        out = model_output(self.tap.run(x))
        feats = dict(self.tap.outputs)
        self.tap.clear()  # do not keep activations alive between steps
        pred = self.head({k: v.detach() for k, v in feats.items()} if self.detach_head_input else feats)
        return (out, pred, feats) if self.with_activations else (out, pred)


@dataclass(frozen=True)
class TrainSettings:
    """What the loop needs: the run's :class:`~.config.AlignConfig` (its fields read as attributes:
    ``s.beta``, ``s.epochs``, ...; ``amp`` already resolved for the device) plus what align()
    works out before training."""

    config: object  # AlignConfig
    task_kind: str  # 'ce' | 'kl' | 'cosine' | 'none' (see tasks)
    progress: bool = True
    targets: tuple = ()  # joint alignment: the .targets.Target of each dataset (empty: one target)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "config":  # copy/pickle probes, or no config set yet
            raise AttributeError(name)
        return getattr(self.config, name)


@dataclass
class TrainData:
    """Tensors on the CPU; images are loaded per batch from the ImageSets."""

    train_images: object
    train_targets: torch.Tensor  # (n_train, n_targets)
    train_teacher: torch.Tensor  # (n_train,) labels or (n_train, C)
    val_images: object | None = None
    val_targets: torch.Tensor | None = None
    val_teacher: torch.Tensor | None = None


@dataclass
class TrainOutcome:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0  # 1-based
    start_epoch: int = 0  # epochs already done when this call started (resume)


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, ctx, min_batch: int) -> list[torch.Tensor]:
    """This rank's index batches for ``epoch``: a permutation seeded by (seed, epoch).

    A last batch smaller than ``min_batch`` (1 image, when the contrastive term needs 2) is
    merged into the previous batch instead of being dropped.
    """
    g = torch.Generator()
    g.manual_seed(int(seed) * 1_000_003 + int(epoch))
    idx = distributed.shard(torch.randperm(n, generator=g), ctx)
    batches = list(idx.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < min_batch:
        last = batches.pop()
        batches[-1] = torch.cat([batches[-1], last])
    return batches


def _make_optimizer(name: str, params, lr: float):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    raise ConfigError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")


def _cpu_state(module: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _columns(targets: tuple) -> list[tuple[str | None, slice]]:
    """(name, columns) per target; one unnamed target spanning everything when not joint."""
    return [(t.name, slice(t.start, t.stop)) for t in targets] or [(None, slice(None))]


@torch.no_grad()
def evaluate(module: AlignModule, images, targets: torch.Tensor, teacher: torch.Tensor, *, preprocessing,
             task_kind: str, device: torch.device, batch_size: int, joint: tuple = ()):
    """-> (mean exact Spearman between predicted and real targets per image, task agreement).

    With ``joint`` targets the Spearman is computed per target (a dict {name: rho}).
    Runs in eval mode and restores the training mode afterwards.
    """
    was = module.training
    module.eval()
    cols, task = _columns(joint), get_task(task_kind)
    rhos, agree = {name: [] for name, _ in cols}, []
    try:
        for start in range(0, len(images), batch_size):
            idx = list(range(start, min(len(images), start + batch_size)))
            x = images.load(idx, device=device)
            x = preprocessing(x) if preprocessing is not None else x
            out, pred = module(x)[:2]
            y = targets[idx].to(device)
            for name, c in cols:
                rhos[name].append(spearman_rows(y[:, c], pred[:, c]).cpu())
            if task.active:
                agree.append(task.agreement(out, teacher[idx].to(device)).cpu())
    finally:
        module.train(was)
    rho = {name: float(torch.cat(r).mean()) for name, r in rhos.items()}
    return (rho if joint else rho[None]), (float(torch.cat(agree).mean()) if agree else None)


def neural_terms(objective, batch: ObjectiveBatch, joint: tuple = ()) -> tuple[dict, torch.Tensor | None]:
    """-> ({term: value}, the weighted neural loss or None) for one batch.

    Joint targets: the objective runs once per target on its columns of the prediction and
    the targets (terms named 'target/term'); the loss is the sum of weight x its loss.
    """
    if not joint:
        return objective.weighted(batch)
    terms, total = {}, None
    for t in joint:
        c = slice(t.start, t.stop)
        got, part = objective.weighted(ObjectiveBatch(activations=batch.activations, output=batch.output,
                                                      prediction=batch.prediction[:, c], targets=batch.targets[:, c]))
        terms.update({f"{t.name}/{k}": v for k, v in got.items()})
        if part is not None:
            part = part if t.weight == 1.0 else t.weight * part
            total = part if total is None else total + part
    return terms, total


def train(student: nn.Module, head: nn.Module, layers: list[str], data: TrainData, s: TrainSettings, *,
          preprocessing, ctx, out_dir: Path | None, resume_state: dict | None, fingerprint: str,
          backbone_name: str, config: dict) -> TrainOutcome:
    """Train ``student`` and ``head`` in place; on return they hold the best epoch's weights.

    ``resume_state``: a checkpoint from :func:`~.checkpoint.load_checkpoint` to continue from.
    """
    device = ctx.device
    objective = build_objective(s.objective, {"contrastive": s.contrastive, "rank_temperature": s.rank_temperature})
    # an objective that ignores the head (rsa, cka) still gets a head, trained as a read-out on detached
    # layers ('readout' MSE term), so the validation Spearman that picks the best epoch stays meaningful
    task_fn = get_task(s.task_kind)
    readout = not objective.uses_head
    joint = tuple(s.targets)
    columns = _columns(joint)
    names = [f"{t.name}/{term}" for t in joint for term in objective.terms] if joint else list(objective.terms)
    terms = names + (["readout"] if readout else [])
    module = AlignModule(student, head, layers, with_activations=True, detach_head_input=readout).to(device)
    grad_flags = [p.requires_grad for p in student.parameters()]
    if not s.train_backbone:  # readout-only baseline: frozen backbone in eval mode, head trained
        student.requires_grad_(False)
    params = [p for p in list(student.parameters()) + list(head.parameters()) if p.requires_grad]
    opt = _make_optimizer(s.optimizer, params, s.lr)
    prec = precision.setup(s.amp, s.channels_last, s.compile, device=device)
    scaler = prec.scaler
    prec.prepare(module)  # channels_last weights, before DDP
    ddp = distributed.wrap(module, ctx, find_unused_parameters=not task_fn.active and s.train_backbone)
    forward = prec.forward_fn(ddp)  # torch.compile when asked
    ckpt_path = out_dir / "checkpoint.pt" if out_dir is not None else None

    outcome = TrainOutcome()
    best = {"epoch": 0, "score": -math.inf, "model": None, "head": None}
    if resume_state is not None:
        ck = resume_state
        p = ck["payload"]
        student.load_state_dict(p["model"])
        head.load_state_dict(p["head"])
        opt.load_state_dict(p["optimizer"])
        if scaler is not None and p["scaler"]:
            scaler.load_state_dict(p["scaler"])
        set_rng_state(p["rng"])
        outcome.history = ck["history"]
        outcome.start_epoch = ck["epoch"]
        best = {"epoch": ck["best_epoch"], "score": ck["best_score"],
                "model": p["best_model"] or _cpu_state(student), "head": p["best_head"] or _cpu_state(head)}

    targets_dev = data.train_targets.to(device)
    teacher_dev = data.train_teacher.to(device)
    min_batch = objective.min_batch
    zero = torch.zeros((), device=device)
    for epoch in range(outcome.start_epoch, s.epochs):
        t0 = time.perf_counter()
        module.train()
        if not s.train_backbone:
            student.eval()
        batches = epoch_batches(len(data.train_images), s.batch_size, s.seed, epoch, ctx, min_batch)
        # per column (task, *terms, total): sum of value x images, and images the value was computed on
        sums = torch.zeros(2 * (len(terms) + 2), dtype=torch.float64)
        bar = progress(data.train_images.batches(batches, device), enabled=s.progress and ctx.is_main,
                       desc=f"epoch {epoch + 1}/{s.epochs}", total=len(batches), unit="batch",
                       final_line=False)  # the epoch's summary line below says it all
        for b, (idx, x) in enumerate(bar):
            x = x.to(device, non_blocking=True)
            x = prec.input(preprocessing(x) if preprocessing is not None else x)
            y = targets_dev[idx.to(device)]
            with prec.autocast():
                out, pred, acts = forward(x)
            task = task_fn.loss(out.float(), teacher_dev[idx.to(device)]) if task_fn.active else zero
            step, neural = neural_terms(objective, ObjectiveBatch(activations=acts, output=out,
                                                                  prediction=pred.float(), targets=y), joint)
            total = task + s.beta * neural if neural is not None else task
            if readout:  # each target's head fitted alike (one target: plain MSE)
                step["readout"] = sum(F.mse_loss(pred.float()[:, c], y[:, c]) for _, c in columns) / len(columns)
                total = total + step["readout"]
            bad = torch.tensor([0.0 if bool(torch.isfinite(total)) else 1.0])
            if ctx.all_reduce_sum(bad).item() > 0:
                kept = (f"the checkpoint of the last complete epoch ({epoch}) in {ckpt_path} was kept"
                        if ckpt_path is not None and ckpt_path.is_file() else "no checkpoint was written")
                parts = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in {"task": task, **step}.items())
                raise TrainingError(f"non-finite loss at epoch {epoch + 1}, batch {b + 1} ({parts}); {kept}. Lower lr "
                                    "or beta, try amp=False, or check the images and responses")
            opt.zero_grad(set_to_none=True)
            precision.backward_step(total, opt, scaler)
            k = len(idx)
            cols = [task, *(step.get(t, zero) for t in terms), total]
            vals = torch.stack([c.detach().float() for c in cols]).double().cpu()
            seen = torch.tensor([1.0, *(1.0 if t in step else 0.0 for t in terms), 1.0], dtype=torch.float64)
            sums[:len(cols)] += vals * k * seen
            sums[len(cols):] += seen * k
            if hasattr(bar, "set_postfix"):  # progress() disabled returns the plain generator
                bar.set_postfix({n: f"{float(v):.3f}" for n, v in zip(["task", *terms], vals) if n in step or n == "task"})
        sums = ctx.all_reduce_sum(sums)
        ctx.average_buffers(student)
        n_cols = len(terms) + 2
        means = [float(sums[i] / sums[n_cols + i]) if sums[n_cols + i] > 0 else None for i in range(n_cols)]
        row = {"epoch": epoch + 1, **dict(zip(["task", *terms, "total"], means)),
               "val_spearman": None, "val_task_agreement": None}
        score = float(epoch)  # without validation the last epoch is the best
        if data.val_images is not None:
            rho, row["val_task_agreement"] = evaluate(
                module, data.val_images, data.val_targets, data.val_teacher, preprocessing=preprocessing,
                task_kind=s.task_kind, device=device, batch_size=max(2 * s.batch_size, 32), joint=joint)
            if joint:  # the best epoch: the targets' Spearmans weighted as their losses are
                row.update({f"val_spearman/{n}": r for n, r in rho.items()})
                rho = sum(t.weight * rho[t.name] for t in joint) / sum(t.weight for t in joint)
            row["val_spearman"] = score = rho
        row["time_s"] = round(time.perf_counter() - t0, 3)
        outcome.history.append(row)
        is_best = score > best["score"]
        if is_best:
            best = {"epoch": epoch + 1, "score": score, "model": None, "head": None}
        if ckpt_path is not None and ctx.is_main:
            save_checkpoint(ckpt_path, fingerprint=fingerprint, backbone=backbone_name, epoch=epoch + 1,
                            model=student.state_dict(), head=head.state_dict(), optimizer=opt.state_dict(),
                            scaler=scaler.state_dict() if scaler is not None else None,
                            history=outcome.history, config=config, best=best)
        ctx.barrier()
        if is_best:  # keep a CPU copy only after the checkpoint (which needs no duplicate)
            best["model"], best["head"] = _cpu_state(student), _cpu_state(head)
        if ctx.is_main and s.progress:
            msg = " ".join(f"{k}={v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "time_s")
            log(f"epoch {epoch + 1}/{s.epochs}: {msg} ({row['time_s']:.1f} s)")

    if best["model"] is not None:
        student.load_state_dict(best["model"])
        head.load_state_dict(best["head"])
    for p, flag in zip(student.parameters(), grad_flags):
        p.requires_grad_(flag)
    outcome.best_epoch = best["epoch"]
    return outcome

