"""Subject lists and number lists as users type them ("1-3,7", "sub-01,sub-02", "1,10,100")."""
from __future__ import annotations

import re

from ..errors import ConfigError, DataError

_RANGE = re.compile(r"(?:sub-?)?(\d+)(?:-(?:sub-?)?(\d+))?", re.IGNORECASE)


def parse_subjects(text, what: str = "--subjects") -> list[int] | None:
    """'1,2,5' / '1-10' / '1-3,7' / 'sub-01,sub-03' -> sorted unique ints; None or '' -> None.

    A list or tuple of subjects passes through (each item parsed the same way).
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    parts = [str(p) for p in text] if isinstance(text, (list, tuple)) else str(text).replace(" ", "").split(",")
    out: list[int] = []
    for part in parts:
        m = _RANGE.fullmatch(part.strip())
        if not m:
            raise ConfigError(f"{what} must look like 1,2 or 1-10 (or 1-3,7, sub-01), got {text!r}")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise ConfigError(f"{what} range {part!r} runs backwards: write {b}-{a}")
        if a < 1:
            raise ConfigError(f"{what}: subject numbers start at 1, got {part!r}")
        out.extend(range(a, b + 1))
    return sorted(set(out))


def parse_numbers(text, what: str = "values", *, positive: bool = False) -> list[float]:
    """'1,10,100,1000' -> [1.0, 10.0, 100.0, 1000.0] (order kept, duplicates dropped)."""
    parts = list(text) if isinstance(text, (list, tuple)) else str(text).split(",")
    out: list[float] = []
    for part in parts:
        try:
            v = float(str(part).strip())
        except ValueError:
            raise ConfigError(f"cannot read {what} {text!r}: use numbers separated by commas, e.g. 1,10,100,1000") from None
        if v != v or v in (float("inf"), float("-inf")) or (positive and v <= 0) or v < 0:
            raise ConfigError(f"{what} must be finite and {'> 0' if positive else '>= 0'}, got {part!r}")
        out.append(v)
    if not out:
        raise ConfigError(f"no {what} given")
    return list(dict.fromkeys(out))


def subject_label(subject) -> str:
    """'sub-01' for 1 or '1'; 'sub-<text>' for other identifiers."""
    s = str(subject)
    return f"sub-{int(s):02d}" if s.isdigit() else (s if s.startswith("sub-") else f"sub-{s}")


def subject_number(subject) -> int:
    """1, '01', 'sub-01' -> 1; DataError for anything else (names, 0, negatives)."""
    s = str(subject).strip()
    s = s[4:] if s.lower().startswith("sub-") else s
    try:
        n = int(s)
    except ValueError:
        raise DataError(f"subject {subject!r} is not a subject number: use 1, '01' or 'sub-01'") from None
    if n < 1:
        raise DataError(f"subject numbers start at 1, got {subject!r}")
    return n
