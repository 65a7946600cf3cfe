"""Hub-style aligned-model folders: ``model.safetensors`` + ``config.json`` + ``README.md``.

    aligned.save_pretrained("cornet-realnet-sub01")          # a folder to share or upload
    brainalign.load_aligned("cornet-realnet-sub01")           # back as an AlignedModel
    brainalign.load_aligned("hf-hub:owner/cornet-realnet")    # via huggingface_hub (pip install brainalign[hub])

``model.safetensors`` is self-contained (tensors under ``AlignedModel.state_dict()`` keys,
config and history in its metadata, sha256-checked); ``config.json`` is the readable
description (backbone, layers, data, subject, beta, objective, validation Spearman,
history, versions, provenance) and must describe the same model as the weights. Without
the safetensors package the weights fall back to ``model.pt`` (torch, weights_only).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError, ConfigError
from ..io import atomic_directory, atomic_write_text, provenance, to_jsonable, versions, write_json
from .checkpoint import AlignedParts, load_aligned_file, safetensors_available, save_aligned_file

PRETRAINED_FORMAT = "brainalign-pretrained/1"
CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("model.safetensors", "model.pt")  # preferred first
RUN_FILE_NAMES = ("aligned.pt", "aligned.safetensors")
HUB_PREFIX = "hf-hub:"
# config.json fields that must agree with the weights' own config (what the weights *are*)
IDENTITY_KEYS = ("backbone", "spec_name", "model_class", "layers", "n_targets")


# --- describing a model ------------------------------------------------------------------
def _objective(config: dict) -> str:
    settings = config.get("settings") or {}
    obj = config.get("objective", settings.get("objective"))
    if obj is None:
        return "realnet"  # the only objective of brainalign <= 0.1: encoding head, MSE + Spearman contrast
    return obj if isinstance(obj, str) else json.dumps(to_jsonable(obj))


def _val_spearman(parts: AlignedParts):
    best = parts.config.get("best_epoch")
    if isinstance(best, int) and 1 <= best <= len(parts.history):
        return parts.history[best - 1].get("val_spearman")
    return None


def pretrained_config(parts: AlignedParts, weights_name: str) -> dict:
    """The ``config.json`` of a pretrained folder (JSON-able)."""
    cfg = parts.config
    settings = cfg.get("settings") or {}
    data = cfg.get("data") or {}
    out = {
        "format": PRETRAINED_FORMAT, "weights": weights_name, "library": "brainalign",
        **{k: cfg.get(k) for k in IDENTITY_KEYS},
        "heads": parts.head_configs,
        "objective": _objective(cfg),
        "beta": settings.get("beta", cfg.get("beta")),
        "subject": data.get("subject"),
        "data": data,
        "best_epoch": cfg.get("best_epoch"),
        "val_spearman": _val_spearman(parts),
        "history": parts.history,
        "settings": settings,
        "brainalign_version": versions()["brainalign"],
        "trained_with": cfg.get("versions"),
        "provenance": provenance(),
        "align_config": cfg,
    }
    return to_jsonable(out)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def model_card(config: dict, name: str) -> str:
    """A README.md model card (hub front matter + what the model is and how to load it)."""
    data = config.get("data") or {}
    rows = [("Backbone", config.get("backbone")), ("Layers", ", ".join(config.get("layers") or [])),
            ("Objective", config.get("objective")), ("beta", config.get("beta")),
            ("Data", (f"{data.get('modality', '-')}, {data.get('n_images', '-')} images "
                      f"({data.get('n_train', '-')} train / {data.get('n_val', '-')} validation)")),
            ("Subject", config.get("subject")), ("Heads (targets)", ", ".join(config.get("heads") or {})),
            ("Best epoch", config.get("best_epoch")), ("Validation Spearman", config.get("val_spearman")),
            ("brainalign version", config.get("brainalign_version")),
            ("Created", (config.get("provenance") or {}).get("created"))]
    lines = ["---", "library_name: brainalign", "tags:", "- brainalign", "- neuroscience",
             "- brain-alignment", f"- {data.get('modality') or 'neural-data'}", "---", "",
             f"# {name}", "", (f"A {config.get('backbone')} aligned with human neural data by brainalign "
                               f"(objective: {config.get('objective')})."), "",
             "| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows]
    history = config.get("history") or []
    if history:
        keys = [k for k in history[0] if k != "time_s"]
        lines += ["", "## Training history", "", "| epoch | " + " | ".join(keys) + " |",
                  "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {i} | " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for i, r in enumerate(history, 1)]
    lines += ["", "## How to load", "", "```python", "import brainalign", "",
              f'aligned = brainalign.load_aligned("{name}")            # this folder, or "hf-hub:OWNER/{name}"',
              "aligned.predict(images)     # (n, 3, H, W) in [0, 1] -> generated neural responses",
              "brainalign.extract_features(aligned, images)   # the aligned backbone's layers", "```", "",
              f"Command line: `brainalign compare {name} --eeg ...` evaluates it like any model.", "",
              ("`config.json` holds the full settings, data description, history and provenance; "
               f"`{config.get('weights')}` the weights (backbone and encoder heads)."), ""]
    return "\n".join(lines)


# --- writing ------------------------------------------------------------------------------
def save_pretrained(parts: AlignedParts, directory: str | Path, *, overwrite: bool = False,
                    option: str | None = None) -> Path:
    """Write ``directory`` with the weights, config.json and README.md, all or nothing.

    Refuses an existing non-empty folder unless ``overwrite`` (then replaced as a whole).
    """
    directory = Path(directory).expanduser()
    weights_name = WEIGHT_NAMES[0] if safetensors_available() else WEIGHT_NAMES[1]
    config = pretrained_config(parts, weights_name)
    with atomic_directory(directory, overwrite=overwrite, option=option) as tmp:
        save_aligned_file(tmp / weights_name, parts)
        write_json(tmp / CONFIG_NAME, config)
        atomic_write_text(tmp / "README.md", model_card(config, directory.name))
    return directory


# --- reading ------------------------------------------------------------------------------
def is_pretrained_dir(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / CONFIG_NAME).is_file() and any((p / n).is_file() for n in WEIGHT_NAMES)


def read_aligned(source: str | Path) -> tuple[AlignedParts, Path]:
    """The parts of any aligned-model source -> (parts, the file or folder they came from).

    ``source``: an aligned file, a run folder, a pretrained folder or ``hf-hub:owner/name``.
    """
    text = str(source)
    if text.startswith(HUB_PREFIX):
        source = download(text[len(HUB_PREFIX):])
    path = Path(source).expanduser()
    if not path.is_dir():
        return load_aligned_file(path), path
    weights = [path / n for n in WEIGHT_NAMES if (path / n).is_file()]
    if weights:
        return _read_pretrained(path, weights[0]), path
    found = [path / n for n in RUN_FILE_NAMES if (path / n).is_file()]
    if found:
        parts = load_aligned_file(found[0])
        if not parts.history and (path / "history.json").is_file():  # format-1 runs keep it beside
            try:
                parts = parts._replace(history=json.loads((path / "history.json").read_text()))
            except (OSError, ValueError):
                pass
        return parts, found[0]
    runs = sorted(d.name for d in path.iterdir() if d.is_dir() and any((d / n).is_file() for n in RUN_FILE_NAMES))
    hint = (f"; it holds {len(runs)} run folders ({', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''}): "
            "give one of them") if runs else ""
    raise CheckpointError(f"{path} holds no aligned model (no {', '.join(WEIGHT_NAMES + RUN_FILE_NAMES)}){hint}: "
                          "give a folder written by save_pretrained / 'brainalign export', or a run folder "
                          "(an unfinished run: continue it with resume=True / --resume)")


def _read_pretrained(folder: Path, weights: Path) -> AlignedParts:
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise CheckpointError(f"{folder} has {weights.name} but no {CONFIG_NAME}: export the model again "
                              "(AlignedModel.save_pretrained or 'brainalign export')")
    try:
        described = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{cfg_path} is corrupted (not valid JSON: {exc}); restore it or export the "
                              "model again") from exc
    if not isinstance(described, dict) or described.get("format") != PRETRAINED_FORMAT:
        found = described.get("format") if isinstance(described, dict) else type(described).__name__
        raise CheckpointError(f"{cfg_path} is not a brainalign model config (format {found!r}); restore it "
                              "or export the model again")
    parts = load_aligned_file(weights)
    differ = [k for k in IDENTITY_KEYS if described.get(k) != to_jsonable(parts.config.get(k))]
    if described.get("heads") != to_jsonable(parts.head_configs):
        differ.append("heads")
    if differ:
        what = ", ".join(f"{k}: config.json {described.get(k)!r} vs weights {parts.config.get(k)!r}"
                         for k in differ if k != "heads") or "the heads"
        raise CheckpointError(f"{cfg_path} does not describe {weights.name} ({what}): the two files come from "
                              "different models; export the model again into a new folder")
    return parts


def download(spec: str) -> Path:
    """``owner/name[@revision]`` -> a local folder through ``huggingface_hub.snapshot_download``."""
    repo, _, revision = spec.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfigError(f"{HUB_PREFIX}{spec}: expected {HUB_PREFIX}OWNER/NAME (optionally @REVISION)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ConfigError(f"loading {HUB_PREFIX}{spec} needs huggingface_hub: pip install brainalign[hub] "
                          "(or download the folder elsewhere and load it by path)") from exc
    try:
        return Path(snapshot_download(repo_id=repo, revision=revision or None))
    except Exception as exc:  # offline, not cached, unknown repo, HTTP errors: all named below
        kind = type(exc).__name__
        if "NotFound" in kind and "Entry" not in kind:
            fix = "check OWNER/NAME (and the revision); for a private repository log in with `hf auth login`"
        else:
            fix = ("connect to the internet (and unset HF_HUB_OFFLINE), or download the folder on a machine "
                   f"with a network (`hf download {repo} --local-dir DIR`) and load_aligned(DIR)")
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise CheckpointError(f"cannot fetch {HUB_PREFIX}{spec} ({kind}: {first}); {fix}") from exc
