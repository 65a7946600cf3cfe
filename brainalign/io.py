"""Every file brainalign writes goes through here: atomic writes, checked caches, JSON,
provenance, output folders and run-folder locks.

Rules this module enforces, so no other module has to:

* **All or nothing.** A file is written to a temporary name in its own folder, fsynced and
  renamed over the target (:func:`atomic_write`); any failure (disk full, a killed process,
  an error inside the writer) removes the temporary file, and the previous file, if any,
  stays as it was.
* **Checked caches.** A cache entry stores its key and a sha256 of its payload; a damaged,
  truncated or misplaced entry is reported and recomputed, never used (:func:`cached_arrays`).
* **One-line errors for output paths.** An OSError on a path the user chose (read-only
  folder, a file where a folder should be, disk full, missing mount) becomes an
  :class:`~brainalign.errors.OutputError` naming the path, the reason and the fix
  (:func:`output_errors`).
* **One writer per run folder.** :class:`RunLock` refuses a second process and takes over
  the lock of a process that died.
* **Nothing left by a failure.** :func:`new_folders_removed_on_failure` removes the folders
  a failed command created and left empty (an output folder made before a later error);
  :func:`check_free_space` refuses a write the disk cannot hold, before it starts.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io as _io
import json
import math
import os
import platform
import shutil
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import OutputError, OutputExistsError, RunLockedError

CACHE_VERSION = 1
LOCK_NAME = ".brainalign.lock"
DEFAULT_RESULTS = "brainalign-results"  # where commands and run_* functions write without an output folder

__all__ = ["atomic_write", "atomic_directory", "atomic_write_bytes", "atomic_write_text", "atomic_torch_save", "write_json",
           "read_json", "to_jsonable", "provenance", "versions", "default_cache_dir", "content_key",
           "save_arrays", "load_arrays", "cached_arrays", "prepare_output_dir", "default_out_dir",
           "ensure_dir", "output_errors", "RunLock", "CACHE_VERSION", "new_folders_removed_on_failure",
           "removes_new_folders_on_failure", "check_free_space", "DEFAULT_RESULTS"]


# --- output-path errors -------------------------------------------------------------------
_REASONS = {
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("permission denied", "choose a folder you can write to"),
    errno.EROFS: ("the file system is read-only", "choose a writable folder"),
    errno.ENOSPC: ("the disk is full", "free some space or choose a folder on another disk"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or choose a folder on another disk"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose a path whose parents are folders"),
    errno.EISDIR: ("it is a folder, not a file", "give a file path"),
    errno.ENOENT: ("a parent folder does not exist (a missing drive or mount?)", "check the path"),
    errno.EEXIST: ("it exists and is not a folder", "choose another path"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
}


def describe_os_error(exc: OSError, path, option: str | None = None) -> str:
    """'cannot write PATH: REASON; FIX (OPTION)' for an OSError raised on an output path."""
    reason, fix = _REASONS.get(exc.errno, (exc.strerror or type(exc).__name__, "check the path"))
    where = exc.filename if getattr(exc, "filename", None) else path
    with_option = f" with {option}" if option else ""
    return f"cannot write {where}: {reason}; {fix}{with_option}"


@contextlib.contextmanager
def output_errors(path, option: str | None = None) -> Iterator[None]:
    """Turn an OSError raised while writing under ``path`` into a one-line OutputError.

    ``option`` names the setting that chose the path (e.g. '--out', '--cache-dir'), so the
    message says what to change. torch reports a full disk as RuntimeError; that is mapped
    too.
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_os_error(exc, path, option)) from exc
    except RuntimeError as exc:  # torch.save: "PytorchStreamWriter failed writing file ..."
        text = str(exc)
        if "PytorchStreamWriter" in text or "No space left" in text or "file write failed" in text:
            raise OutputError(f"cannot write {path}: writing failed ({text.splitlines()[0][:120]}); the disk "
                              "may be full: free some space or choose another folder"
                              + (f" with {option}" if option else "")) from exc
        raise


def ensure_dir(path, option: str | None = None) -> Path:
    """Create folder ``path`` (and parents); OutputError naming ``option`` when that is impossible."""
    path = Path(path).expanduser()
    blocker = next((p for p in [path, *path.parents] if p.exists() and not p.is_dir()), None)
    fix = f"choose another folder{' with ' + option if option else ''}"
    if blocker is not None:
        raise OutputError(f"cannot use {path} as a folder: {blocker} is a file; {fix}")
    dangling = next((p for p in [path, *path.parents] if p.is_symlink() and not p.exists()), None)
    if dangling is not None:  # e.g. a link to a network drive or USB disk that is not mounted
        raise OutputError(f"cannot use {path} as a folder: {dangling} links to {os.readlink(dangling)}, which does "
                          f"not exist (a drive or mount that is not attached?); attach it or {fix}")
    with output_errors(path, option):
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY) if hasattr(os, "statvfs") else False
            raise PermissionError(errno.EROFS if read_only else errno.EACCES, "not writable", str(path))
    return path


def _new_root(path: Path) -> Path:
    """``path`` if it exists, else its topmost missing ancestor (what ``mkdir(parents=True)`` creates)."""
    root = path
    while not root.parent.exists() and root.parent != root:
        root = root.parent
    return root


def _folders(root: Path) -> set[str]:
    if not root.is_dir() or root.is_symlink():
        return set()
    return {str(root)} | {os.path.join(d, n) for d, names, _ in os.walk(root) for n in names}


@contextlib.contextmanager
def new_folders_removed_on_failure(*paths) -> Iterator[None]:
    """If the block fails, remove the folders under ``paths`` that it created and left empty.

    A command makes its output folder before the work that may fail (so an unwritable
    ``--out`` fails early); this undoes that folder, and any empty sub-folder or missing
    parent it made, when a later step fails. Folders that existed before, and every folder
    that holds a file (a checkpoint to resume from, a partial report), are kept. ``None``
    entries are ignored.
    """
    roots = {}
    for p in paths:
        if p is None or p is False or str(p) == "":
            continue
        root = _new_root(Path(p).expanduser().absolute())
        roots[root] = _folders(root)
    try:
        yield
    except BaseException:
        for root, before in roots.items():
            after = _folders(root)
            for folder in sorted(after - before, key=lambda f: f.count(os.sep), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # only succeeds when empty
        raise


def removes_new_folders_on_failure(*params: str, default: str | None = DEFAULT_RESULTS):
    """Decorator of an API entry point: :func:`new_folders_removed_on_failure` around the call,
    for the folders named by its arguments ``params`` (e.g. 'out', 'cache_dir'). The first
    one, when None, stands for ``default`` (the default results folder)::

        @removes_new_folders_on_failure("out", "cache_dir")
        def run_compare(models, *, out=None, cache_dir=None, ...): ...
    """
    import functools
    import inspect

    def wrap(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def call(*args, **kwargs):
            try:
                given = sig.bind_partial(*args, **kwargs).arguments
            except TypeError:
                return fn(*args, **kwargs)  # let the function report its own argument error
            paths = [given.get(p, sig.parameters[p].default if p in sig.parameters else None) for p in params]
            if paths and paths[0] is None:
                paths[0] = default
            with new_folders_removed_on_failure(*[p for p in paths if isinstance(p, (str, os.PathLike))]):
                return fn(*args, **kwargs)
        return call
    return wrap


def check_free_space(path, need_bytes: float, what: str, fix: str, option: str | None = None) -> None:
    """OutputError when the file system of ``path`` (or its nearest existing parent) has less
    than ``need_bytes`` free: raised before writing, with the estimate and the fix."""
    probe = Path(path).expanduser().absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # unknown: let the writes report any problem
    if need_bytes > free:
        with_option = f" with {option}" if option else ""
        raise OutputError(f"{what} needs about {need_bytes / 1e9:.3g} GB of disk space, but {probe} has "
                          f"{free / 1e9:.3g} GB free: {fix}, or choose a folder on a larger disk{with_option}")


# --- atomic writes ----------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:  # make the rename itself durable; not every OS/file system allows this
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, writer: Callable[[Any], None], option: str | None = None) -> Path:
    """Write ``path`` all-or-nothing: ``writer(fileobj)`` fills a temporary file in the same
    folder, which is fsynced and renamed over ``path``.

    On any failure the temporary file is removed and ``path`` is left as it was; OSErrors
    (and torch's disk-full RuntimeError) become OutputError naming the path and ``option``.
    """
    path = Path(path)
    with output_errors(path, option):
        ensure_dir(path.parent, option)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)  # reopened by name, so writers see the temporary path in fh.name
        try:
            with open(tmp, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path, data: bytes, option: str | None = None) -> Path:
    return atomic_write(path, lambda fh: fh.write(data), option)


def atomic_write_text(path, text: str, option: str | None = None) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), option)


def atomic_torch_save(obj: Any, path, option: str | None = None) -> Path:
    """torch.save through :func:`atomic_write` (loads with ``torch.load(weights_only=True)``
    when ``obj`` holds only tensors and plain types)."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh), option)



@contextlib.contextmanager
def atomic_directory(path, *, overwrite: bool = False, option: str | None = None) -> Iterator[Path]:
    """Build folder ``path`` all-or-nothing: ``with atomic_directory(p) as tmp:`` fill ``tmp``
    (a hidden sibling folder); on success it is renamed to ``path``, on any failure removed.

    An existing non-empty ``path`` is refused (OutputExistsError) unless ``overwrite``; it is
    then replaced as a whole, and put back if the swap fails. OSErrors become OutputError
    naming ``option``.
    """
    path = Path(path).expanduser()
    with_option = f" with {option}" if option else ""
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} is a file, not a folder: choose another folder{with_option}")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(f"folder {path} exists and is not empty: choose another folder{with_option}, "
                                "or pass overwrite=True (--overwrite) to replace it")
    with output_errors(path, option):
        ensure_dir(path.parent, option)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        try:
            yield tmp
        except OutputError as exc:  # name the folder being made, not its hidden temporary twin
            raise OutputError(str(exc).replace(str(tmp), str(path))) from exc
        with output_errors(path, option):
            if path.is_dir() and any(path.iterdir()):
                old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
                os.replace(path, old)  # replaces the empty placeholder folder
            elif path.is_dir():
                path.rmdir()
            try:
                os.replace(tmp, path)
            except BaseException:
                if old is not None:
                    os.replace(old, path)
                    old = None
                raise
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


# --- JSON -----------------------------------------------------------------------------------
def to_jsonable(obj):
    """Recursively convert numpy/torch/Path/dataclass values to plain JSON types (NaN/Inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return to_jsonable({k: getattr(obj, k) for k in obj.__dataclass_fields__})
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return to_jsonable(obj.tolist())
    return obj


def write_json(path, obj, option: str | None = None) -> Path:
    """JSON (indented) with numpy scalars/arrays converted and NaN written as null, atomically."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n", option)


def read_json(path, what: str = "JSON file"):
    """Parsed JSON of ``path``; DataError naming the file when it is missing or invalid."""
    from .errors import DataError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what} {path} not found: check the path") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc}); restore or delete it") from exc


# --- provenance -------------------------------------------------------------------------------
def versions() -> dict:
    """brainalign, torch, numpy and Python versions (torch only if already imported or importable)."""
    from . import __version__

    out = {"brainalign": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return out


def provenance(argv=None) -> dict:
    """Versions, time, host and the command that produced a result."""
    return {**versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
            "command": " ".join(map(str, argv)) if argv is not None else " ".join(sys.argv)}


# --- checked caches -----------------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$BRAINALIGN_CACHE`` if set, else ``~/.cache/brainalign``."""
    env = os.environ.get("BRAINALIGN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "brainalign"


def _hash_arrays(h, arrays: dict[str, np.ndarray]) -> None:
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.shape}|{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))


def content_key(*arrays: np.ndarray, settings: dict | None = None) -> str:
    """sha256 over array shapes, dtypes and bytes plus the JSON of ``settings`` (32 hex digits)."""
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    _hash_arrays(h, {f"{i:04d}": a for i, a in enumerate(arrays)})
    h.update(json.dumps(to_jsonable(settings or {}), sort_keys=True).encode())
    return h.hexdigest()[:32]


def _payload_hash(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    _hash_arrays(h, arrays)
    return h.hexdigest()


def save_arrays(path, arrays: dict[str, np.ndarray], key: str = "", option: str | None = None) -> Path:
    """Write ``arrays`` to an .npz, atomically, with their payload sha256 and the cache ``key``."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    buf = _io.BytesIO()
    np.savez(buf, __sha256__=np.array(_payload_hash(arrays)), __key__=np.array(key), **arrays)
    return atomic_write_bytes(path, buf.getvalue(), option)


def load_arrays(path, key: str | None = None) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None (with a warning) if it is missing or damaged.

    With ``key``, an entry stored under another key (a file copied or restored by hand) is
    treated as damaged too, so it can never serve another input's results.
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
        warnings.warn(f"cache entry {path} is unreadable ({type(exc).__name__}); recomputing it", stacklevel=2)
        return None
    if _payload_hash(arrays) != stored:
        warnings.warn(f"cache entry {path} failed its checksum (corrupted); recomputing it", stacklevel=2)
        return None
    if key is not None and stored_key != key:
        warnings.warn(f"cache entry {path} belongs to another input (key {stored_key or 'missing'}); "
                      "recomputing it", stacklevel=2)
        return None
    return arrays


def cached_arrays(cache_dir, kind: str, key: str, compute: Callable[[], dict],
                  option: str | None = "--cache-dir") -> tuple[dict[str, np.ndarray], bool]:
    """(arrays, hit): the checked entry ``cache_dir/kind/key.npz``, or ``compute()`` stored there.

    ``cache_dir=None`` disables caching.
    """
    if cache_dir is None:
        return compute(), False
    path = Path(cache_dir) / kind / f"{key}.npz"
    arrays = load_arrays(path, key)
    if arrays is not None:
        return arrays, True
    arrays = compute()
    save_arrays(path, arrays, key, option)
    return arrays, False


# --- output folders -----------------------------------------------------------------------------
def default_out_dir(command: str, root=DEFAULT_RESULTS) -> Path:
    """A fresh, timestamped folder name: ``brainalign-results/<command>-YYYYmmdd-HHMMSS``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{command}-{stamp}"
    k = 1
    while path.exists():  # two runs in the same second
        path = Path(root) / f"{command}-{stamp}-{k}"
        k += 1
    return path


def prepare_output_dir(out, *, overwrite: bool = False, command: str = "report", option: str = "--out") -> Path:
    """Create (or, with ``overwrite``, reuse) a report folder and return it.

    Refuses an existing file, and an existing non-empty folder unless ``overwrite`` (files
    are then replaced one by one; nothing is deleted). Unwritable locations raise
    OutputError naming ``option``.
    """
    path = Path(out).expanduser() if out is not None else default_out_dir(command)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{option} {path} is a file, not a folder: give a folder path "
                                "(it is created if missing)")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(f"output folder {path} already exists and is not empty (a previous "
                                f"report?): choose another {option}, or pass --overwrite to replace "
                                "files of the same name (nothing else is deleted)")
    return ensure_dir(path, option)


# --- run-folder locks --------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


class RunLock:
    """An exclusive lock on a folder: ``with RunLock(folder, what="run"): ...``.

    The lock is a file ``folder/.brainalign.lock`` created with O_EXCL and holding the
    owner's pid, host, start time and command. A second process gets RunLockedError naming
    the folder and the owner; a lock left by a dead process on the same host is taken over.
    ``wait`` (seconds) waits for another live owner instead of refusing (e.g. a cache that
    another process is building). ``reentrant``: a lock this process already holds counts as
    acquired (nothing is released on exit; the outer holder releases it).
    """

    def __init__(self, folder, *, what: str = "run folder", wait: float = 0.0, option: str | None = "--out",
                 reentrant: bool = False):
        self.folder = Path(folder)
        self.reentrant = bool(reentrant)
        self.path = self.folder / LOCK_NAME
        self.what, self.wait, self.option = what, float(wait), option
        self.held = False

    def _info(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "command": " ".join(sys.argv)[:500]}

    def _owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written right now, or damaged

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump(self._info(), fh)
        return True

    def _stale(self, owner: dict) -> bool:
        if not owner:  # unreadable: stale only if old (a writer finishes within milliseconds)
            try:
                return time.time() - self.path.stat().st_mtime > 10
            except FileNotFoundError:
                return True
        return owner.get("host") == socket.gethostname() and not _pid_alive(int(owner.get("pid", -1)))

    def acquire(self) -> "RunLock":
        ensure_dir(self.folder, self.option)
        deadline = time.monotonic() + self.wait
        with output_errors(self.path, self.option):
            while True:
                if self._try_create():
                    self.held = True
                    return self
                owner = self._owner()
                if owner is None:
                    continue  # released between our two calls
                if self.reentrant and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                    return self  # nested in this process (align() inside a grid run): the outer holder releases
                if self._stale(owner):
                    # take over: replace the dead owner's file atomically, then re-check we won
                    atomic_write_text(self.path, json.dumps(self._info()))
                    if (self._owner() or {}).get("pid") == os.getpid():
                        self.held = True
                        return self
                    continue
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        who = (f"process {owner.get('pid')} on {owner.get('host')} (started {owner.get('started')}: "
               f"{owner.get('command', '')[:80]})") if owner else "another process"
        raise RunLockedError(f"{self.what} {self.folder} is in use by {who}; wait for it to finish or use "
                             f"another folder{' with ' + self.option if self.option else ''} (if that process "
                             f"is gone, delete {self.path})")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        owner = self._owner()
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
