"""``brainalign robustness``: accuracy under white-box attack for several models, figure + JSON.

Runs the registered ``robustness`` analysis (:mod:`brainalign.analyses.robustness`). Labels
are ground truth whenever the images have it: class folders, or the synthetic brain's coarse
classes for models with that many outputs (``labels='folder'``; the paper attacked ImageNet
validation images with their labels). Images without labels (e.g. THINGS) can be scored
against a reference model's own clean predictions (``labels='model'``: the first MODEL,
normally the unaligned one, or ``reference``); the report then says that the labels are model
predictions, not ground truth. ``labels='auto'`` (default) takes ground truth when it maps onto
the models' classes, else the model's predictions.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..analyses.robustness import LABEL_MODES, attack_targets
from ..data.image_cache import accepts_image_cache
from ..errors import ConfigError
from ..io import default_cache_dir, prepare_output_dir, removes_new_folders_on_failure
from ..validation import check_int, check_seed
from .image_sources import load_image_source
from .model_sources import ModelSource, resolve_model, unique_labels
from .robustness import DEFAULT_EPS, PixelClassifier, RobustnessCurve, parse_eps


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


LABEL_SOURCES = LABEL_MODES  # the --labels choices


@accepts_image_cache  # image_cache=None|folder|False for every image file read
@removes_new_folders_on_failure("out", "cache_dir")  # a failed run leaves no empty folder
def run_robustness(models: Sequence[str], *, images: str | None = "synthetic", attack: str = "fgsm",
                   eps=DEFAULT_EPS, labels: str = "auto", reference: str | None = None, steps: int = 10,
                   step_size: float | None = None, batch_size: int = 32, max_images: int | None = None,
                   out=None, overwrite: bool = False, pretrained: bool = True, device=None, seed: int = 0,
                   templates: str = "simple", cache_dir=None, progress: bool = True, log=print,
                   argv=None) -> RobustnessOutcome:
    from ..analyses import AnalysisContext, get_analysis
    from ..io import provenance
    from ..progress import Stages
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
    stages = Stages(log_fn=log)
    with stages("load"):
        data = load_image_source(images, max_images=max_images, seed=seed)
        log(f"Images: {len(data.images)} from {data.source}")
    has_folders = data.class_names is not None and not data.synthetic
    if labels == "folder" and not has_folders and data.class_labels is None:
        raise ConfigError("--labels folder needs a folder of class subfolders (root/<class>/<image>); this source "
                          "has no class folders: use --labels model")
    with stages("models"):
        srcs = [resolve_model(m, pretrained=pretrained, device=device) for m in models]
        unique_labels(srcs)

    def classifier(src):
        return build_classifier(src, pretrained=pretrained, templates=templates, device=device, cache_dir=cache_dir,
                                progress=progress, log=log)

    if reference is None or reference in models:  # the label model for labels='model' (and 'auto' without labels)
        ref_src = srcs[models.index(reference) if reference is not None else 0]
    else:
        ref_src = resolve_model(reference, pretrained=pretrained, device=device)
    with stages("labels"):
        targets = attack_targets(data.images, classifier(ref_src), mode=labels,
                                 class_names=data.class_names if has_folders else None,
                                 class_labels=data.class_labels, n_label_classes=data.n_label_classes,
                                 source=data.source, synthetic=data.synthetic, reference_name=ref_src.label,
                                 batch_size=batch_size, device=device)
    with stages("attack"):
        result = get_analysis("robustness").run(AnalysisContext(
            data={"images": targets}, models=srcs, out=out_dir, seed=seed, progress=progress, log=log,
            options={"classifier": classifier, "attack": attack, "eps": eps, "steps": steps, "step_size": step_size,
                     "batch_size": batch_size, "device": device}))
    curves, fig = result.value, result.figures["robustness"]
    meta = {"images": data.source, "n_images": len(data.images), "synthetic": data.synthetic, "labels": targets.kind,
            "ground_truth": targets.ground_truth, "label_reference": targets.reference, "label_note": targets.note,
            "attack": attack, "eps": eps, "pretrained": pretrained, "model_args": list(models), "models": [s.describe() for s in srcs], "seed": seed,
            "stages": stages.times, "provenance": provenance(argv)}
    if attack == "pgd":
        meta.update(steps=steps, step_size=step_size if step_size is not None else "2.5*eps/steps")
    with stages("report"):
        paths = write_robustness_report(out_dir, curves, meta, fig)
    log(f"Done in {time.time() - t0:.0f} s ({stages.summary()}).")
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
