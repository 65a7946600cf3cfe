"""White-box adversarial robustness: FGSM / PGD in [0, 1] pixel space, top-k accuracy.

The attack perturbs the raw images (before the model's resize + normalisation, which sit
inside :class:`PixelClassifier`), so epsilon is in the usual [0, 1] pixel units
(the paper's 0 .. 0.06), and adversarial images are clamped to [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..seeding import torch_generator

DEFAULT_EPS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)


class PixelClassifier(nn.Module):
    """images (n, 3, H, W) in [0, 1] -> logits (n, n_classes): preprocessing + model (+ head).

    ``head`` maps the model output to logits (e.g. a zero-shot text classifier for CLIP's
    image tower); None means the model already returns logits.
    """

    def __init__(self, model: nn.Module, preprocessing: Callable | None = None, head: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.preprocessing = preprocessing
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.preprocessing(images) if self.preprocessing is not None else images
        out = self.model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return self.head(out) if self.head is not None else out


def parse_eps(text: str | Sequence[float]) -> list[float]:
    """'0,0.01,0.02' or a sequence -> sorted unique floats in [0, 1]; ConfigError otherwise."""
    if isinstance(text, str):
        try:
            values = [float(t) for t in text.replace(" ", "").split(",") if t]
        except ValueError as exc:
            raise ConfigError(f"--eps must be comma-separated numbers such as 0,0.01,0.02, got {text!r}") from exc
    else:
        values = [float(v) for v in text]
    if not values:
        raise ConfigError("--eps is empty: give at least one epsilon, e.g. 0,0.01,0.02")
    bad = [v for v in values if not (0.0 <= v <= 1.0) or not np.isfinite(v)]
    if bad:
        raise ConfigError(f"epsilon values must lie in [0, 1] (pixel units), got {bad}")
    return sorted(set(values))


def fgsm(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """One signed-gradient step of size ``eps`` that increases the cross-entropy; clamped to [0, 1].

    images: (n, 3, H, W) in [0, 1]; labels: (n,) long. Returns (n, 3, H, W).
    """
    if eps == 0:
        return images
    return fgsm_step(images, fgsm_direction(classifier, images, labels)[0], eps)


def fgsm_direction(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign of the cross-entropy's input gradient (n, 3, H, W), clean logits (n, n_classes)).

    FGSM's direction does not depend on eps: one forward + backward serves every eps.
    """
    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = classifier(x)
        loss = nn.functional.cross_entropy(logits, labels)
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign(), logits.detach()


def fgsm_step(images: torch.Tensor, direction: torch.Tensor, eps: float) -> torch.Tensor:
    """images + eps * direction, clamped to [0, 1] (n, 3, H, W)."""
    return (images + eps * direction).clamp_(0.0, 1.0).detach()


def pgd(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, *,
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        seed: int = 0) -> torch.Tensor:
    """Projected gradient descent in the L-inf ball of radius ``eps`` (Madry et al.).

    ``step_size`` defaults to 2.5 * eps / steps. The random start is seeded.
    images: (n, 3, H, W) in [0, 1]; labels: (n,) long. Returns (n, 3, H, W).
    """
    if eps == 0:
        return images
    if steps < 1:
        raise ConfigError(f"PGD needs steps >= 1, got {steps}")
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    x0 = images.detach()
    x = x0.clone()
    if random_start:
        g = torch_generator(seed)
        noise = torch.rand(x0.shape, generator=g, dtype=x0.dtype).to(x0.device)
        x = (x0 + (2 * noise - 1) * eps).clamp(0.0, 1.0)
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(classifier(x), labels)
            (grad,) = torch.autograd.grad(loss, x)
        x = x.detach() + alpha * grad.sign()
        x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0.0, 1.0)
    return x.detach()


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k logits, per k (k capped at n_classes)."""
    n_classes = logits.shape[1]
    top = logits.topk(min(max(ks), n_classes), dim=1).indices
    hit = top == labels[:, None]
    return {k: int(hit[:, :min(k, n_classes)].any(dim=1).sum()) for k in ks}


@dataclass
class RobustnessCurve:
    """Accuracy under attack for one model. Arrays are aligned with ``eps``."""

    model: str
    eps: list[float]
    top1: list[float]
    top5: list[float]
    attack: str = "fgsm"
    n_images: int = 0
    settings: dict = field(default_factory=dict)

    def baseline_aligned(self, which: str = "top5") -> list[float]:
        """Accuracy minus the accuracy at the smallest epsilon (eps=0 when present)."""
        acc = getattr(self, which)
        return [a - acc[0] for a in acc]

    def to_dict(self) -> dict:
        return {"model": self.model, "attack": self.attack, "n_images": self.n_images, "eps": self.eps,
                "top1": self.top1, "top5": self.top5,
                "top1_baseline_aligned": self.baseline_aligned("top1"),
                "top5_baseline_aligned": self.baseline_aligned("top5"), "settings": self.settings}


def predict_labels(classifier: nn.Module, images, *, batch_size: int = 32, device=None) -> np.ndarray:
    """Top-1 predictions (n,) of ``classifier`` on clean images (the paper's labels for THINGS)."""
    dev = resolve_device(device)
    classifier = classifier.to(dev).eval()
    out = []
    with torch.inference_mode():
        for idx in _batches(len(images), batch_size):
            x = _load(images, idx).to(dev)
            out.append(classifier(x).argmax(1).cpu())
    return torch.cat(out).numpy()


def robustness_curve(classifier: nn.Module, images, labels, *, eps: Sequence[float] = DEFAULT_EPS,
                     attack: str = "fgsm", steps: int = 10, step_size: float | None = None,
                     batch_size: int = 32, device=None, seed: int = 0, name: str = "model",
                     progress: bool = True) -> RobustnessCurve:
    """Top-1/top-5 accuracy of ``classifier`` under a white-box attack at each epsilon.

    classifier: images (n, 3, H, W) in [0, 1] -> logits (see :class:`PixelClassifier`).
    images: ImageSet or tensor (n, 3, H, W) in [0, 1]; labels: (n,) class indices.
    """
    from ..progress import progress as _progress

    if attack not in ("fgsm", "pgd"):
        raise ConfigError(f"unknown attack {attack!r}: use 'fgsm' or 'pgd'")
    eps = parse_eps(eps)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"need one label per image: {len(images)} images, labels of shape {tuple(labels.shape)}")
    dev = resolve_device(device)
    classifier = classifier.to(dev).eval()
    # gradients only w.r.t. the input: freezing parameters saves their backward pass
    saved = [(p, p.requires_grad) for p in classifier.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    correct = {e: {1: 0, 5: 0} for e in eps}
    try:
        n_classes = None
        batches = list(_batches(len(images), batch_size))
        for b, idx in enumerate(_progress(batches, desc=f"{attack.upper()} {name}", enabled=progress, unit="batch")):
            x = _load(images, idx).to(dev)
            y = labels[idx].to(dev)
            if attack == "fgsm":  # one gradient for every eps (and the clean logits with it)
                direction, clean = fgsm_direction(classifier, x, y)
            for j, e in enumerate(eps):
                if attack == "fgsm" and e == 0:
                    logits = clean
                else:
                    if attack == "fgsm":
                        adv = fgsm_step(x, direction, e)
                    else:
                        adv = pgd(classifier, x, y, e, steps=steps, step_size=step_size, seed=seed + 7919 * b + j)
                    with torch.inference_mode():
                        logits = classifier(adv)
                n_classes = logits.shape[1]
                for k, v in topk_correct(logits, y).items():
                    correct[e][k] += v
        if n_classes is not None and int(labels.max()) >= n_classes:
            raise DataError(f"labels go up to {int(labels.max())} but the model has {n_classes} outputs: "
                            "the labels do not match the model's classes")
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)
    n = len(images)
    settings = {"steps": steps, "step_size": step_size, "seed": seed} if attack == "pgd" else {}
    return RobustnessCurve(model=name, eps=list(eps), top1=[correct[e][1] / n for e in eps],
                           top5=[correct[e][5] / n for e in eps], attack=attack, n_images=n, settings=settings)


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield np.arange(start, min(start + batch_size, n))


def _load(images, idx) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[torch.as_tensor(idx)]
    return images.load(idx)
