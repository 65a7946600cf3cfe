"""Stimulus identifiers -> image files, the one way every source pairs responses with images.

Ids are matched to files by name ('<id>.<ext>' or the exact file name) or through an
explicit mapping {id: path}; never by position in a folder listing, which silently pairs
the wrong images whenever a file is missing, added or sorted differently.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

__all__ = ["IMAGE_SUFFIXES", "image_files", "match_images"]


def image_files(folder) -> list[Path]:
    """The image files of ``folder``, sorted by name; DataError if it is missing or has none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found: pass a folder of image files (or a mapping {{id: path}})")
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.name)
    if not files:
        raise DataError(f"image folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def match_images(ids: Sequence, images, *, source: str, what: str = "stimulus id") -> list[Path]:
    """One image path per id, from a mapping {id: path} or a folder of files named after the ids.

    Args:
        ids: (n,) identifiers (strings; numbers are compared by their text, '12' == 12).
        images: a folder, or a mapping {id: path}.
        source: named in errors (e.g. the data file).
        what: what the ids are, for errors ('stimulus id', 'event').
    """
    ids = [str(i) for i in np.asarray(ids).ravel()]
    if isinstance(images, Mapping):
        lookup = {_key(k): Path(v) for k, v in images.items()}
        missing = [i for i in ids if i not in lookup]
        if missing:
            raise DataError(f"the image mapping lacks {len(missing)} {what}(s) of {source}, e.g. "
                            f"{', '.join(missing[:3])}; add them")
        return [lookup[i] for i in ids]
    files = image_files(images)
    by_name = {p.name: p for p in files}
    by_stem = {p.stem: p for p in files}
    out = [by_name.get(i) or by_stem.get(i) for i in ids]
    missing = [i for i, p in zip(ids, out) if p is None]
    if missing:
        numeric = all(re.fullmatch(r"\d+", i) for i in ids)
        why = (" (integer ids are never matched to files by their sorted order: that pairs the wrong images "
               "silently)" if numeric else "")
        raise DataError(f"no image in {Path(images)} for {len(missing)} {what}(s) of {source}, e.g. "
                        f"{', '.join(missing[:3])}{why}; name the files '<id>.<ext>' or pass a mapping {{id: path}}")
    return out


def _key(k) -> str:
    """Mapping keys as text: 12, 12.0 and '12' all match the id '12'."""
    if isinstance(k, (float, np.floating)) and float(k).is_integer():
        return str(int(k))
    return str(k)
