"""Weight files: local checkpoints (safe loading) and pretrained downloads that fail fast offline.

Local files are read with ``torch.load(weights_only=True)`` (or safetensors), so a
checkpoint cannot run code. Pretrained downloads use each source's normal cache (torch.hub
for URLs, the Hugging Face cache for timm/open_clip); with no network and no cached copy
they raise :class:`MissingWeightsError` at once, naming the file and the fixes.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from ..errors import CheckpointError, MissingWeightsError

OFFLINE_ENV = ("BRAINALIGN_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")
FIXES = ("pass weights=PATH (CLI: --weights PATH) with a local copy of the file, or use "
         "pretrained=False (CLI: --no-pretrained) for randomly initialised weights")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (.pt/.pth/.bin via torch, or .safetensors).

    Accepts a plain state dict or a checkpoint dict holding it under 'state_dict',
    'model_state_dict', 'model' or 'module'; strips a DataParallel ``module.`` prefix.
    Non-tensor entries are dropped. Raises MissingWeightsError (no file) or
    CheckpointError (unreadable, or no tensors inside).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"weights file not found: {path}; check the path (weights=PATH / --weights PATH)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncation, foreign formats all land here
        raise CheckpointError(f"cannot read weights file {path}: {_load_failure(exc)}. The file is "
                              "corrupted, truncated or not a PyTorch/safetensors checkpoint; re-download "
                              "or re-save it (torch.save(model.state_dict(), path))") from exc
    return _unwrap_state_dict(obj, path)


def load_failure_reason(exc: BaseException) -> str:
    """One line on why torch.load/safetensors failed. torch's own weights_only message spans many
    lines and advises weights_only=False, which would run the file's code: never repeat it."""
    if type(exc).__name__ == "UnpicklingError" or "weights_only" in str(exc):
        return ("it holds pickled Python objects besides tensors, which are refused because loading "
                "them could run arbitrary code (only tensors and plain containers are read)")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


_load_failure = load_failure_reason


def _unwrap_state_dict(obj, path) -> dict[str, torch.Tensor]:
    for _ in range(3):  # nested checkpoints, e.g. {'model': {'state_dict': ...}}
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict; save "
                              "model.state_dict() rather than the model object")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{path} contains no tensors (keys: {list(obj)[:8]}); it is not a model checkpoint")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint"
                     ) -> tuple[list[str], list[str], list[str]]:
    """Compare ``state_dict`` with ``model``: (missing keys, unexpected keys, shape mismatches).

    BatchNorm's ``num_batches_tracked`` counters are not required: checkpoints saved by PyTorch
    < 0.4.1 (such as the published CORnet-S file) have none, and they only matter for
    ``momentum=None``; the model keeps its own.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: {tuple(state_dict[k].shape)} in {source} vs {tuple(own[k].shape)} in model"
              for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    return missing, unexpected, shapes


def _list(items: list[str], n: int = 5) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_state_dict_into(model: nn.Module, state_dict: dict[str, torch.Tensor], strict: bool = True,
                         source: str = "checkpoint") -> nn.Module:
    """Load ``state_dict`` into ``model`` with a readable CheckpointError on any mismatch.

    Shape mismatches are errors even with ``strict=False`` (they cannot be loaded).
    """
    missing, unexpected, shapes = check_state_dict(model, state_dict, source)
    problems = []
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_list(shapes, 3)}")
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s): {_list(missing)}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_list(unexpected)}")
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems)
                              + ". It was probably saved from another backbone or configuration: pick the "
                              "matching backbone, or pass the right weights file")
    model.load_state_dict(state_dict, strict=False)
    return model


def load_weights_into(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load the weights file ``path`` into ``model`` (see :func:`load_state_dict_file`)."""
    return load_state_dict_into(model, load_state_dict_file(path), strict=strict, source=str(path))


# -- pretrained downloads --------------------------------------------------------------------

def is_offline() -> bool:
    """True when BRAINALIGN_OFFLINE, HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set to a true value."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in OFFLINE_ENV)


def can_reach(url_or_host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host (port 443/80) opens within ``timeout`` seconds."""
    parsed = urlparse(url_or_host if "//" in url_or_host else f"//{url_or_host}")
    host = parsed.hostname
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    if not host:
        return False
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # in a thread: the DNS lookup inside create_connection has no timeout of its own
    thread = threading.Thread(target=probe, daemon=True, name="brainalign-can-reach")
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def torch_hub_checkpoint_dir() -> Path:
    """torch.hub's checkpoint cache ($TORCH_HOME/hub/checkpoints by default)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_cached_file(repo_id: str, filenames, cache_dir: str | Path | None = None) -> Path | None:
    """The first of ``filenames`` cached locally for HF repo ``repo_id``, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    cache_dir = Path(cache_dir) if cache_dir is not None else hf_cache_dir()
    for fn in filenames:
        try:
            found = try_to_load_from_cache(repo_id, fn, cache_dir=str(cache_dir))
        except Exception:
            found = None
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found)
    return None


def missing_weights_error(what: str, source: str, cache: str | Path, reason: str = "offline") -> MissingWeightsError:
    """The standard error for pretrained weights that are neither cached nor downloadable."""
    return MissingWeightsError(f"pretrained weights for {what} are not cached (looked in {cache}) and cannot be "
                               f"downloaded from {source} ({reason}). Fixes: connect to the internet once, or "
                               f"{FIXES}")


def ensure_online(what: str, source: str, cache: str | Path) -> None:
    """Raise MissingWeightsError fast if a download of ``source`` cannot work right now."""
    if is_offline():
        env = next(k for k in OFFLINE_ENV if os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on"))
        raise missing_weights_error(what, source, cache, f"offline mode: {env} is set")
    if not can_reach(source):
        raise missing_weights_error(what, source, cache, "no network connection")


def pretrained_state_dict_from_url(url: str, file_name: str | None = None, what: str = "this backbone",
                                   check_hash: bool = False) -> dict[str, torch.Tensor]:
    """Download (once, into torch.hub's cache) and read a state dict from ``url``.

    Raises MissingWeightsError at once when the file is not cached and there is no network.
    """
    file_name = file_name or os.path.basename(urlparse(url).path)
    cached = torch_hub_checkpoint_dir() / file_name
    if not cached.is_file():
        ensure_online(what, url, cached)
        try:
            torch.hub.load_state_dict_from_url(url, model_dir=str(cached.parent), map_location="cpu",
                                               progress=True, check_hash=check_hash, file_name=file_name,
                                               weights_only=True)
        except Exception as exc:
            if cached.is_file():  # downloaded but unreadable: let the local reader explain
                return load_state_dict_file(cached)
            raise missing_weights_error(what, url, cached, f"download failed: {type(exc).__name__}: {exc}") from exc
    try:
        return load_state_dict_file(cached)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (cached download {cached}: delete it to download again)") from exc
