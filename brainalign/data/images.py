"""Image collections: paths on disk or an in-memory tensor, loaded lazily in batches.

Images are handed around as float tensors in [0, 1], shape (n, 3, H, W); a backbone's
:class:`~brainalign.models.spec.Preprocessing` resizes and normalises them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError


class ImageSet:
    """An ordered set of images, from file paths or a (n, 3, H, W) / (n, H, W, 3) array.

    ``load(indices)`` returns float32 (len(indices), 3, H, W) in [0, 1]. Path-based sets
    are resized to ``size`` on load (default: 224) so batches stack.
    """

    def __init__(self, paths: Sequence[str | Path] | None = None, tensor: torch.Tensor | None = None,
                 size: int | None = None):
        if (paths is None) == (tensor is None):
            raise DataError("ImageSet needs exactly one of paths= or tensor=")
        self.paths = [Path(p) for p in paths] if paths is not None else None
        self.tensor = _as_float_tensor(tensor) if tensor is not None else None
        self.size = size

    @classmethod
    def from_paths(cls, paths: Sequence[str | Path], size: int | None = 224, check: bool = True) -> "ImageSet":
        paths = [Path(p) for p in paths]
        if check:
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
                raise DataError(f"image file not found: {', '.join(missing[:3])}{more}; "
                                "check the image folder path")
        return cls(paths=paths, size=size)

    @classmethod
    def from_array(cls, images) -> "ImageSet":
        return cls(tensor=images)

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else int(self.tensor.shape[0])

    def load(self, indices: Sequence[int] | np.ndarray | slice | None = None) -> torch.Tensor:
        """Images ``indices`` as float32 (k, 3, H, W) in [0, 1]."""
        if indices is None:  # all images (np.arange(n)[None] would add an axis)
            idx = np.arange(len(self))
        else:
            idx = np.arange(len(self))[indices] if not isinstance(indices, (list, np.ndarray)) else np.asarray(indices)
        if self.tensor is not None:
            return self.tensor[torch.as_tensor(np.ascontiguousarray(idx), dtype=torch.long)]
        return torch.stack([_read_image(self.paths[int(i)], self.size) for i in np.atleast_1d(idx)])

    def subset(self, indices) -> "ImageSet":
        idx = np.asarray(indices)
        if self.tensor is not None:
            return ImageSet(tensor=self.tensor[torch.as_tensor(np.ascontiguousarray(idx), dtype=torch.long)], size=self.size)
        return ImageSet(paths=[self.paths[int(i)] for i in idx], size=self.size)

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


def _read_image(path: Path, size: int | None) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise DataError(f"image file not found: {path}; check the image folder path") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; replace or remove the file") from exc
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
