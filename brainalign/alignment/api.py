"""``brainalign.align``: ReAlnet-style alignment of any vision model with neural data.

Saving and loading live in :mod:`.aligned_model` (re-exported here).
"""
from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError, OutputExistsError
from ..io import RunLock, removes_new_folders_on_failure, versions, write_json
from ..progress import Stages, format_seconds, log
from ..resources import check_memory
from ..seeding import numpy_rng, seed_everything
from . import distributed
from .aligned_model import AlignedModel, load_aligned, predict_responses, resize_linears_to, save_aligned  # noqa: F401
from .checkpoint import fingerprint, load_checkpoint, state_sha256
from .head import EncoderHead, JointHead, probe_layer_shapes
from .losses import DEFAULT_RANK_TEMPERATURE, check_targets_rankable
from .precision import check_amp, resolve_amp
from .teacher import cached_teacher_targets, compute_teacher_targets, model_output, resolve_task_loss
from .config import AlignConfig, config_field_names
from .targets import join_targets, resolve_targets
from .trainer import TrainData, TrainSettings, train



def _preprocessing_desc(p) -> Any:
    if p is None:
        return None
    return p.to_dict() if hasattr(p, "to_dict") else repr(p)


def _derangement(n: int, seed: int) -> np.ndarray:
    """A seeded permutation without fixed points (Sattolo's algorithm: one n-cycle)."""
    rng = numpy_rng(seed)
    perm = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _data_fingerprint(ds) -> str:
    import hashlib

    h = hashlib.sha256(ds.images.fingerprint().encode())
    h.update(np.ascontiguousarray(ds.targets()).tobytes())
    h.update("|".join(ds.concepts.tolist()).encode())
    return h.hexdigest()[:16]


@removes_new_folders_on_failure("out_dir", default=None)  # a run that fails early leaves no empty folder
def align(model: nn.Module | str, layers=None, eeg=None, *, fmri=None, data=None, targets=None,
          beta: float = 100.0, epochs: int = 30, batch_size: int = 16, lr: float = 2e-5,
          optimizer: str = "adam", seed: int = 2023, val_fraction: float = 0.1, task_loss: str = "auto",
          contrastive: bool = True, unpaired: bool = False, head_hidden: int = 128,
          head_pooling: str | dict = "flatten", rank_temperature: float = DEFAULT_RANK_TEMPERATURE,
          objective="realnet", device=None, amp: str | bool | None = None, out_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, preprocessing: Callable | None = None,
          train_backbone: bool = True, image_cache=None, images_on_device: bool = False,
          channels_last: bool = False, compile: bool = False, target_weights=None, config: AlignConfig | None = None,
          **unknown) -> AlignedModel:
    """Align ``model`` with neural responses (ReAlnet, generalised to any backbone and modality).

    Loss per batch (default ``objective='realnet'``): ``L_task + beta * (MSE + L_cont)`` where L_task distils the starting model
    (cached teacher targets, see ``task_loss``), MSE and L_cont (differentiable Spearman
    contrast between the batch's real and generated responses) train the encoder head and,
    through the same backbone pass, the backbone.

    Args:
        model: any ``nn.Module`` mapping (n, 3, H, W) images to logits or an embedding, or a
            registered backbone name (loaded with ``load_backbone(name)``). Never modified:
            training runs on a deep copy.
        layers: module names (or spec labels) to read; None -> the backbone spec's defaults.
        eeg / fmri / data / targets: the training data: a NeuralDataset (any n_targets;
            responses are flattened per image) or an (images, responses) pair, given to one
            keyword. Several datasets over the same images make a *joint* alignment, each with
            its own head: ``eeg=`` and ``fmri=`` together, or ``targets={name: dataset, ...}``
            (see :mod:`.targets`). Give the training split only: validation is carved out of
            it by concept.
        target_weights: joint alignment: {target name: weight} of each dataset's neural loss
            (default 1 each); the best epoch maximises the targets' validation Spearmans
            averaged with the same weights (history: ``val_spearman/<name>`` per target).
        beta: weight of the generation loss (paper: 1, 10, 100, 1000; 100 headline).
        epochs, batch_size, lr, optimizer ('adam'|'adamw'|'sgd'), seed: paper defaults.
            ``batch_size`` is per process under torchrun.
        val_fraction: fraction of the training *concepts* held out for validation; the epoch
            with the highest validation generation Spearman is returned (0 -> last epoch).
        task_loss: 'auto' | 'ce' (teacher's predicted labels) | 'kl' (soft targets) |
            'cosine' (embeddings) | 'none'. 'auto': spec.output 'embedding' -> 'cosine',
            'logits' -> 'ce'; without a spec a 2-D (n, C>1) output -> 'ce', else 'cosine'.
        contrastive: include L_cont (False = the paper's "W/o ContLoss" control).
        config: an :class:`~brainalign.alignment.config.AlignConfig` holding all the settings
            above at once (then give none of them as keywords).
        objective: what the neural term is (see :mod:`brainalign.alignment.objectives`):
            'realnet' (default: MSE + L_cont through the head), 'rsa' (layer batch RDMs vs the
            neural batch RDM), 'cka' (unbiased linear CKA of each layer with the responses), any plugin's
            name, a sum 'realnet+rsa' / 'realnet+0.5*rsa', a list or a {name: weight} dict.
            The loss is ``L_task + beta * sum(weight * term)``; history rows hold every term.
        unpaired: train on deranged pairs (image i with the responses of image perm[i] of the
            same dataset, i.e. the same subject; seeded, no image keeps its own) - the paper's
            control. Validation always uses the true pairs.
        head_hidden, head_pooling: encoder width (128) and 'flatten'|'avg'|'adaptive<k>'
            (or {layer: pooling}) to shrink large layers.
        rank_temperature: soft-rank temperature in units of the row's std (see losses.soft_rank).
        device: None/'auto'/'cpu'/'cuda'.
        amp: 'bf16' (CUDA, and CPU where supported), 'fp16' (with a GradScaler, saved in the
            checkpoint) or None; True = 'bf16' where supported, else 'fp16'.
        channels_last, compile: NHWC memory format / ``torch.compile`` of the step's forward
            (speed only; see :mod:`brainalign.alignment.precision` for the tolerances).
        out_dir: run folder for atomic per-epoch checkpoints, teacher cache, history.json,
            config.json and aligned.pt; None -> nothing is written.
        resume: continue from out_dir/checkpoint.pt (bit-identical to an uninterrupted run).
        preprocessing: callable on (n, 3, H, W) [0, 1] images; default: the spec's, or none.
        train_backbone: False freezes the backbone (eval mode) and trains the head only: the
            "readout of the unaligned model" baseline (the task loss is then constant).
        image_cache: where image files are decoded once for every epoch, run and process
            (:mod:`brainalign.data.image_cache`): None -> the process setting, a folder, or
            False (decode on every read).
        images_on_device: hold the whole image set on ``device`` (uint8 for image files) so
            each step indexes and converts its batch there with no host work (CUDA; 16,540
            images at 224 px take 2.5 GB). Results are identical either way.

    Returns:
        an :class:`~brainalign.alignment.aligned_model.AlignedModel` (backbone + head + config +
        history; ``.model`` is the aligned backbone, ``.predict``, ``.save``, ``.save_pretrained``).
    """
    from ..models.registry import load_backbone, spec_of
    from ..taps import resolve_layers

    if isinstance(model, str):
        model = load_backbone(model, device="cpu")
    if isinstance(model, AlignedModel):  # align an aligned model further: start from its backbone
        model = model.backbone
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be an nn.Module or a backbone name, got {type(model).__name__}")
    spec = spec_of(model)
    layers = resolve_layers(model, layers)  # LayerError with suggestions, before any work
    named = resolve_targets(eeg, fmri, data, targets)
    check_amp(amp)
    cfg = _settings_config(config, unknown, dict(
        beta=beta, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
        val_fraction=val_fraction, task_loss=task_loss, contrastive=contrastive, unpaired=unpaired,
        head_hidden=head_hidden, head_pooling=head_pooling, rank_temperature=rank_temperature, objective=objective,
        amp=amp, train_backbone=train_backbone, channels_last=channels_last, compile=compile,
        target_weights=target_weights))
    ds, joint = join_targets(named, cfg.target_weights)
    if cfg.target_weights is not None and not joint:
        raise ConfigError(f"target_weights={cfg.target_weights} needs several datasets (a joint alignment: eeg= and "
                          "fmri=, or targets={name: dataset, ...}); this run has one")
    if image_cache is not None:
        from ..data.image_cache import check_cache_dir

        if image_cache is not False and image_cache is not True:
            check_cache_dir(image_cache)
        ds = ds._replace(images=ds.images.with_cache(image_cache))
    if resume and out_dir is None:
        raise ConfigError("resume=True needs out_dir (the folder holding checkpoint.pt)")
    _check_objective(cfg.objective, cfg.batch_size, cfg.contrastive, cfg.rank_temperature)
    names = ds.stimulus_ids if ds.stimulus_ids is not None else np.arange(len(ds))
    check_targets_rankable(ds.targets(), names=[f"{n} (index {i})" for i, n in enumerate(names)])

    out_dir = Path(out_dir) if out_dir is not None else None
    ckpt = out_dir / "checkpoint.pt" if out_dir is not None else None
    if ckpt is not None and ckpt.exists() and not resume:
        raise OutputExistsError(f"{ckpt} exists: pass resume=True (--resume) to continue that run, or "
                                "use a new out_dir")
    if out_dir is not None:
        blocker = next((p for p in [out_dir, *out_dir.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ConfigError(f"out_dir {out_dir} cannot be created: {blocker} is a file, not a folder; "
                              "choose another out_dir")
    ctx = distributed.setup(device)
    device = ctx.device
    lock = (RunLock(out_dir, what="run folder", option="out_dir", reentrant=True)
            if out_dir is not None and ctx.is_main else None)
    try:
        if lock is not None:  # one writer per run folder (only rank 0 writes under torchrun)
            lock.acquire()
        if images_on_device:
            ds = ds._replace(images=ds.images.to_device(device))
        return _align(model, spec, layers, ds, joint, ctx, device, out_dir, resume, preprocessing,
                      cfg.replace(amp=resolve_amp(cfg.amp, device)), progress)
    finally:
        if lock is not None:
            lock.release()
        ctx.close()


def _settings_config(config: AlignConfig | None, unknown: dict, given: dict) -> AlignConfig:
    """The run's AlignConfig: ``config`` when given (then no setting may also be a keyword), else
    one built from align()'s keywords. Unknown keywords are a TypeError naming close names."""
    from ..errors import suggest

    if unknown:
        known = [*config_field_names(), "fmri", "data", "targets", "device", "out_dir", "resume", "progress",
                 "preprocessing", "image_cache", "images_on_device", "config"]
        hints = "; ".join(f"{k!r}.{suggest(k, known)}" for k in sorted(unknown))
        raise TypeError(f"align() got unexpected keyword argument(s) {hints} Settings are the fields of "
                        f"AlignConfig: {', '.join(config_field_names())}")
    if config is None:
        return AlignConfig(**given)
    if not isinstance(config, AlignConfig):
        raise ConfigError(f"config must be an AlignConfig, got {type(config).__name__}: build one with "
                          "AlignConfig(...) or AlignConfig.from_dict(saved['settings'])")
    defaults = AlignConfig()
    clash = sorted(k for k, v in given.items() if v != getattr(defaults, k))
    if clash:
        raise ConfigError(f"align() got both config= and the setting(s) {', '.join(clash)}: put them in the "
                          f"config (config.replace({clash[0]}=...)) or drop config=")
    return config


def _check_objective(objective, batch_size, contrastive, rank_temperature) -> str:
    """The objective's canonical label ('realnet', 'realnet+0.5*rsa'), checked against the registry
    and the batch size before any work."""
    from .objectives import build_objective, objective_label, parse_objective

    label = objective_label(parse_objective(objective))
    built = build_objective(label, {"contrastive": bool(contrastive), "rank_temperature": float(rank_temperature)})
    if batch_size < built.min_batch:
        raise ConfigError(f"batch_size={batch_size} is too small for objective {label!r}, whose terms compare the "
                          f"images of a batch: use batch_size >= {built.min_batch}")
    return label


def _align(model, spec, layers, ds, joint, ctx, device, out_dir, resume, preprocessing, cfg: AlignConfig,
           progress):
    # per-stage wall times (setup, teacher targets, training, saving): logged on rank 0 when progress
    # is on, and saved as stages.json in the run folder
    t_start = time.perf_counter()
    stages = Stages(log_fn=log if progress and ctx.is_main else None)
    seed, settings = cfg.seed, cfg.to_dict()  # (the dict: for the fingerprint and config.json)
    if preprocessing is None and spec is not None:
        preprocessing = spec.preprocessing
    start_sha = state_sha256(model)
    # every subject/run starts from a fresh copy: the caller's model is never modified
    student = copy.deepcopy(model).to(device)
    if cfg.train_backbone:
        _unfreeze(student, progress)

    # validation: concept-disjoint part of the *training* data (never the test set)
    if cfg.val_fraction > 0:
        train_ds, val_ds = ds.split_by_concept(cfg.val_fraction, seed=seed)
    else:
        train_ds, val_ds = ds, None
    min_batch = 2 if cfg.contrastive else 1
    if len(train_ds) < min_batch:
        raise DataError(f"only {len(train_ds)} training image(s) after the validation split; need at least "
                        f"{min_batch}: add data or lower val_fraction")

    # task loss kind from the spec or the output of one dry run
    image_hw = tuple(train_ds.images.load([0]).shape[-2:])
    sample_out = None
    if cfg.task_loss == "auto" and spec is None:
        with torch.no_grad():
            student.eval()
            x = train_ds.images.load([0, 0]).to(device)
            sample_out = model_output(student(preprocessing(x) if preprocessing is not None else x))
    task_kind = resolve_task_loss(cfg.task_loss, spec, sample_out)

    backbone_name = spec.name if spec is not None else f"{type(model).__module__}.{type(model).__qualname__}"
    fp_inputs = {"backbone": backbone_name, "start_weights": start_sha, "layers": layers,
                 "preprocessing": _preprocessing_desc(preprocessing), "data": _data_fingerprint(ds),
                 "n_targets": ds.n_targets, "task_kind": task_kind, "world_size": ctx.world_size,
                 **{k: v for k, v in settings.items() if k != "epochs" and not (k == "target_weights" and v is None)},
                 **({"targets": [t.to_dict() for t in joint]} if joint else {})}
    fp = fingerprint(fp_inputs)
    # check a checkpoint to resume before anything is written to its folder (teacher caches)
    resume_state = None
    if resume and out_dir is not None and (out_dir / "checkpoint.pt").is_file():
        resume_state = load_checkpoint(out_dir / "checkpoint.pt", fingerprint=fp, backbone=backbone_name)

    seed_everything(seed)  # the head's initialisation (and any dropout) follows the seed
    shapes = probe_layer_shapes(student, layers, image_hw, device, preprocessing)
    make_head = lambda n: EncoderHead(shapes, n, cfg.head_hidden, cfg.head_pooling)  # noqa: E731
    head = JointHead({t.name: make_head(t.stop - t.start) for t in joint}) if joint else make_head(ds.n_targets)
    # weights, gradients, Adam's two moments and the kept best-epoch copy: 5 float32 copies
    n_head = sum(p.numel() for p in head.parameters())
    check_memory(5 * 4.0 * n_head, f"the encoder head ({n_head / 1e6:.1f} M parameters on layers "
                 f"{', '.join(layers)})", "use head_pooling='avg' or 'adaptive2' (or per layer), fewer "
                 "layers, or a smaller head_hidden")
    head = head.to(device)

    # teacher targets: once per image, starting weights, eval mode, cached in the run folder
    def teacher_for(images, name):
        cache = out_dir / f"teacher_{name}.npz" if out_dir is not None and ctx.is_main else None
        return cached_teacher_targets(cache, f"{fp}:{name}", lambda: compute_teacher_targets(
            student, images, task_kind, preprocessing=preprocessing, device=device,
            batch_size=max(2 * cfg.batch_size, 32)))

    train_targets = torch.as_tensor(train_ds.targets())
    if cfg.unpaired:
        train_targets = train_targets[torch.as_tensor(_derangement(len(train_ds), seed))]
    stages.add("setup", time.perf_counter() - t_start)
    with stages("teacher targets"):
        data = TrainData(train_images=train_ds.images, train_targets=train_targets,
                         train_teacher=teacher_for(train_ds.images, "train"))
        if val_ds is not None:
            data.val_images = val_ds.images
            data.val_targets = torch.as_tensor(val_ds.targets())
            data.val_teacher = teacher_for(val_ds.images, "val")
    config = {
        "format": "brainalign-align/1",
        "backbone": backbone_name, "spec_name": spec.name if spec is not None else None,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "layers": layers, "preprocessing": _preprocessing_desc(preprocessing),
        "head": head.config(), "n_targets": ds.n_targets, "response_shape": list(ds.response_shape),
        "task_loss": task_kind, "settings": settings,
        **({"targets": [t.to_dict() for t in joint]} if joint else {}),
        "data": {"modality": ds.modality, "subject": None if ds.subject is None else str(ds.subject),
                 "n_images": len(ds), "n_train": len(train_ds), "n_val": 0 if val_ds is None else len(val_ds),
                 "val_concepts": [] if val_ds is None else sorted(set(val_ds.concepts.tolist())),
                 "fingerprint": fp_inputs["data"], "meta": _jsonable(ds.meta)},
        "world_size": ctx.world_size, "device": str(device), "versions": versions(),
        "fingerprint": fp, "fingerprint_inputs": fp_inputs, "start_weights_sha256": start_sha,
    }
    if out_dir is not None and ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    ts = TrainSettings(cfg, task_kind=task_kind, progress=progress, targets=tuple(joint))
    with stages("training"):
        outcome = train(student, head, layers, data, ts, preprocessing=preprocessing, ctx=ctx, out_dir=out_dir,
                        resume_state=resume_state, fingerprint=fp, backbone_name=backbone_name, config=config)
    config["best_epoch"] = outcome.best_epoch
    config["epochs_done"] = len(outcome.history)
    student.eval()
    head.eval()
    if spec is not None:
        from ..models.registry import attach_spec

        attach_spec(student, spec)
    result = AlignedModel(student, dict(head.heads) if joint else head, history=outcome.history, config=config,
                          best_epoch=outcome.best_epoch, out_dir=out_dir, layers=list(layers))
    if out_dir is not None and ctx.is_main:
        with stages("saving"):
            write_json(out_dir / "history.json", outcome.history, option="out_dir")
            write_json(out_dir / "config.json", config, option="out_dir")
            save_aligned(result, out_dir / "aligned.pt")
        write_json(out_dir / "stages.json", stages.times, option="out_dir")
    if stages.log_fn is not None:
        stages.log_fn(f"align: done in {format_seconds(stages.total)} ({stages.summary()})")
    ctx.barrier()
    return result


def _unfreeze(student: nn.Module, progress: bool) -> None:
    """train_backbone=True trains the whole backbone, also when the model came frozen
    (requires_grad=False); eval mode needs nothing: the trainer switches to train mode."""
    frozen = [p for p in student.parameters() if not p.requires_grad]
    if frozen:
        from ..progress import log

        n = sum(p.numel() for p in frozen)
        log(f"align: {len(frozen)} frozen parameter tensor(s) ({n:,} values) of the model are trained, as "
            "train_backbone=True asks; pass train_backbone=False to train the head only")
        student.requires_grad_(True)


def _jsonable(obj):
    try:
        return json.loads(json.dumps(obj, default=str))
    except (TypeError, ValueError):
        return str(obj)


# AlignResult: the former result dataclass, now AlignedModel (same attributes and methods)
def __getattr__(name: str):
    if name == "AlignResult":
        warnings.warn("AlignResult is deprecated: align() returns an AlignedModel (same attributes: model, head, "
                      "history, config, best_epoch, predict, save); use brainalign.AlignedModel",
                      DeprecationWarning, stacklevel=2)
        return AlignedModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
