"""File-based sources: one file per subject (and split) in a folder, or a single file."""
from __future__ import annotations

import re
from pathlib import Path

from brainalign.data._eeg import check_split
from brainalign.data.subjects import subject_number
from brainalign.errors import DataError

_SUBJECT = re.compile(r"sub-?(\d+)", re.IGNORECASE)
_SPLIT_WORD = {"training": "train", "test": "test"}


def subject_in_name(path: Path) -> int | None:
    """The subject number in a 'sub-XX...' file name, or None."""
    m = _SUBJECT.search(Path(path).name)
    return int(m.group(1)) if m else None


def has_files(folder: Path, suffixes: tuple) -> bool:
    return folder.is_dir() and any(_matches(p, suffixes) for p in folder.iterdir())


def subject_file(location, subject, split: str | None, suffixes: tuple, what: str) -> Path:
    """The file of ``subject`` (and ``split``) for a source location.

    A file is used as it is. In a folder the file is 'sub-XX*<suffix>'; when the names say
    their split ('test' / 'train', any case), the one of ``split``.
    """
    path = Path(location).expanduser()
    if path.is_file() or (not path.exists() and any(path.name.lower().endswith(s) for s in suffixes)):
        return path
    if not path.is_dir():
        raise DataError(f"{what} path {path} does not exist: pass a file ({', '.join(suffixes)}) or a folder of "
                        "them named sub-XX_...")
    n = subject_number(subject)
    hits = sorted(p for p in path.iterdir() if _matches(p, suffixes) and subject_in_name(p) == n)
    named = any(w in p.name.lower() for p in hits for w in _SPLIT_WORD.values())
    if named and split is not None:
        word = _SPLIT_WORD[check_split(split)]
        hits = [p for p in hits if word in p.name.lower()]
    if len(hits) != 1:
        have = sorted(p.name for p in path.iterdir() if _matches(p, suffixes))
        which = f"sub-{n:02d}*{'' if split is None else _SPLIT_WORD[check_split(split)]}*"
        found = "no file" if not hits else f"{len(hits)} files ({', '.join(h.name for h in hits)})"
        raise DataError(f"{found} in {path} match {which}{suffixes[0]}; files there: {', '.join(have) or 'none'}. "
                        f"Pass the file itself: 'NAME:FILE{suffixes[0]}'")
    return hits[0]


def folder_subjects(location, suffixes: tuple) -> list[int]:
    """Subjects of a file ([its 'sub-XX' number] or [1]) or of a folder's 'sub-XX*' files."""
    path = Path(location).expanduser()
    if path.is_file():
        return [subject_in_name(path) or 1]
    if not path.is_dir():
        return []
    return sorted({s for p in path.iterdir() if _matches(p, suffixes) and (s := subject_in_name(p)) is not None})


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 image', '2 images' ('1 repetition', '3 repetitions')."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def count_range(lo: int, hi: int, word: str) -> str:
    """'2 images' when every item has the same count, '2-4 images' otherwise."""
    return plural(hi, word) if lo == hi else f"{lo}-{hi} {word}s"


def _matches(p: Path, suffixes: tuple) -> bool:
    return p.is_file() and any(p.name.lower().endswith(s) for s in suffixes)
