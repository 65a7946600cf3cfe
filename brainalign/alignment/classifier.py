"""Brief supervised training of a backbone on image labels.

The demo's stand-in for ImageNet pretraining: a small backbone (e.g. ``cornet_tiny``) is
trained to classify the synthetic training concepts, so that it has a task to preserve
(the teacher of the alignment's task loss) before it is aligned with neural data.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..device import resolve_device
from ..errors import ConfigError, DataError
from ..seeding import torch_generator
from .teacher import model_output

CLASSES_ATTR = "brainalign_classes"


def _as_imageset(images):
    from ..data.images import ImageSet

    return images if isinstance(images, ImageSet) else ImageSet.from_array(images)


def _resize_classifier(model: nn.Module, n_out_now: int, n_classes: int, seed: int) -> None:
    """Replace the last Linear producing ``n_out_now`` outputs by one producing ``n_classes``."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == n_out_now]
    if not linears:
        raise ConfigError(f"the model outputs {n_out_now} values but has no Linear layer with that many "
                          f"outputs to resize to {n_classes} classes; give it a {n_classes}-way classifier")
    name, old = linears[-1]
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, n_classes, bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)


def train_classifier(model: nn.Module, images, labels, *, epochs: int = 10, lr: float = 1e-3,
                     batch_size: int = 32, seed: int = 0, device=None, progress: bool = False,
                     preprocessing=None) -> nn.Module:
    """Train ``model`` in place to classify ``images`` into ``labels``; returns it in eval mode.

    Args:
        model: a classifier backbone; if its output size differs from the number of classes,
            its last Linear with that many outputs is replaced by a new n_classes-way Linear.
        images: ImageSet or (n, 3, H, W) float tensor in [0, 1].
        labels: (n,) class labels of any type (e.g. concept names); classes are the sorted
            unique labels, stored as ``model.brainalign_classes``.
        epochs, lr, batch_size, seed: Adam on cross-entropy; shuffling seeded by (seed, epoch).
        preprocessing: callable on [0, 1] images; default: the backbone spec's, or none.
    """
    from ..models.registry import spec_of

    images = _as_imageset(images)
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise DataError(f"{labels.shape[0] if labels.ndim else 0} labels for {len(images)} images: give one "
                        "label per image, in the same order")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DataError("train_classifier needs at least 2 different labels")
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(f"epochs ({epochs}) and batch_size ({batch_size}) must be >= 1 and lr ({lr}) > 0")
    dev = resolve_device(device)
    spec = spec_of(model)
    if preprocessing is None and spec is not None:
        preprocessing = spec.preprocessing
    prep = preprocessing if preprocessing is not None else (lambda x: x)
    model.to(dev)
    with torch.no_grad():
        model.eval()
        n_out = model_output(model(prep(images.load([0, 0]).to(dev)))).shape[-1]
    if n_out != len(classes):
        _resize_classifier(model, n_out, len(classes), seed)
    y = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    from ..progress import progress as _progress

    it = _progress(range(epochs), desc="train_classifier", enabled=progress, unit="epoch")
    for epoch in it:
        perm = torch.randperm(len(images), generator=torch_generator(seed * 1_000_003 + epoch))
        batches = list(perm.split(batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:  # BatchNorm needs 2 samples in train mode
            batches[-2] = torch.cat([batches[-2], batches.pop()])
        for idx in batches:
            x = prep(images.load(idx.numpy()).to(dev))
            loss = F.cross_entropy(model_output(model(x)), y[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if hasattr(it, "set_postfix"):
            it.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    model.__dict__[CLASSES_ATTR] = [str(c) for c in classes]
    return model
