"""Progress and timing output that reads well both in a terminal and in a log file.

* :func:`progress` wraps an iterable: a tqdm bar when stderr is a terminal; otherwise (Slurm,
  CI, ``> file``) one compact line when the loop ends (an epoch, a stage), plus one a minute
  while a long loop runs, instead of tqdm's carriage-return stream.
* :func:`log` prints a status line without breaking a live bar.
* :class:`Stages` times named stages, logs each one's wall time and keeps them for results
  files (``stages.times`` -> {name: seconds}).

``BRAINALIGN_PROGRESS=bars|lines|off`` overrides the terminal detection.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable, Iterable, Iterator

__all__ = ["progress", "log", "interactive", "Stages", "format_seconds"]

ENV_VAR = "BRAINALIGN_PROGRESS"
LINE_EVERY_SECONDS = 60.0  # lines mode: a long loop says it is alive this often


def _mode() -> str:
    env = os.environ.get(ENV_VAR, "").strip().lower()
    if env in ("bars", "lines", "off"):
        return env
    try:
        return "bars" if sys.stderr.isatty() else "lines"
    except (AttributeError, ValueError):  # closed or replaced stderr
        return "lines"


def interactive() -> bool:
    """True when progress is drawn as live bars (stderr is a terminal)."""
    return _mode() == "bars"


def format_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def log(message: str, file=None) -> None:
    """Print a status line (to stdout by default) without breaking a live progress bar."""
    if interactive():
        from tqdm.auto import tqdm

        tqdm.write(message, file=file)
    else:
        print(message, file=file if file is not None else sys.stdout, flush=True)


class _Lines:
    """An iterable wrapper printing 'desc: k/n (p %) elapsed' when it ends, and every
    ``every_seconds`` before that (so a loop shorter than that prints one line)."""

    def __init__(self, iterable, desc: str, total: int | None, every_seconds: float = LINE_EVERY_SECONDS,
                 final_line: bool = True):
        self.iterable, self.desc, self.final_line = iterable, desc, final_line
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.every_seconds = every_seconds
        self.postfix = ""

    def set_postfix(self, ordered_dict=None, **kw) -> None:
        """As tqdm's: a mapping and/or keywords, shown as 'k=v' at the end of the next line."""
        self.postfix = " ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kw}.items())

    def _line(self, k: int, t0: float) -> str:
        frac = f" ({100 * k / self.total:.0f} %)" if self.total else ""
        of = f"/{self.total}" if self.total else ""
        extra = f" {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {k}{of}{frac} {format_seconds(time.perf_counter() - t0)}{extra}"

    def __iter__(self) -> Iterator:
        t0 = last_t = time.perf_counter()
        k = 0
        for item in self.iterable:
            yield item
            k += 1
            now = time.perf_counter()
            done = self.total is not None and k == self.total
            if not done and now - last_t >= self.every_seconds:
                print(self._line(k, t0), file=sys.stderr, flush=True)
                last_t = now
        if self.final_line:
            print(self._line(k, t0), file=sys.stderr, flush=True)

    def __len__(self) -> int:
        return self.total or 0


def progress(iterable: Iterable, *, desc: str = "", total: int | None = None, enabled: bool = True,
             unit: str = "it", final_line: bool = True):
    """``iterable`` with progress output (see module docs); ``enabled=False`` returns it unchanged.

    ``final_line=False``: in a log file, no closing line (for a caller that logs its own summary
    of the loop, such as the trainer's epoch line); the once-a-minute lines stay.

    The returned object supports ``set_postfix(**values)`` in every mode.
    """
    mode = _mode()
    if not enabled or mode == "off":
        return iterable
    if mode == "bars":
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, unit=unit)
    return _Lines(iterable, desc, total, every_seconds=LINE_EVERY_SECONDS, final_line=final_line)


class Stages:
    """Wall time of named stages: ``with stages("load"): ...`` logs 'load: 1.2 s'.

    ``times`` keeps {stage: seconds} in order (a repeated name accumulates), for results
    files; ``total`` is the sum.
    """

    def __init__(self, log_fn: Callable[[str], None] | None = log, prefix: str = "  [time] "):
        self.times: dict[str, float] = {}
        self.log_fn, self.prefix = log_fn, prefix

    @contextlib.contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        """Record a stage timed elsewhere (logged like the others)."""
        self.times[name] = round(self.times.get(name, 0.0) + seconds, 3)
        if self.log_fn is not None:
            self.log_fn(f"{self.prefix}{name}: {format_seconds(seconds)}")

    @property
    def total(self) -> float:
        return round(sum(self.times.values()), 3)

    def summary(self) -> str:
        return ", ".join(f"{k} {format_seconds(v)}" for k, v in self.times.items())
