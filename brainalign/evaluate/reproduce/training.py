"""Train the models of a ``reproduce`` run: the starting (unaligned) model and, per subject, the
headline aligned model (beta 100), the unpaired control, the model without the contrastive term
and the beta sweep -- all with the same epochs, learning rate, batch size and seed."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model_sources import ModelEntry, ModelSource
from .settings import HEADLINE_BETA, ReproduceSettings


@dataclass
class TrainedModels:
    """unaligned: the starting model; personal: {label: {subject: ModelSource}};
    histories: {label: {subject: per-epoch dicts}}; best_val: {label: {subject: val Spearman}}."""

    unaligned: ModelSource
    personal: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)
    best_val: dict = field(default_factory=dict)

    def entries(self, labels=None) -> list[ModelEntry]:
        """The unaligned model first (the reference of the significance tests), then ``labels``."""
        labels = list(self.personal) if labels is None else labels
        return [ModelEntry("unaligned", shared=self.unaligned)] + \
            [ModelEntry(lab, personal=self.personal[lab]) for lab in labels]


def variant_options(label: str) -> dict:
    """align() keywords of a variant label ('aligned', 'unpaired', 'w/o contrastive', 'beta=10')."""
    if label == "aligned":
        return {"beta": HEADLINE_BETA}
    if label == "unpaired":
        return {"beta": HEADLINE_BETA, "unpaired": True}
    if label == "w/o contrastive":
        return {"beta": HEADLINE_BETA, "contrastive": False}
    if label.startswith("beta="):
        return {"beta": float(label.split("=", 1)[1])}
    raise ValueError(f"unknown variant {label!r}")


def starting_model(s: ReproduceSettings, data, *, device=None, progress: bool = True, log=print):
    """The unaligned model: a pretrained backbone (or weights file), or -- on the synthetic brain
    without weights -- the backbone briefly trained to classify the training images (the stand-in
    for ImageNet pretraining, as in ``brainalign demo``)."""
    from ...alignment import train_classifier
    from ...models.registry import load_backbone
    from ...seeding import seed_everything

    seed_everything(s.seed)
    if s.pretrained or s.weights or data.pretrain is None:
        log(f"  starting model: {s.backbone} ({'weights ' + str(s.weights) if s.weights else 'pretrained weights'})")
        return load_backbone(s.backbone, pretrained=not s.weights, weights=s.weights, device=device)
    images, labels = data.pretrain
    n_classes = len(set(labels.tolist()))
    log(f"  starting model: {s.backbone} trained {s.classifier_epochs} epochs to classify {n_classes} classes of the "
        "training images (stand-in for ImageNet pretraining)")
    base = load_backbone(s.backbone, pretrained=False, device=device, num_classes=n_classes)
    return train_classifier(base, images, labels, epochs=s.classifier_epochs, lr=s.classifier_lr, batch_size=32,
                            seed=s.seed, device=device, progress=progress)


def train_models(s: ReproduceSettings, data, *, device=None, progress: bool = True, log=print,
                 stages=None) -> TrainedModels:
    """Every variant for every subject (``len(s.labels) * n_subjects`` alignments)."""
    import contextlib

    from ...alignment import align
    from ..demo import _src

    stage = stages if stages is not None else (lambda name: contextlib.nullcontext())
    with stage("starting model"):
        base = starting_model(s, data, device=device, progress=progress, log=log)
    out = TrainedModels(unaligned=_src(base, "unaligned"))
    common = dict(epochs=s.align_epochs, lr=s.align_lr, batch_size=s.batch_size, seed=s.seed, device=device,
                  progress=False)
    n, k = len(s.labels) * len(data.subjects), 0
    for label in s.labels:
        with stage(f"align: {label}"):
            for subj in data.subjects:
                k += 1
                res = align(base, eeg=data.eeg_train[subj], **common, **variant_options(label))
                name = f"{label} sub-{int(subj):02d}" if str(subj).isdigit() else f"{label} sub-{subj}"
                out.personal.setdefault(label, {})[subj] = _src(res.model, name, config=res.config)
                out.histories.setdefault(label, {})[subj] = res.history
                val = res.history[res.best_epoch - 1].get("val_spearman", float("nan"))
                out.best_val.setdefault(label, {})[subj] = val
                if progress:
                    log(f"  [{k}/{n}] {name}: best epoch {res.best_epoch}, val generation Spearman {val:.3f}")
    return out
