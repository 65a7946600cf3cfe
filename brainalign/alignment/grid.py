"""The run grid: one aligned model per subject x beta x control, each in its own folder.

``run_grid`` owns what the ``align`` command and the demo share: run names
(``sub-XX_beta-B[_nocont][_unpaired]``), skipping complete runs, resuming interrupted ones,
refusing a folder that holds a run of other settings, one lock per grid folder, and the
summary (``runs.json`` + ``runs.tsv``: subject, beta, controls, best epoch, val Spearman,
wall time), written atomically. Runs execute through an executor (``executors.py``):
in-process, ``jobs=N`` local processes, or Slurm via submitit.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import RunLock, atomic_write_text, read_json, removes_new_folders_on_failure, write_json

# control name -> (contrastive, unpaired)
CONTROLS = {"none": (True, False), "nocont": (False, False), "unpaired": (True, True),
            "nocont_unpaired": (False, True)}
# settings that decide whether an existing complete run is the one asked for
_COMPARED = ("backbone", "start", "data", "beta", "contrastive", "unpaired", "epochs", "batch_size", "lr", "seed",
             "val_fraction", "layers", "head_pooling", "objective", "target_weights")


def run_name(subject, beta: float, contrastive: bool = True, unpaired: bool = False) -> str:
    """``sub-01_beta-100`` (+ ``_nocont`` / ``_unpaired`` for the paper's controls)."""
    from ..data.subjects import subject_label

    return f"{subject_label(subject)}_beta-{beta:g}" + ("" if contrastive else "_nocont") + \
        ("_unpaired" if unpaired else "")


@dataclass
class RunTask:
    """Everything one run needs, picklable (sent to worker processes and Slurm jobs)."""

    name: str
    folder: str
    subject: Any
    beta: float
    contrastive: bool
    unpaired: bool
    backbone: Any  # registered name, or an nn.Module (in-process executor only)
    pretrained: bool = True
    weights: str | None = None
    source: Any = "synthetic"  # source string, or a NeuralDataset / {subject: dataset} (in-process)
    modality: str | None = "eeg"
    source_options: dict = field(default_factory=dict)
    align_options: dict = field(default_factory=dict)
    format: str = "pt"
    request: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)  # joint alignment: {name: (source, modality, options)}


def _start_label(pretrained: bool, weights, seed: int) -> str:
    if weights is not None:
        return f"weights:{Path(weights).expanduser().resolve()}"
    return "pretrained" if pretrained else f"random(seed={seed})"


def load_start_model(backbone, *, pretrained: bool = True, weights=None, seed: int = 0):
    """The starting backbone; random initialisation (``pretrained=False``) is seeded, so the
    same command builds the same weights and an interrupted run resumes."""
    import torch

    from ..models.registry import load_backbone

    if not isinstance(backbone, str):
        return backbone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return load_backbone(backbone, pretrained=pretrained, weights=weights, device="cpu")


def run_state(folder: Path, request: dict, fmt: str = "pt") -> str:
    """'new', 'complete' or 'interrupted'; ConfigError when the folder holds a run of other settings."""
    folder = Path(folder)
    done = (folder / f"aligned.{fmt}").is_file() and (folder / "history.json").is_file()
    started = done or (folder / "checkpoint.pt").is_file()
    if not started:
        return "new"
    old = None
    if (folder / "request.json").is_file():
        old = read_json(folder / "request.json", "run request")
    elif (folder / "config.json").is_file():  # a run written without the grid: compare what its config says
        cfg = read_json(folder / "config.json", "run config")
        settings = cfg.get("settings", {}) if isinstance(cfg, dict) else {}
        old = {k: settings[k] for k in _COMPARED if k in settings and k != "objective"}
        if cfg.get("spec_name") or cfg.get("backbone"):
            old["backbone"] = cfg.get("spec_name") or cfg.get("backbone")
    if old is not None:
        diff = [k for k in _COMPARED if k in old and request.get(k) is not None and _norm(old[k]) != _norm(request[k])]
        if diff:
            what = "; ".join(f"{k}: {old[k]!r} there, {request[k]!r} asked" for k in diff)
            raise ConfigError(f"{folder} holds a run with other settings ({what}): use another --out / out=, "
                              "or delete that folder to redo the run")
    return "complete" if done else "interrupted"


def _norm(v):
    return json.loads(json.dumps(v, default=str))


def execute_run(task: RunTask) -> dict:
    """Run (or resume) one grid run in this process; returns its summary row."""
    import torch

    from . import align

    folder = Path(task.folder)
    t0 = time.perf_counter()
    with RunLock(folder, what="run folder"):
        state = run_state(folder, task.request, task.format)
        if state == "complete":
            return _row(task, "skipped", folder)
        model = _cached(("model", _key(task.backbone), task.pretrained, task.weights),
                        lambda: load_start_model(task.backbone, pretrained=task.pretrained, weights=task.weights,
                                                 seed=task.align_options.get("seed", 2023)))
        data = _cached(("data", _key(task.source), task.subject, task.modality, json.dumps([task.source_options,
                        task.targets], sort_keys=True, default=str)), lambda: _load_data(task))
        kind = "targets" if task.targets else "fmri" if task.modality == "fmri" else "eeg" if task.modality == "eeg" \
            else "data"
        opts = dict(task.align_options)
        threads = opts.pop("num_threads", None)
        if threads:
            torch.set_num_threads(int(threads))
        write_json(folder / "request.json", task.request)
        try:
            res = align(model, opts.pop("layers", None), **{kind: data}, beta=task.beta,
                        contrastive=task.contrastive, unpaired=task.unpaired, out_dir=folder, resume=True, **opts)
        except BaseException:
            if not (folder / "checkpoint.pt").exists():  # nothing to resume: leave no file behind
                (folder / "request.json").unlink(missing_ok=True)
            raise
        if task.format == "safetensors":
            res.save(folder / "aligned.safetensors")
            (folder / "aligned.pt").unlink(missing_ok=True)
        wall = round(time.perf_counter() - t0, 3)
        row = _row(task, "resumed" if state == "interrupted" else "trained", folder, wall)
        write_json(folder / "summary.json", row)
        return row


def _key(obj):
    return obj if isinstance(obj, (str, type(None))) else id(obj)


_CACHE: dict = {}


def _cached(key, make):
    """Keep the last model and the last dataset per process (runs of one subject share them)."""
    slot = key[0]
    hit = _CACHE.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1]
    _CACHE.pop(slot, None)
    value = make()
    _CACHE[slot] = (key, value)
    return value


def _load_data(task: RunTask):
    from ..data import registry
    from ..data.dataset import NeuralDataset

    if task.targets:  # joint alignment: one dataset per target, the same subject and split
        return {name: registry.load_source(src, task.subject, "training", modality=modality, **options)
                for name, (src, modality, options) in task.targets.items()}
    src = task.source
    if isinstance(src, NeuralDataset):
        return src
    if isinstance(src, dict):
        return src[task.subject]
    if callable(src):
        return src(task.subject)
    load = {"eeg": registry.load_eeg_source, "fmri": registry.load_fmri_source}.get(task.modality)
    if load is None:
        return registry.load_source(src, task.subject, "training", modality=task.modality, **task.source_options)
    return load(src, task.subject, "training", **task.source_options)


def _joint_targets(targets) -> dict:
    """{name: (source string, modality or None, options)} from run_grid's ``targets``."""
    if not targets:
        return {}
    if not isinstance(targets, dict) or len(targets) < 2:
        raise ConfigError("targets= of a grid is a joint alignment: give {name: source} for two or more datasets, "
                          "e.g. {'eeg': 'synthetic', 'fmri': 'synthetic'}")
    out = {}
    for name, value in targets.items():
        src, options = (value if isinstance(value, (tuple, list)) else (value, {}))
        if not isinstance(src, str):
            raise ConfigError(f"target {name!r} of a grid needs a source string (e.g. 'synthetic'), got "
                              f"{type(src).__name__}")
        out[str(name)] = (src, name if name in ("eeg", "fmri") else None, dict(options or {}))
    return out


def _row(task: RunTask, status: str, folder: Path, wall: float | None = None) -> dict:
    """Summary row from the run's history (and summary.json for the wall time of skipped runs)."""
    hist = read_json(folder / "history.json", "run history") if (folder / "history.json").is_file() else []
    cfg = read_json(folder / "config.json", "run config") if (folder / "config.json").is_file() else {}
    best = int(cfg.get("best_epoch") or 0) if isinstance(cfg, dict) else 0
    score = hist[best - 1].get("val_spearman") if 0 < best <= len(hist) else None
    if wall is None and (folder / "summary.json").is_file():
        wall = read_json(folder / "summary.json", "run summary").get("wall_s")
    control = next(k for k, v in CONTROLS.items() if v == (task.contrastive, task.unpaired))
    return {"name": task.name, "subject": task.subject, "beta": task.beta, "control": control,
            "status": status, "best_epoch": best, "epochs": len(hist), "val_spearman": score, "wall_s": wall,
            "folder": str(folder)}


@dataclass
class GridResult:
    """What :func:`run_grid` returns: one row per run (see ``runs.tsv``) and the summary paths."""

    out: Path
    rows: list[dict]
    paths: dict


@removes_new_folders_on_failure("out", default=None)  # a grid that fails early leaves no empty folder
def run_grid(backbone, subjects, betas=(100.0,), controls=("none",), *, out, source="synthetic",
             modality: str | None = "eeg", source_options: dict | None = None, pretrained: bool = True,
             weights=None, executor=None, format: str = "pt", targets: dict | None = None, log=print,
             **align_options) -> GridResult:
    """Align ``backbone`` once per subject x beta x control; one folder per run under ``out``.

    Args:
        backbone: a registered backbone name (each run starts from a fresh copy; random
            initialisation is seeded by ``seed``), or an nn.Module (in-process executor only).
        subjects, betas: the grid; controls: names from ``CONTROLS`` ('none', 'nocont',
            'unpaired', 'nocont_unpaired').
        out: the grid folder (locked while the grid runs: a second grid into it is refused).
        source: training data: a source string ('synthetic', 'things-eeg2:ROOT', 'shen:PATH'
            with ``source_options={'images': DIR}``, ...), a {subject: NeuralDataset} dict or a
            callable subject -> NeuralDataset (the last two in-process only); ``modality``
            'eeg', 'fmri' or None (any).
        executor: None/'inprocess', an ``executors.LocalParallel(jobs)`` or
            ``executors.Submitit(...)`` (Slurm), or anything with ``run(tasks, fn)``.
        format: 'pt' or 'safetensors' for the aligned model file.
        targets: a joint alignment instead of ``source``: {target name: source string, or
            (source, options)}; a name 'eeg'/'fmri' also restricts the source to that modality.
            ``target_weights`` (an align option) weighs them.
        **align_options: passed to :func:`brainalign.align` (epochs, lr, seed, layers, device ...).

    Complete runs of the same settings are skipped, interrupted ones resume from their
    checkpoint, and a folder holding a run of other settings is refused before any work.
    """
    from ..data.subjects import parse_numbers, parse_subjects
    from .executors import resolve_executor

    subjects = parse_subjects(subjects) if isinstance(subjects, str) else list(subjects)
    betas = parse_numbers(betas, "beta values") if isinstance(betas, str) else [float(b) for b in betas]
    controls = [controls] if isinstance(controls, str) else list(controls)
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ConfigError(f"unknown control {unknown[0]!r}: use one of {', '.join(CONTROLS)}")
    if format not in ("pt", "safetensors"):
        raise ConfigError(f"format must be 'pt' or 'safetensors', got {format!r}")
    if not subjects or not betas or not controls:
        raise ConfigError("the grid is empty: give at least one subject, beta and control")
    executor = resolve_executor(executor)
    if not isinstance(backbone, str) and not getattr(executor, "in_process", False):
        raise ConfigError("a model object can only be aligned in-process: pass a registered backbone name "
                          "to run on other processes or Slurm")
    from ..models.registry import get_backbone_spec, spec_of

    name = get_backbone_spec(backbone).name if isinstance(backbone, str) else \
        getattr(spec_of(backbone), "name", type(backbone).__name__)
    seed = int(align_options.get("seed", 2023))
    joint = _joint_targets(targets)
    data = {"targets": _norm(joint)} if joint else {
        "source": source if isinstance(source, str) else "<in-memory>", "modality": modality,
        **_norm(source_options or {})}
    base = {"backbone": name, "start": _start_label(pretrained, weights, seed), "data": data,
            **{k: _norm(align_options.get(k)) for k in _COMPARED[3:] if k not in ("beta", "contrastive", "unpaired")}}
    out = Path(out).expanduser()
    tasks = []
    for subject in subjects:
        for beta in betas:
            for control in controls:
                cont, unp = CONTROLS[control]
                rn = run_name(subject, beta, cont, unp)
                request = {**base, "subject": str(subject), "beta": beta, "contrastive": cont, "unpaired": unp}
                tasks.append(RunTask(rn, str(out / rn), subject, beta, cont, unp, backbone, pretrained,
                                     None if weights is None else str(weights), source, modality,
                                     dict(source_options or {}), dict(align_options), format, request, joint))
    t0 = time.perf_counter()
    with RunLock(out, what="grid folder"):
        states = {t.name: run_state(Path(t.folder), t.request, format) for t in tasks}  # refuse before any work
        todo = [t for t in tasks if states[t.name] != "complete"]
        rows = {t.name: _row(t, "skipped", Path(t.folder)) for t in tasks if states[t.name] == "complete"}
        for t in tasks:
            if t.name in rows:
                log(f"{t.name}: complete, skipped ({t.folder})")
        for row in executor.run(todo, execute_run):
            rows[row["name"]] = row
            score = row["val_spearman"]
            log(f"{row['name']}: {row['status']}, best epoch {row['best_epoch']}/{row['epochs']}"
                + (f", validation Spearman {score:.3f}" if score is not None else "") + f" -> {row['folder']}")
        ordered = [rows[t.name] for t in tasks]
        paths = _write_summary(out, ordered, base, subjects, betas, controls, time.perf_counter() - t0)
    return GridResult(out=out, rows=ordered, paths=paths)


def _write_summary(out: Path, rows, base, subjects, betas, controls, seconds) -> dict:
    cont, unp = CONTROLS[controls[0]]
    summary = {"backbone": base["backbone"], "eeg": base["data"].get("source"), "data": base["data"],
               "subjects": subjects, "betas": betas, "controls": controls,
               "contrastive": cont, "unpaired": unp,  # the first control, as older runs.json files said
               "settings": base, "wall_s": round(seconds, 3), "runs": rows}
    cols = ("subject", "beta", "control", "status", "best_epoch", "val_spearman", "wall_s", "name")
    fmt = lambda v: "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    table = "\t".join(cols) + "\n" + "".join("\t".join(fmt(r[c]) for c in cols) + "\n" for r in rows)
    return {"runs.json": write_json(out / "runs.json", summary), "runs.tsv": atomic_write_text(out / "runs.tsv", table)}
