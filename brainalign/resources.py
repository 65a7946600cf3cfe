"""Memory estimates: fail early, with the estimate and the fix, instead of being OOM-killed.

    from brainalign.resources import check_memory
    check_memory(n_images * n_features * 4, what="features of layer IT",
                 fix="use pooling='avg' or fewer layers")

The budget is ``BRAINALIGN_MEMORY_LIMIT`` (bytes, or a size such as '2GB', '512MiB') when
set, else :data:`SAFE_FRACTION` of the memory the OS reports as available right now. When
neither is known (an OS without /proc/meminfo or sysconf) nothing is checked.
"""
from __future__ import annotations

import os
import re

from .errors import ConfigError, ResourceError

ENV_VAR = "BRAINALIGN_MEMORY_LIMIT"
# Leave room for the model, the batch being computed and the rest of the process.
SAFE_FRACTION = 0.8

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(text: str | int | float) -> int:
    """'2GB' -> 2_000_000_000, '512MiB' -> 536_870_912, '1000' -> 1000 (ConfigError if unreadable)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        m = _SIZE.match(str(text))
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(f"cannot read the memory size {text!r}: use bytes or a number with a unit, "
                              "e.g. 2GB, 512MB or 1.5GiB")
        value, unit = float(m.group(1)), m.group(2).lower()
    n = int(value * _UNITS[unit])
    if n <= 0:
        raise ConfigError(f"memory size must be > 0, got {text!r}")
    return n


def available_memory_bytes() -> int | None:
    """Memory the OS can give this process now: /proc/meminfo MemAvailable (Linux), else
    sysconf's available physical pages; None when the OS reports neither."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # Windows has no sysconf; some OSes lack the names
        return None


def memory_budget_bytes() -> tuple[int | None, str]:
    """-> (budget in bytes or None, where it comes from) for :func:`check_memory`."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return parse_bytes(env), f"{ENV_VAR}={env}"
    avail = available_memory_bytes()
    if avail is None:
        return None, "unknown"
    return int(avail * SAFE_FRACTION), f"{SAFE_FRACTION:.0%} of the {_gb(avail)} available"


def _gb(n: float) -> str:
    """Bytes in GB (3 significant digits, so small test budgets stay readable)."""
    return f"{n / 1e9:.3g} GB"


def check_memory(estimate_bytes: float, what: str, fix: str) -> None:
    """Raise :class:`ResourceError` when ``estimate_bytes`` exceeds the memory budget.

    Args:
        estimate_bytes: what the step will allocate (e.g. n_images * n_features * 4).
        what: what needs it, e.g. "the features of 3 layers for 50000 images".
        fix: how to lower it, e.g. "use pooling='avg'".
    """
    budget, source = memory_budget_bytes()
    if budget is None or estimate_bytes <= budget:
        return
    raise ResourceError(f"{what} needs about {_gb(estimate_bytes)} of memory, more than the budget of "
                        f"{_gb(budget)} ({source}): {fix}; or raise the budget with {ENV_VAR} (e.g. "
                        f"{ENV_VAR}=64GB) if the memory really is there")
