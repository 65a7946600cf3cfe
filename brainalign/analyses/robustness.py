"""Robustness (the paper's Figure 3C): top-1/top-5 accuracy under a white-box FGSM/PGD attack
per epsilon, raw and baseline-aligned (minus eps 0).

Unlike the RSA analyses it needs the networks (input gradients), not their RDMs: its data is
``{"images": AttackImages}`` (images with the labels to attack) and ``context.models`` are
``ModelSource`` objects (loaded networks), or MODEL strings loaded one at a time through
``context.options["load"]``. ``brainalign robustness`` and ``brainalign reproduce`` run it.

Labels (:func:`attack_targets`) are ground truth whenever the images have labels in the
models' classes (class folders; the synthetic brain's coarse classes). Otherwise they are a
reference model's clean top-1 predictions, and :attr:`AttackImages.note` says so (the paper
attacked ImageNet validation images with their ground-truth labels).
"""
from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np

from . import Analysis, AnalysisResult
from ..errors import ConfigError

LABEL_MODES = ("auto", "folder", "model")


@dataclass
class AttackImages:
    """The images to attack and their labels.

    Attributes:
        images: ImageSet or tensor (n_images, 3, H, W) in [0, 1].
        labels: (n_images,) class indices in the models' outputs.
        kind: 'folder' (ground truth from class folders), 'classes' (ground truth from the
            source's own class labels, e.g. the synthetic brain's coarse classes) or 'model'
            (a reference model's clean predictions, not ground truth).
        note: one sentence saying where the labels come from (goes into every report).
        source: where the images come from.
        synthetic: simulated images (the report says so).
        reference: the label model's name when kind == 'model'.
        n_classes: the reference model's number of outputs.
    """

    images: object
    labels: np.ndarray
    kind: str
    note: str
    source: str = ""
    synthetic: bool = False
    reference: str | None = None
    n_classes: int | None = None

    @property
    def ground_truth(self) -> bool:
        return self.kind != "model"


def n_outputs(classifier, images, device=None) -> int:
    """Number of classes ``classifier`` (images in [0, 1] -> logits) predicts, from one image."""
    import torch

    from ..device import resolve_device

    dev = resolve_device(device)
    first = images[:1] if isinstance(images, torch.Tensor) else images.load([0])
    with torch.inference_mode():
        out = classifier.to(dev).eval()(first.to(dev))
    if out.ndim != 2:
        raise ConfigError(f"the model returns shape {tuple(out.shape)}, not (n, n_classes) logits: robustness "
                          "needs a classifier (or an open_clip model for zero-shot classification)")
    return int(out.shape[1])


def attack_targets(images, reference, *, mode: str = "auto", class_names=None, class_labels=None,
                   n_label_classes: int | None = None, source: str = "", synthetic: bool = False,
                   reference_name: str = "the reference model", batch_size: int = 32, device=None) -> AttackImages:
    """Choose the labels to attack ``images`` (n_images, 3, H, W) with.

    Args:
        reference: the label model (images in [0, 1] -> logits, e.g. the unaligned model's
            :class:`~brainalign.evaluate.robustness.PixelClassifier`); its number of outputs
            decides whether ground truth fits.
        mode: 'auto' (ground truth when it fits the reference's classes, else the reference's
            predictions), 'folder' (ground truth or an error), 'model' (the reference's predictions).
        class_names: (n_images,) class folder names (mapped by
            :func:`~brainalign.evaluate.image_sources.folder_labels`), or None.
        class_labels: (n_images,) ground-truth class indices in a label space of
            ``n_label_classes`` classes (used when the reference has exactly that many outputs).
    """
    from ..evaluate.image_sources import folder_labels
    from ..evaluate.robustness import predict_labels

    if mode not in LABEL_MODES:
        raise ConfigError(f"labels must be one of {', '.join(LABEL_MODES)}, got {mode!r}")
    n_out = n_outputs(reference, images, device)
    if mode != "model":
        if class_names is not None:
            try:
                y = folder_labels(np.asarray(class_names), n_out)
                k = len(set(np.asarray(class_names).tolist()))
                return AttackImages(images, y, "folder", f"ground truth from {k} class folders"
                                    + (f" of {source}" if source else ""), source, synthetic, n_classes=n_out)
            except ConfigError:
                if mode == "folder":
                    raise
        elif class_labels is not None and n_label_classes == n_out:
            y = np.asarray(class_labels, dtype=np.int64)
            return AttackImages(images, y, "classes", f"ground truth: the {n_out} classes of {source or 'the images'}",
                                source, synthetic, n_classes=n_out)
        if mode == "folder":
            raise ConfigError("--labels folder needs images with ground-truth labels in the models' classes (a "
                              "folder of class subfolders, root/<class>/<image>); these have none: use --labels model")
    y = predict_labels(reference, images, batch_size=batch_size, device=device)
    why = ("these images have no labels" if class_names is None and class_labels is None
           else "their labels do not map onto the model's classes")
    note = (f"the clean top-1 predictions of {reference_name}, not ground truth ({why}; the paper attacked "
            "ImageNet validation images with their ground-truth labels)")
    return AttackImages(images, y, "model", note, source, synthetic, reference=reference_name, n_classes=n_out)


def attack_curves(models, targets: AttackImages, *, classifier, load=None, attack: str = "fgsm", eps=None,
                  steps: int = 10, step_size: float | None = None, batch_size: int = 32, device=None,
                  seed: int = 0, progress: bool = True, log=print) -> list:
    """One RobustnessCurve per model, in order (MODEL strings are loaded by ``load`` one at a time).

    ``classifier(src) -> PixelClassifier`` turns a ModelSource into images -> logits.
    """
    from ..evaluate.robustness import DEFAULT_EPS, robustness_curve

    eps = DEFAULT_EPS if eps is None else eps
    y = targets.labels
    curves = []
    for item in models:
        if isinstance(item, str):
            if load is None:
                raise ConfigError("model strings need options['load'] (a function MODEL string -> ModelSource)")
            src = load(item)
        else:
            src = item
        clf = classifier(src)
        n_out = n_outputs(clf, targets.images, device)
        if len(y) and int(y.max()) >= n_out:
            raise ConfigError(f"labels go up to class {int(y.max())} but {src.label} has {n_out} outputs: the models "
                              "do not share one label space; compare models with the same classes")
        log(f"{attack.upper()} on {src.label} ...")
        curves.append(robustness_curve(clf, targets.images, y, eps=eps, attack=attack, steps=steps,
                                       step_size=step_size, batch_size=batch_size, device=device, seed=seed,
                                       name=src.label, progress=progress))
        if isinstance(item, str):  # ours to free before the next model loads
            del src, clf
            gc.collect()
    return curves


class Robustness(Analysis):
    name = "robustness"
    title = "white-box FGSM/PGD top-1/top-5 accuracy per epsilon (raw and baseline-aligned)"
    key = "robustness"

    def supports(self, data) -> bool:
        return bool(data) and all(isinstance(d, AttackImages) for d in data.values())

    def stimuli(self, data) -> dict:
        return {}  # attacks need the networks, not model RDMs

    def run(self, context) -> AnalysisResult:
        """context.options: classifier (required: ModelSource -> PixelClassifier), load, attack,
        eps, steps, step_size, batch_size, device, figure (False: no PNG)."""
        from ..evaluate import figures
        from ..evaluate.report import _md_table
        from ..evaluate.robustness_run import robustness_table

        opts = dict(context.options)
        if "classifier" not in opts:
            raise ConfigError("the robustness analysis needs options['classifier'] (ModelSource -> PixelClassifier)")
        targets = next(iter(context.data.values()))
        context.log(f"Labels: {targets.note}")
        with context.stages("attacks"):
            curves = attack_curves(context.models, targets, classifier=opts["classifier"], load=opts.get("load"),
                                   attack=opts.get("attack", "fgsm"), eps=opts.get("eps"),
                                   steps=opts.get("steps", 10), step_size=opts.get("step_size"),
                                   batch_size=opts.get("batch_size", 32), device=opts.get("device"),
                                   seed=context.seed, progress=context.progress, log=context.log)
        figs = {}
        if opts.get("figure", True):
            with context.stages("figures"):
                figs["robustness"] = figures.plot_robustness(curves, context.out / "robustness.png")
        rows = [{"analysis": self.name, "model": c.model, "measure": f"{metric}{'_baseline_aligned' * aligned}",
                 "eps": e, "value": float(v), "attack": c.attack}
                for c in curves for metric in ("top1", "top5") for aligned in (False, True)
                for e, v in zip(c.eps, c.baseline_aligned(metric) if aligned else getattr(c, metric))]
        headers = ["model", "metric", *(f"ε={e:g}" for e in curves[0].eps)] if curves else []
        md_rows = [[c.model, name, *(f"{100 * a:.1f}" for a in getattr(c, metric))]
                   for c in curves for metric, name in (("top1", "top-1 %"), ("top5", "top-5 %"))]
        attack = curves[0].attack.upper() if curves else ""
        md = [f"## Robustness ({attack})", "",
              f"White-box {attack} in [0, 1] pixel space on {len(targets.labels)} images from `{targets.source}`; "
              f"labels = {targets.note}.", "", _md_table(headers, md_rows) if curves else "", "",
              "Baseline-aligned curves subtract each model's accuracy at the smallest ε (0)."]
        if "robustness" in figs:
            md += ["", f"![robustness]({figs['robustness'].name})"]
        return AnalysisResult(self.name, self.key, rows=rows, figures=figs, markdown="\n".join(md),
                              summary=robustness_table(curves) if curves else "",
                              json={"labels": targets.kind, "label_note": targets.note,
                                    "curves": [c.to_dict() for c in curves]}, value=curves)
