"""Image collections: paths on disk or an in-memory tensor, loaded lazily in batches.

Images are handed around as float tensors in [0, 1], shape (n, 3, H, W); a backbone's
:class:`~brainalign.models.spec.Preprocessing` resizes and normalises them. Image files are
decoded once into the decoded-image cache (:mod:`brainalign.data.image_cache`) and read
from there as uint8; the float conversion happens per batch, on the device that runs the
model (never for the whole set).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import DataError
from .image_cache import PathSource


class ImageSet:
    """An ordered set of images, from file paths or a (n, 3, H, W) / (n, H, W, 3) array.

    ``load(indices)`` returns float32 (len(indices), 3, H, W) in [0, 1]. Path-based sets
    are resized to ``size`` on load (default: 224) so batches stack, and decoded through the
    image cache (``cache``: None = the process setting, a folder, or False = decode on every
    load; see :mod:`brainalign.data.image_cache`). A subset taken after the first load reads
    its parent's cache entry; one taken before gets its own entry of just its images (so
    ``subset`` of a large folder never decodes the whole folder).
    """

    def __init__(self, paths: Sequence[str | Path] | None = None, tensor: torch.Tensor | None = None,
                 size: int | None = None, cache=None):
        if (paths is None) == (tensor is None):
            raise DataError("ImageSet needs exactly one of paths= or tensor=")
        self.paths = [Path(p) for p in paths] if paths is not None else None
        self.tensor = _as_float_tensor(tensor) if tensor is not None else None
        self.size = size
        self.cache = cache
        self._source = PathSource(self.paths, size, cache, decode_image) if self.paths is not None else None
        self._rows = np.arange(len(self.paths)) if self.paths is not None else None  # rows of _source
        self._resident: torch.Tensor | None = None  # the whole set on a device (to_device)

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], size: int | None = 224, check: bool = True,
                   cache=None) -> "ImageSet":
        paths = [Path(p) for p in paths]
        if check:
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
                raise DataError(f"image file not found: {', '.join(missing[:3])}{more}; "
                                "check the image folder path")
        return cls(paths=paths, size=size, cache=cache)

    @classmethod
    def from_array(cls, images) -> "ImageSet":
        return cls(tensor=images)

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else int(self.tensor.shape[0])

    def _index(self, indices) -> np.ndarray:
        if indices is None:  # all images (np.arange(n)[None] would add an axis)
            return np.arange(len(self))
        if isinstance(indices, torch.Tensor):
            indices = indices.cpu().numpy()
        if isinstance(indices, (list, tuple, range, np.ndarray)):
            return np.atleast_1d(np.asarray(indices, dtype=np.int64))
        return np.atleast_1d(np.arange(len(self))[indices])

    def load(self, indices: Sequence[int] | np.ndarray | slice | None = None,
             device: str | torch.device | None = None) -> torch.Tensor:
        """Images ``indices`` as float32 (k, 3, H, W) in [0, 1], on ``device`` (default: where
        the set is: the CPU, or the device of :meth:`to_device`). uint8 pixels are moved first
        and converted there."""
        idx = self._index(indices)
        if self._resident is not None:
            x = self._resident[torch.as_tensor(idx, device=self._resident.device)]
        elif self.tensor is not None:
            x = self.tensor[torch.as_tensor(idx, dtype=torch.long)]
        else:
            x = torch.from_numpy(self._source.read(self._rows[idx]))
        if device is not None:
            x = x.to(device, non_blocking=True)
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    def load_uint8(self, indices=None) -> torch.Tensor:
        """Images ``indices`` as uint8 (k, 3, H, W) (in-memory float images are rounded to 1/255)."""
        idx = self._index(indices)
        if self._resident is not None and self._resident.dtype == torch.uint8:
            return self._resident[torch.as_tensor(idx, device=self._resident.device)]
        if self.paths is not None:
            return torch.from_numpy(self._source.read(self._rows[idx]))
        return self.load(idx).mul(255.0).round_().to(torch.uint8)

    def batches(self, batches: Sequence, device: str | torch.device | None = None
                ) -> Iterator[tuple[object, torch.Tensor]]:
        """Yield ``(indices, load(indices, device))`` for each index batch while a worker
        thread reads the next one (files and cache reads overlap the model's work)."""
        from concurrent.futures import ThreadPoolExecutor

        batches = list(batches)
        if not batches:
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            nxt = pool.submit(self.load, batches[0], device)
            for i, idx in enumerate(batches):
                x = nxt.result()
                if i + 1 < len(batches):
                    nxt = pool.submit(self.load, batches[i + 1], device)
                yield idx, x

    def to_device(self, device: str | torch.device | None = None) -> "ImageSet":
        """This set, held whole on ``device`` (uint8 for image files: 16,540 images at 224 px
        take 2.5 GB), so each batch is indexed and converted there with no host work. Raises
        ResourceError when it does not fit."""
        from ..device import resolve_device

        dev = resolve_device(device)
        new = copy.copy(self)
        if self._resident is not None:
            new._resident = self._resident.to(dev)
            return new
        if self.tensor is not None:
            new._resident = self.tensor.to(dev)
            return new
        if self.size is None:
            raise DataError("to_device needs images of one size: give ImageSet.from_paths(..., size=N)")
        n, shape = len(self), (3, int(self.size), int(self.size))
        _check_fits(n * int(np.prod(shape)), dev, n)
        out = torch.empty((n, *shape), dtype=torch.uint8, device=dev)
        for start in range(0, n, 512):
            rows = self._rows[start:start + 512]
            out[start:start + len(rows)].copy_(torch.from_numpy(self._source.read(rows)), non_blocking=False)
        new._resident = out
        return new

    def with_cache(self, cache) -> "ImageSet":
        """The same images read through another image cache setting (folder, None or False)."""
        if self.paths is None or cache is None:
            return self
        new = copy.copy(self)
        new.cache = cache
        new._source = PathSource(self.paths, self.size, cache, self._source.decode)
        new._rows = np.arange(len(self.paths))
        return new

    def subset(self, indices) -> "ImageSet":
        idx = self._index(indices)
        new = copy.copy(self)
        if self.tensor is not None:
            new.tensor = self.tensor[torch.as_tensor(idx, dtype=torch.long)]
        else:
            new.paths = [self.paths[int(i)] for i in idx]
            if self._source.opened():  # the entry exists: the subset reads the same one
                new._rows = self._rows[idx]
            else:  # nothing decoded yet: the subset's own entry holds only the images it uses
                new._source = PathSource(new.paths, self.size, self.cache, self._source.decode)
                new._rows = np.arange(len(new.paths))
        if self._resident is not None:
            new._resident = self._resident[torch.as_tensor(idx, device=self._resident.device)]
        return new

    def fingerprint(self) -> str:
        """A short content key (paths + sizes + mtimes, or tensor bytes) for caches."""
        import hashlib

        h = hashlib.sha256()
        if self.tensor is not None:
            h.update(str(tuple(self.tensor.shape)).encode())
            h.update(self.tensor.contiguous().numpy().tobytes())
        else:
            for p in self.paths:
                st = p.stat()
                h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            h.update(str(self.size).encode())
        return h.hexdigest()[:16]


def _check_fits(n_bytes: int, device: torch.device, n: int) -> None:
    from ..errors import ResourceError
    from ..resources import check_memory

    what = f"{n} images held on {device} as uint8"
    fix = "do not keep the images on the device (images_on_device=False / no --images-on-device)"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if n_bytes > 0.8 * free:
            raise ResourceError(f"{what} need {n_bytes / 1e9:.2f} GB, more than 80 % of the {free / 1e9:.2f} GB "
                                f"free on {device}: {fix}")
    else:
        check_memory(n_bytes, what, fix)


def _as_float_tensor(images) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
    if t.ndim != 4:
        raise DataError(f"images must be 4-D (n, 3, H, W) or (n, H, W, 3), got shape {tuple(t.shape)}")
    if t.shape[1] != 3 and t.shape[-1] == 3:
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] != 3:
        raise DataError(f"images must have 3 colour channels, got shape {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    t = t.float().contiguous()
    if not torch.isfinite(t).all():
        raise DataError("images contain NaN or Inf values")
    lo, hi = (float(t.min()), float(t.max())) if t.numel() else (0.0, 0.0)
    if lo < -1e-3 or hi > 1 + 1e-3:  # 0-255 floats or already-normalised images
        raise DataError(f"float images must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]: divide 0-255 "
                        "images by 255 (or pass uint8), and pass images before mean/std normalisation "
                        "(each backbone normalises them itself)")
    return t


def _to_8bit(im):
    """16- and 32-bit integer images ('I;16', 'I;16B', 'I', ...) scaled to 8 bits: PIL's own
    convert('RGB') clips them, turning a 16-bit image white. 'F' (float) images are taken as
    [0, 1] if they fit, else scaled by their maximum."""
    from PIL import Image

    if not (im.mode.startswith("I") or im.mode == "F"):
        return im
    a = np.asarray(im)
    if im.mode == "F":
        a = a.astype(np.float64)
        top = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else max(float(np.nanmax(a)) if a.size else 1.0, 1e-12)
        a = np.clip(np.nan_to_num(a) / top, 0, 1) * 255.0
    else:  # 16-bit files ('I;16*'), and 32-bit 'I' images holding 16-bit values (older PIL)
        top = 65535.0 if im.mode.startswith("I;16") or (a.size and int(a.max()) > 255) else 255.0
        a = np.clip(a.astype(np.float64), 0, top) * (255.0 / top)
    return Image.fromarray(np.rint(a).astype(np.uint8), mode="L")


def decode_image(path: Path, size: int | None) -> np.ndarray:
    """One image file -> uint8 (3, H, W), resized to size x size (bilinear) unless ``size`` is None.

    Any mode PIL opens (grayscale, RGBA, CMYK, palette, 16-bit) becomes RGB; 16-bit images
    are scaled, not clipped.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = _to_8bit(im).convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"image file not found: {path}; check the image folder path") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; replace or remove the file") from exc
    return np.ascontiguousarray(arr.transpose(2, 0, 1))

