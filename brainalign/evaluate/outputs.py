"""Safe output folders and atomic file writes for reports.

Rules: ``--out`` must be a folder (never a file); an existing non-empty folder is only
reused with ``overwrite=True``, and even then files are replaced one by one -- nothing
is ever deleted, so a previous report is never lost by accident.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ..errors import OutputExistsError


def default_out_dir(command: str, root: str | Path = "brainalign-results") -> Path:
    """A fresh, timestamped folder name: ``brainalign-results/<command>-YYYYmmdd-HHMMSS``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{command}-{stamp}"
    k = 1
    while path.exists():  # two runs in the same second
        path = Path(root) / f"{command}-{stamp}-{k}"
        k += 1
    return path


def prepare_output_dir(out: str | Path | None, *, overwrite: bool = False, command: str = "report") -> Path:
    """Create (or, with ``overwrite``, reuse) the output folder and return it.

    Raises OutputExistsError when ``out`` is an existing file, or an existing non-empty
    folder and ``overwrite`` is False.
    """
    path = Path(out) if out is not None else default_out_dir(command)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"--out {path} is a file, not a folder: give a folder path "
                                "(it is created if missing)")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(f"output folder {path} already exists and is not empty (a previous "
                                "report?): choose another --out, or pass --overwrite to replace "
                                "files of the same name (nothing else is deleted)")
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise OutputExistsError(f"cannot create output folder {path}: {parent} is a file")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj) -> Path:
    """JSON with numpy scalars/arrays converted; NaN written as null (valid JSON)."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def to_jsonable(obj):
    """Recursively convert numpy/torch/Path values to plain JSON types (NaN/Inf -> None)."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return to_jsonable(obj.tolist())
    return obj
