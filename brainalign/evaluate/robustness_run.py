"""``brainalign robustness``: accuracy under white-box attack for several models, figure + JSON.

Labels are ground truth whenever the images have it: class folders (``labels='folder'``; the
paper attacked ImageNet validation images with their labels). Images without labels (e.g.
THINGS) can be scored against a reference model's own clean predictions (``labels='model'``:
the first MODEL, normally the unaligned one, or ``reference``); the report then says that the
labels are model predictions, not ground truth. ``labels='auto'`` (default) takes the folder
labels when the source has class folders that map onto the models' classes, else the model's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..data.image_cache import accepts_image_cache
from ..errors import ConfigError
from ..validation import check_int, check_seed
from ..io import default_cache_dir
from .image_sources import folder_labels, load_image_source
from .model_sources import ModelSource, resolve_model, unique_labels
from ..io import prepare_output_dir
from .robustness import DEFAULT_EPS, PixelClassifier, RobustnessCurve, parse_eps, predict_labels, robustness_curve


@dataclass
class RobustnessOutcome:
    out: Path
    curves: list[RobustnessCurve]
    paths: dict = field(default_factory=dict)
    table: str = ""


def build_classifier(src: ModelSource, *, pretrained: bool = True, templates: str = "simple", device=None,
                     cache_dir=None, progress: bool = True, log=print) -> PixelClassifier:
    """images in [0, 1] -> logits: the model's preprocessing + model (+ zero-shot head for embeddings)."""
    from .zero_shot import zero_shot_head

    spec = src.spec
    head = None
    if spec is not None and spec.output == "embedding":
        log(f"  {src.label}: embedding model -> zero-shot ImageNet head from its text tower "
            f"({templates} templates{', random text tower' if not pretrained else ''})")
        head = zero_shot_head(spec, pretrained=pretrained, templates=templates, device=device,
                              cache_dir=cache_dir, progress=progress)
    return PixelClassifier(src.model, spec.preprocessing if spec is not None else None, head)


def _n_outputs(clf: PixelClassifier, images, device) -> int:
    from ..device import resolve_device

    dev = resolve_device(device)
    with torch.inference_mode():
        out = clf.to(dev).eval()(images.load([0]).to(dev))
    if out.ndim != 2:
        raise ConfigError(f"the model returns shape {tuple(out.shape)}, not (n, n_classes) logits: robustness "
                          "needs a classifier (or an open_clip model for zero-shot classification)")
    return int(out.shape[1])


LABEL_SOURCES = ("auto", "folder", "model")


@accepts_image_cache  # image_cache=None|folder|False for every image file read
def run_robustness(models: Sequence[str], *, images: str | None = "synthetic", attack: str = "fgsm",
                   eps=DEFAULT_EPS, labels: str = "auto", reference: str | None = None, steps: int = 10,
                   step_size: float | None = None, batch_size: int = 32, max_images: int | None = None,
                   out=None, overwrite: bool = False, pretrained: bool = True, device=None, seed: int = 0,
                   templates: str = "simple", cache_dir=None, progress: bool = True, log=print,
                   argv=None) -> RobustnessOutcome:
    from . import figures
    from ..io import provenance
    from .report import write_robustness_report

    if not models:
        raise ConfigError("give at least one MODEL")
    if labels not in LABEL_SOURCES:
        raise ConfigError(f"--labels must be one of {', '.join(LABEL_SOURCES)}, got {labels!r}")
    eps = parse_eps(eps)
    check_seed(seed)
    check_int("batch_size", batch_size, minimum=1)
    check_int("steps", steps, minimum=1)
    out_dir = prepare_output_dir(out, overwrite=overwrite, command="robustness")
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    t0 = time.time()
    data = load_image_source(images, max_images=max_images, seed=seed)
    log(f"Images: {len(data.images)} from {data.source}")
    has_folders = data.class_names is not None and not data.synthetic
    if labels == "folder" and not has_folders:
        raise ConfigError("--labels folder needs a folder of class subfolders (root/<class>/<image>); this source "
                          "has no class folders: use --labels model")
    srcs = [resolve_model(m, pretrained=pretrained, device=device) for m in models]
    unique_labels(srcs)
    clfs = [build_classifier(s, pretrained=pretrained, templates=templates, device=device, cache_dir=cache_dir,
                             progress=progress, log=log) for s in srcs]
    y = label_note = None
    if labels in ("folder", "auto") and has_folders:
        try:
            y = folder_labels(data.class_names, _n_outputs(clfs[0], data.images, device))
            labels, label_note = "folder", (f"ground truth from {len(set(data.class_names.tolist()))} class folders")
        except ConfigError:
            if labels == "folder":
                raise
    if y is None:
        labels = "model"
        if reference is not None and reference not in models:
            ref_src = resolve_model(reference, pretrained=pretrained, device=device)
            ref_clf = build_classifier(ref_src, pretrained=pretrained, templates=templates, device=device,
                                       cache_dir=cache_dir, progress=progress, log=log)
            ref_label = ref_src.label
        else:
            k = models.index(reference) if reference is not None else 0
            ref_clf, ref_label = clfs[k], srcs[k].label
        y = predict_labels(ref_clf, data.images, batch_size=batch_size, device=device)
        label_note = (f"the clean top-1 predictions of {ref_label}, not ground truth (these images have no labels "
                      "that map onto the models' classes)")
    else:
        ref_label = None
    log(f"Labels: {label_note}")
    curves = []
    for src, clf in zip(srcs, clfs):
        n_out = _n_outputs(clf, data.images, device)
        if int(y.max()) >= n_out:
            raise ConfigError(f"labels go up to class {int(y.max())} but {src.label} has {n_out} outputs: the models "
                              "do not share one label space; compare models with the same classes")
        log(f"{attack.upper()} on {src.label} ...")
        c = robustness_curve(clf, data.images, y, eps=eps, attack=attack, steps=steps, step_size=step_size,
                             batch_size=batch_size, device=device, seed=seed, name=src.label, progress=progress)
        curves.append(c)
    fig = figures.plot_robustness(curves, out_dir / "robustness.png")
    meta = {"images": data.source, "n_images": len(data.images), "synthetic": data.synthetic, "labels": labels,
            "label_reference": ref_label, "label_note": label_note, "attack": attack, "eps": eps, "pretrained": pretrained,
            "model_args": list(models), "models": [s.describe() for s in srcs], "seed": seed,
            "provenance": provenance(argv)}
    if attack == "pgd":
        meta.update(steps=steps, step_size=step_size if step_size is not None else "2.5*eps/steps")
    paths = write_robustness_report(out_dir, curves, meta, fig)
    log(f"Done in {time.time() - t0:.0f} s.")
    return RobustnessOutcome(out=out_dir, curves=curves, paths=paths, table=robustness_table(curves))


def robustness_table(curves: list[RobustnessCurve]) -> str:
    from .report import _table

    eps = curves[0].eps
    headers = ["model", "metric", *(f"ε={e:g}" for e in eps)]
    rows = []
    for c in curves:
        rows.append([c.model, "top-1 %", *(f"{100 * a:.1f}" for a in c.top1)])
        rows.append([c.model, "top-5 %", *(f"{100 * a:.1f}" for a in c.top5)])
    return _table(headers, rows)
