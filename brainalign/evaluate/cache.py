"""On-disk cache for expensive, deterministic results (EEG decoding RDMs, zero-shot heads).

Entries are keyed by a content hash of the inputs and the settings, and each entry stores
a sha256 of its own payload: a corrupted or truncated entry is detected, reported and
recomputed -- never silently used.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from .outputs import atomic_write_bytes

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$BRAINALIGN_CACHE`` if set, else ``~/.cache/brainalign``."""
    env = os.environ.get("BRAINALIGN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "brainalign"


def content_key(*arrays: np.ndarray, settings: dict | None = None) -> str:
    """sha256 over array shapes, dtypes and bytes plus the JSON of ``settings``."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}|{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(settings or {}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def _payload_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.shape}|{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], key: str = "") -> Path:
    """Write ``arrays`` to an .npz (atomically) with their payload hash and cache ``key``."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    buf = io.BytesIO()
    np.savez(buf, __sha256__=np.array(_payload_hash(arrays)), __key__=np.array(key), **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: str | Path, key: str | None = None) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None (with a warning) if it is missing or corrupted.

    With ``key``, an entry stored under another key (a file copied or restored by hand) is
    treated as corrupted too, so it can never serve another input's results.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:  # our own files; never unpickle
            arrays = {k: z[k] for k in z.files}
        stored = str(arrays.pop("__sha256__"))
        stored_key = str(arrays.pop("__key__", ""))
    except Exception as exc:  # truncated zip, bad header, missing hash ...
        warnings.warn(f"cache entry {path} is unreadable ({type(exc).__name__}); recomputing it")
        return None
    if _payload_hash(arrays) != stored:
        warnings.warn(f"cache entry {path} failed its checksum (corrupted); recomputing it")
        return None
    if key is not None and stored_key != key:
        warnings.warn(f"cache entry {path} belongs to another input (key {stored_key or 'missing'}); recomputing it")
        return None
    return arrays


def cached_arrays(cache_dir: str | Path | None, kind: str, key: str, compute) -> tuple[dict[str, np.ndarray], bool]:
    """Return (arrays, hit): the cached entry ``kind/key.npz``, or ``compute()`` saved there.

    ``cache_dir=None`` disables caching.
    """
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / kind / f"{key}.npz"
    arrays = load_arrays(path, key)
    if arrays is not None:
        return arrays, True
    arrays = compute()
    save_arrays(path, arrays, key)
    return arrays, False
