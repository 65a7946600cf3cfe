"""Atomic files: training checkpoints (resume) and saved aligned models.

Everything is stored as tensors and plain Python types so it loads with
``torch.load(weights_only=True)``: nothing arbitrary is ever unpickled. A sha256 of the
tensor payload (``sha256``) and one of the JSON metadata (``meta_sha256``: config, history,
settings) are stored next to them, so a truncated or altered file is detected even when the
container still parses (torch.load does not check the zip CRC).
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from ..errors import CheckpointError
from ..io import atomic_torch_save, atomic_write_bytes

CHECKPOINT_FORMAT = "brainalign-checkpoint/1"
ALIGNED_FORMAT = "brainalign-aligned/2"
ALIGNED_FORMAT_V1 = "brainalign-aligned/1"  # one head, no history: still read


# --- hashing ------------------------------------------------------------------------
def _walk_tensors(obj: Any, prefix: str = ""):
    """Yield (key path, tensor) for every tensor in nested dicts/lists, in a stable order."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _walk_tensors(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_tensors(v, f"{prefix}/{i}")


def payload_sha256(obj: Any, text: str = "") -> str:
    """sha256 over ``text`` and every tensor's key, dtype, shape and bytes (nested dicts/lists)."""
    h = hashlib.sha256(text.encode())
    for key, t in _walk_tensors(obj):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def state_sha256(module: torch.nn.Module) -> str:
    """Content hash of a module's state dict (used to fingerprint the starting model)."""
    return payload_sha256(dict(module.state_dict()))


# --- checked read -------------------------------------------------------------------------
def checked_load(path: str | Path, expected_format: str | tuple[str, ...], map_location="cpu") -> dict:
    """torch.load(weights_only=True) + format (one, or any of a tuple) and sha256 checks;
    CheckpointError on any failure."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: check the path")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, not a torch file at all
        raise CheckpointError(f"{path} is corrupted or not a brainalign file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it or "
                              "use another output folder") from exc
    accepted = (expected_format,) if isinstance(expected_format, str) else tuple(expected_format)
    if not isinstance(obj, dict) or obj.get("format") not in accepted:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} is not a {accepted[0]} file (found {found!r}); "
                              "check that the path points to the right file")
    if payload_sha256(obj["payload"]) != obj.get("sha256"):
        raise CheckpointError(f"{path} is corrupted: its content hash does not match the stored "
                              "sha256; delete it (or restore a copy) and rerun")
    meta = _meta_text(obj)
    if set(obj) - {"format", "payload", "sha256", "meta_sha256"} and obj.get("meta_sha256") != _text_sha256(meta):
        raise CheckpointError(f"{path} is corrupted: its stored settings/config do not match their sha256; "
                              "delete it (or restore a copy) and rerun")
    return obj


def _meta_text(obj: dict) -> str:
    """The non-tensor fields of a stored dict, canonically serialised (covered by meta_sha256)."""
    meta = {k: v for k, v in obj.items() if k not in ("payload", "sha256", "meta_sha256")}
    return json.dumps(meta, sort_keys=True, default=str)


def _text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _seal(obj: dict) -> dict:
    """Add the payload's sha256 and the metadata's meta_sha256 to a dict about to be saved."""
    obj["sha256"] = payload_sha256(obj["payload"])
    obj["meta_sha256"] = _text_sha256(_meta_text(obj))
    return obj


def _json(text: str, path, what: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupted: its stored {what} is not valid JSON ({exc}); "
                              "save or train it again") from exc


# --- RNG state as tensors --------------------------------------------------------------
def rng_state() -> dict:
    """Python, NumPy, torch and CUDA RNG states as tensors/plain types (weights_only-safe)."""
    py = random.getstate()
    npst = np.random.get_state()
    state = {
        "python_version": int(py[0]),
        "python_state": torch.tensor(py[1], dtype=torch.int64),
        "python_gauss": [] if py[2] is None else [float(py[2])],
        "numpy_key": torch.from_numpy(npst[1].astype(np.int64)),
        "numpy_pos": int(npst[2]),
        "numpy_has_gauss": int(npst[3]),
        "numpy_gauss": float(npst[4]),
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    gauss = state["python_gauss"]
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_state"].tolist()),
                     gauss[0] if gauss else None))
    np.random.set_state(("MT19937", state["numpy_key"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]][: torch.cuda.device_count()])


# --- training checkpoints ---------------------------------------------------------------
def save_checkpoint(path: str | Path, *, fingerprint: str, backbone: str, epoch: int, model: dict,
                    head: dict, optimizer: dict, scaler: dict | None, history: list[dict], config: dict,
                    best: dict) -> None:
    """Write the training state after ``epoch`` complete epochs, atomically.

    ``best`` = {"epoch": int, "score": float, "model": state dict or None, "head": ...}; the
    weights are None when the best epoch is the current one (no duplicate copy).
    """
    payload = {"model": model, "head": head, "optimizer": optimizer, "scaler": scaler or {},
               "rng": rng_state(), "best_model": best.get("model") or {}, "best_head": best.get("head") or {}}
    obj = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "backbone": backbone,
           "epoch": int(epoch), "history_json": json.dumps(history), "config_json": json.dumps(config),
           "best_epoch": int(best["epoch"]), "best_score": float(best["score"]), "payload": payload}
    atomic_torch_save(_seal(obj), path)


def load_checkpoint(path: str | Path, *, fingerprint: str, backbone: str) -> dict:
    """Load a checkpoint for resuming; CheckpointError if corrupted or from another run setup."""
    obj = checked_load(path, CHECKPOINT_FORMAT)
    if obj["backbone"] != backbone:
        raise CheckpointError(f"{path} belongs to backbone {obj['backbone']!r}, not {backbone!r}; "
                              "use a new out_dir or the matching backbone")
    if obj["fingerprint"] != fingerprint:
        old = _json(obj["config_json"], path, "config").get("fingerprint_inputs", {})
        new = _current_inputs.get(fingerprint, {})
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        what = f" (differs in: {', '.join(diff)})" if diff else ""
        raise CheckpointError(f"{path} was written by a run with other settings, data or starting "
                              f"weights{what}; use a new out_dir or the matching settings to resume")
    obj["history"] = _json(obj.pop("history_json"), path, "history")
    obj["config"] = _json(obj.pop("config_json"), path, "config")
    return obj


# fingerprint -> the inputs it was computed from, so a mismatch can be explained
_current_inputs: dict[str, dict] = {}


def fingerprint(inputs: dict) -> str:
    """Stable hash of the JSON-able ``inputs`` (settings, data and weight hashes)."""
    fp = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:20]
    _current_inputs[fp] = inputs
    return fp


# --- saved aligned models -----------------------------------------------------------------
DEFAULT_HEAD = "target"  # the name of the one head of a single-dataset alignment (and of format-1 files)


class AlignedParts(NamedTuple):
    """What an aligned-model file holds, independent of its container.

    Attributes:
        backbone: the backbone's state dict.
        heads: {head name: head state dict} (one per neural target).
        head_configs: {head name: ``EncoderHead.config()``}.
        config: the run's JSON config (settings, layers, data, versions, fingerprint).
        history: one dict per epoch ([] when the file predates stored histories).
    """

    backbone: dict
    heads: dict
    head_configs: dict
    config: dict
    history: list


def _plain_state(sd: dict) -> dict:
    # clone: state dicts may share storage (tied weights), and the file must own its tensors
    return {k: v.detach().cpu().clone().contiguous() for k, v in sd.items()}


def _aligned_meta(parts: AlignedParts) -> str:
    return json.dumps({"config": parts.config, "heads": parts.head_configs, "history": parts.history})


def _payload(parts: AlignedParts) -> dict:
    return {"backbone": _plain_state(parts.backbone), "heads": {k: _plain_state(v) for k, v in parts.heads.items()}}


def _check_head_names(names) -> None:
    bad = [n for n in names if not isinstance(n, str) or not n or "." in n]
    if bad:
        raise CheckpointError(f"head names must be non-empty strings without dots, got {bad!r}; rename the targets")


def aligned_safetensors_bytes(parts: AlignedParts) -> bytes:
    """The ``.safetensors`` container: tensors under ``AlignedModel.state_dict()`` keys
    (``backbone.*``, ``heads.NAME.*``) and the config, head configs and history as metadata."""
    from safetensors.torch import save

    _check_head_names(parts.heads)
    payload = _payload(parts)
    flat = {f"backbone.{k}": v for k, v in payload["backbone"].items()}
    for name, sd in payload["heads"].items():
        flat.update({f"heads.{name}.{k}": v for k, v in sd.items()})
    meta = _aligned_meta(parts)
    return save(flat, metadata={"format": ALIGNED_FORMAT, "aligned": meta, "sha256": payload_sha256(payload),
                                "meta_sha256": _text_sha256(meta)})


def safetensors_available() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def save_aligned_file(path: str | Path, parts: AlignedParts) -> Path:
    """Write an aligned model atomically: ``.safetensors``, or else a torch file that loads
    with ``torch.load(weights_only=True)``; both carry sha256s of tensors and metadata."""
    path = Path(path)
    if path.suffix == ".safetensors":
        atomic_write_bytes(path, aligned_safetensors_bytes(parts))
    else:
        _check_head_names(parts.heads)
        atomic_torch_save(_seal({"format": ALIGNED_FORMAT, "aligned_json": _aligned_meta(parts),
                                 "payload": _payload(parts)}), path)
    return path


def _parts_from_meta(meta_text: str, payload: dict, path) -> AlignedParts:
    meta = _json(meta_text, path, "config")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path} is corrupted: its stored config is not a JSON object; save it again")
    return AlignedParts(backbone=payload["backbone"], heads=payload["heads"], head_configs=meta.get("heads") or {},
                        config=meta["config"], history=meta.get("history") or [])


def _parts_v1(model: dict, head: dict, config_text: str, path) -> AlignedParts:
    """Format 1 (one head, no stored history): the head config is the config's ``head``."""
    config = _json(config_text, path, "config")
    if not isinstance(config, dict) or "head" not in config:
        raise CheckpointError(f"{path} is corrupted: its stored config has no head description; save it again")
    return AlignedParts(backbone=model, heads={DEFAULT_HEAD: head}, head_configs={DEFAULT_HEAD: config["head"]},
                        config=config, history=[])


def _read_safetensors(path: Path) -> AlignedParts:
    try:
        from safetensors import safe_open
    except ImportError as exc:
        raise CheckpointError(f"{path} is a safetensors file but the safetensors package is missing: "
                              "pip install safetensors") from exc
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            flat = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # truncated header, not safetensors at all
        raise CheckpointError(f"{path} is corrupted or not a safetensors file ({exc}); "
                              "save or export the aligned model again") from exc
    fmt = meta.get("format")
    if fmt not in (ALIGNED_FORMAT, ALIGNED_FORMAT_V1):
        raise CheckpointError(f"{path} is not a brainalign aligned-model file (format {fmt!r}); check the path")

    def strip(prefix):
        return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}

    if fmt == ALIGNED_FORMAT_V1:
        payload, meta_text = {"model": strip("model."), "head": strip("head.")}, meta.get("config", "")
    else:
        heads: dict[str, dict] = {}
        for k, v in strip("heads.").items():
            name, _, key = k.partition(".")
            heads.setdefault(name, {})[key] = v
        payload, meta_text = {"backbone": strip("backbone."), "heads": heads}, meta.get("aligned", "")
    if payload_sha256(payload) != meta.get("sha256"):
        raise CheckpointError(f"{path} is corrupted: its content hash does not match the stored sha256; "
                              "save or export the aligned model again")
    if _text_sha256(meta_text) != meta.get("meta_sha256"):
        raise CheckpointError(f"{path} is corrupted: its stored config does not match its sha256; "
                              "save or export the aligned model again")
    if fmt == ALIGNED_FORMAT_V1:
        return _parts_v1(payload["model"], payload["head"], meta_text, path)
    return _parts_from_meta(meta_text, payload, path)


def load_aligned_file(path: str | Path) -> AlignedParts:
    """Read an aligned-model file (``.safetensors`` or torch; format 1 or 2), checking its
    sha256s. Raises CheckpointError when it is missing, corrupted or not an aligned model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: check the path")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    obj = checked_load(path, (ALIGNED_FORMAT, ALIGNED_FORMAT_V1))
    if obj["format"] == ALIGNED_FORMAT_V1:
        return _parts_v1(obj["payload"]["model"], obj["payload"]["head"], obj["config_json"], path)
    return _parts_from_meta(obj["aligned_json"], obj["payload"], path)
