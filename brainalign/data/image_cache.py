"""Decoded-image cache: each image file is decoded once, at the size the backbone takes, into
a uint8 array on disk (n_images, 3, size, size) that every later epoch, subject, run and
process reads through a memory map.

Layout: ``ROOT/<key>/images.npy`` (a plain .npy, so ``np.load(..., mmap_mode='r')`` opens it)
and ``ROOT/<key>/meta.json`` (key, shape, decoder version, sha256 of the whole file, sha256 of
a sample, the file's size and mtime). The key covers every file's (path, size, mtime_ns), the
target size and :data:`DECODER_VERSION`, so another image set, size or decoder never gets
another's pixels.

* **Checked.** Opening verifies size and a sampled sha256 (header + 65 blocks); a file whose
  mtime changed since it was written gets a full sha256 check. A truncated or corrupted entry
  is reported with a warning and rebuilt, never read.
* **All or nothing.** The array is streamed into a temporary file (space reserved first, so a
  full disk fails before decoding) and renamed into place; ``meta.json`` is written last.
* **One builder.** Builders take a lock on the entry's folder (:class:`brainalign.io.RunLock`);
  others wait, then read what it built. Readers need no lock (files are only ever renamed
  into place), so a read-only cache folder can be shared.

Where: ``image_cache=None`` (the default) -> the process setting: ``$BRAINALIGN_IMAGE_CACHE``
(a folder, or ``off``), else ``<brainalign cache dir>/images``; a path -> that folder;
``False`` -> no cache (decode on every load). :func:`use_image_cache` sets the process
setting for a block (the CLI's ``--image-cache DIR`` / ``--no-image-cache``).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io as _io
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import OutputError, RunLockedError
from ..io import RunLock, atomic_write, content_key, default_cache_dir, ensure_dir, read_json, write_json

DECODER_VERSION = 2  # 2: 16-bit images scaled to 8 bits (1 clipped them to white)
OPTION = "--image-cache"
ENV_VAR = "BRAINALIGN_IMAGE_CACHE"
FORMAT = "brainalign-image-cache/1"
_OFF = {"0", "off", "false", "no", "none"}
_SAMPLE_BLOCKS, _BLOCK = 64, 4096
_BUILD_WAIT_S = 6 * 3600.0  # another process building a large set (minutes), never forever

_setting_stack: list = []  # use_image_cache() blocks, innermost last


@dataclass
class CacheLocation:
    """Where cached images live: ``root`` (None: caching off) and whether the user chose it."""

    root: Path | None
    explicit: bool


def resolve_location(image_cache=None) -> CacheLocation:
    """``image_cache``: None -> the process setting; True -> the default folder; False -> off;
    a path -> that folder (checked: a file there or no write access raises OutputError naming
    --image-cache)."""
    if image_cache is None:
        image_cache = _setting_stack[-1] if _setting_stack else _env_setting()
    if image_cache is False:
        return CacheLocation(None, False)
    if image_cache is None or image_cache is True:
        return CacheLocation(default_cache_dir() / "images", False)
    return CacheLocation(Path(image_cache).expanduser(), True)


def _env_setting():
    env = os.environ.get(ENV_VAR, "").strip()
    if not env:
        return None
    return False if env.lower() in _OFF else env


@contextlib.contextmanager
def use_image_cache(image_cache=None) -> Iterator[CacheLocation]:
    """Set the image cache for every ImageSet loaded inside the block (path, True, False or
    None = unchanged). A chosen folder is checked at once: a file there, or one without write
    access, raises a one-line OutputError naming --image-cache."""
    if image_cache not in (None, True, False):
        check_cache_dir(image_cache)
    _setting_stack.append(image_cache if image_cache is not None else
                          (_setting_stack[-1] if _setting_stack else _env_setting()))
    try:
        yield resolve_location(None)
    finally:
        _setting_stack.pop()


def accepts_image_cache(fn: Callable) -> Callable:
    """Give ``fn`` an ``image_cache=`` keyword (None, a folder or False) that applies to every
    ImageSet it loads (through :func:`use_image_cache`)."""
    import functools
    import inspect

    @functools.wraps(fn)
    def wrapper(*args, image_cache=None, **kwargs):
        with use_image_cache(image_cache):
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    extra = inspect.Parameter("image_cache", inspect.Parameter.KEYWORD_ONLY, default=None)
    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind == p.VAR_KEYWORD), len(params))
    wrapper.__signature__ = sig.replace(parameters=params[:at] + [extra] + params[at:])
    return wrapper


def check_cache_dir(path) -> Path:
    """Create ``path`` if needed; OutputError naming --image-cache if it cannot hold a cache."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{OPTION} {path} is a file, not a folder: give a folder for the decoded-image "
                          f"cache (created if missing), or pass --no-image-cache")
    return ensure_dir(path, OPTION)


def cache_key(paths: Sequence[Path], size: int) -> str:
    """Key of the decoded set: every file's (absolute path, bytes, mtime_ns), the size and the
    decoder version. Raises FileNotFoundError for a missing file."""
    files = []
    for p in paths:
        st = os.stat(p)
        files.append(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}")
    h = hashlib.sha256("\n".join(files).encode("utf-8", "surrogateescape")).hexdigest()
    return content_key(settings={"files": h, "n": len(files), "size": int(size), "decoder": DECODER_VERSION,
                                 "format": FORMAT})


class CachedImages:
    """An opened, checked cache entry: ``array`` is the read-only (n, 3, size, size) uint8 memmap."""

    def __init__(self, array: np.ndarray, path: Path, meta: dict):
        self.array, self.path, self.meta = array, path, meta

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Images ``rows`` as a new uint8 array (k, 3, size, size)."""
        return np.take(self.array, np.asarray(rows, dtype=np.int64), axis=0)

    def verify(self) -> bool:
        """Full sha256 check of the file against the one recorded when it was built."""
        return _file_sha256(self.path) == self.meta.get("sha256")


# --- hashing ----------------------------------------------------------------------------------
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _sample_sha256(path: Path, header_len: int) -> str:
    """sha256 of the header and 65 blocks of 4 KiB spread over the file (the last one at its end)."""
    size = os.path.getsize(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(header_len))
        body = max(size - header_len, 0)
        offsets = {header_len + (body * k) // _SAMPLE_BLOCKS for k in range(_SAMPLE_BLOCKS)}
        offsets.add(max(size - _BLOCK, header_len))
        for off in sorted(offsets):
            fh.seek(off)
            h.update(fh.read(_BLOCK))
    return h.hexdigest()


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


# --- opening ------------------------------------------------------------------------------------
def open_cached(folder: Path, key: str, shape: tuple[int, ...]) -> CachedImages | None:
    """The checked entry in ``folder``, or None (with a warning when one exists but is damaged,
    stale or of another set)."""
    data, meta_path = folder / "images.npy", folder / "meta.json"
    if not meta_path.exists():
        return None  # never built, or a build that did not finish (meta.json is written last)

    def damaged(why: str) -> None:
        warnings.warn(f"image cache {data} {why}; rebuilding it", stacklevel=4)
        return None

    try:
        meta = read_json(meta_path, "image cache metadata")
    except Exception:  # noqa: BLE001 - any unreadable metadata means: rebuild
        return damaged("has unreadable metadata")
    if meta.get("format") != FORMAT or meta.get("key") != key or meta.get("decoder") != DECODER_VERSION:
        return damaged("belongs to another image set, size or decoder")
    if tuple(meta.get("shape", ())) != tuple(shape):
        return damaged(f"has shape {meta.get('shape')}, expected {list(shape)}")
    try:
        st = data.stat()
    except FileNotFoundError:
        return damaged("is missing")
    if st.st_size != meta.get("bytes"):
        return damaged(f"is truncated or padded ({st.st_size} bytes, expected {meta.get('bytes')})")
    header_len = int(meta["bytes"]) - int(np.prod(shape))
    if _sample_sha256(data, header_len) != meta.get("sample_sha256"):
        return damaged("failed its checksum (corrupted)")
    if st.st_mtime_ns != meta.get("mtime_ns") and _file_sha256(data) != meta.get("sha256"):
        return damaged("was modified since it was built (checksum differs)")
    try:
        arr = np.load(data, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return damaged(f"is unreadable ({exc})")
    if arr.dtype != np.uint8 or tuple(arr.shape) != tuple(shape):
        return damaged(f"holds {arr.dtype} {arr.shape}")
    return CachedImages(arr, data, meta)


# --- building -----------------------------------------------------------------------------------
def _reserve(fh, n_bytes: int) -> None:
    """Reserve the file's space now, so a full disk fails before any decoding."""
    try:
        os.posix_fallocate(fh.fileno(), 0, n_bytes)
    except AttributeError:  # not on this OS
        pass
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        # EOPNOTSUPP/EINVAL: the file system cannot reserve; writes will report a full disk


def _decoded_chunks(paths: Sequence[Path], size: int, decode: Callable, workers: int,
                    chunk: int) -> Iterator[np.ndarray]:
    """(k, 3, size, size) uint8 chunks in file order, decoded by ``workers`` threads (PIL
    releases the GIL while decoding and resizing)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), chunk):
            imgs = list(pool.map(lambda p: decode(p, size), paths[start:start + chunk]))
            yield np.stack(imgs)


def build_cache(folder: Path, key: str, paths: Sequence[Path], size: int, decode: Callable, *,
                workers: int | None = None, progress: bool = True) -> CachedImages:
    """Decode ``paths`` into ``folder/images.npy`` (atomically) and write ``meta.json`` last.

    ``decode(path, size) -> (3, size, size) uint8``. OSErrors (disk full, no permission)
    become OutputError naming --image-cache; nothing half-written is left behind.
    """
    from ..progress import log
    from ..progress import progress as _progress

    n = len(paths)
    shape = (n, 3, int(size), int(size))
    header = _npy_header(shape)
    total = len(header) + int(np.prod(shape))
    workers = workers or min(8, os.cpu_count() or 1)
    chunk = 64
    sha = hashlib.sha256()
    data, meta_path = folder / "images.npy", folder / "meta.json"
    with contextlib.suppress(FileNotFoundError):
        meta_path.unlink()  # an entry being replaced is invalid from now on
    for left in folder.glob(".images.npy.*.tmp"):  # a killed builder's partial file (we hold the lock)
        with contextlib.suppress(OSError):
            left.unlink()
    log(f"image cache: decoding {n} images at {size} px into {data} ({total / 1e9:.2f} GB)")

    def writer(fh) -> None:
        _reserve(fh, total)
        fh.write(header)
        sha.update(header)
        chunks = _decoded_chunks(paths, size, decode, workers, chunk)
        for arr in _progress(chunks, total=-(-n // chunk), enabled=progress, desc="image cache", unit="chunk"):
            b = np.ascontiguousarray(arr).tobytes()
            fh.write(b)
            sha.update(b)

    atomic_write(data, writer, option=OPTION)
    st = data.stat()
    meta = {"format": FORMAT, "key": key, "shape": list(shape), "dtype": "uint8", "size": int(size),
            "decoder": DECODER_VERSION, "n_images": n, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": sha.hexdigest(), "sample_sha256": _sample_sha256(data, len(header)),
            "first_file": str(paths[0]) if n else None}
    write_json(meta_path, meta, option=OPTION)
    opened = open_cached(folder, key, shape)
    if opened is None:  # pragma: no cover - only if the file changed under us
        raise OutputError(f"the image cache {data} could not be read back after writing it; check the disk "
                          f"or choose another folder with {OPTION}")
    return opened


def open_or_build(paths: Sequence[Path], size: int, location: CacheLocation, decode: Callable, *,
                  progress: bool = True) -> CachedImages | None:
    """The cache entry of ``paths`` at ``size``: opened if valid, else built (one builder per
    entry; others wait for it). None when caching is off, or when the default folder cannot
    be used (a warning says why; a folder chosen with --image-cache raises instead)."""
    if location.root is None or not paths:
        return None
    key = cache_key(paths, size)
    folder = location.root / key
    shape = (len(paths), 3, int(size), int(size))
    found = open_cached(folder, key, shape)
    if found is not None:
        return found
    try:
        if location.explicit:
            check_cache_dir(location.root)
        lock = RunLock(folder, what="image cache entry", wait=0.0, option=OPTION)
        try:
            lock.acquire()
        except RunLockedError:
            from ..progress import log

            log(f"image cache: another process is building {folder}; waiting for it")
            lock = RunLock(folder, what="image cache entry", wait=_BUILD_WAIT_S, option=OPTION)
            lock.acquire()
        with contextlib.closing(_Releaser(lock)):
            found = open_cached(folder, key, shape)  # built while we waited
            return found if found is not None else build_cache(folder, key, paths, size, decode,
                                                               progress=progress)
    except OutputError as exc:
        if location.explicit:
            raise
        warnings.warn(f"the default image cache folder cannot be used ({exc}); decoding images without a "
                      f"cache (choose a folder with {OPTION} DIR / image_cache=DIR, or pass "
                      "--no-image-cache / image_cache=False to silence this)", stacklevel=3)
        return None


class _Releaser:
    def __init__(self, lock: RunLock):
        self.lock = lock

    def close(self) -> None:
        self.lock.release()


class PathSource:
    """The decoded pixels of a list of image files, shared by an ImageSet and its subsets.

    The cache entry is opened (or built) on the first read and then kept; without a cache
    (``image_cache=False`` or ``size=None``) each read decodes the files.
    """

    def __init__(self, paths: Sequence[Path], size: int | None, image_cache, decode: Callable):
        self.paths, self.size, self.image_cache, self.decode = list(paths), size, image_cache, decode
        self._store: CachedImages | None | bool = None  # None: not resolved yet; False: no cache
        self._lock = threading.Lock()

    def opened(self) -> bool:
        """True once the first read has opened (or built) the cache entry, or found none."""
        return self._store is not None

    def store(self) -> CachedImages | None:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    opened = None
                    if self.size is not None:  # native sizes cannot be stacked into one array
                        opened = open_or_build(self.paths, self.size, resolve_location(self.image_cache),
                                               self.decode)
                    self._store = opened if opened is not None else False
        return self._store or None

    def read(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (k, 3, H, W) of ``rows`` (indices into ``paths``)."""
        store = self.store()
        if store is not None:
            return store.read(rows)
        return np.stack([self.decode(self.paths[int(i)], self.size) for i in rows])

    def __getstate__(self):  # pickled into worker processes: they reopen the cache themselves
        state = dict(self.__dict__)
        state["_store"], state["_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def build_image_cache(images, size: int | None = None, folder=None, *, progress: bool = True):
    """Decode ``images`` (an ImageSet of files) into the cache now, instead of on the first read,
    and return the ImageSet that reads from it.

    ``size``: the side in px (default: the set's own size); ``folder``: the cache folder (None:
    the process setting). Raises DataError for an in-memory set or one without a size.
    """
    from ..errors import DataError
    from .images import ImageSet

    if not isinstance(images, ImageSet) or images.paths is None:
        raise DataError("build_image_cache needs an ImageSet of image files (in-memory images need no cache)")
    size = int(size if size is not None else images.size or 0)
    if size < 1:
        raise DataError("build_image_cache needs a size: pass size=N (the backbone's input size)")
    location = resolve_location(folder if folder is not None else None)
    if location.root is None:
        raise DataError("the image cache is turned off (--no-image-cache / BRAINALIGN_IMAGE_CACHE=off); pass "
                        "folder=DIR to build one anyway")
    out = ImageSet(paths=images.paths, size=size, cache=location.root if folder is not None else None)
    out._source._store = open_or_build(out.paths, size, location, out._source.decode, progress=progress) or False
    return out
