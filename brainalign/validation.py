"""Argument checks shared by the API and the CLI: one message style, raised before any work.

    seed = check_int("seed", seed, minimum=0)
    n = check_int("n_permutations", n, minimum=1, fix="use at least 1000 for a cluster test")

The CLI's argparse types (:func:`int_type`, :func:`float_type`) call the same checks, so
``--seed -1`` and ``seed=-1`` fail with the same one-line reason.
"""
from __future__ import annotations

import math
import numbers

from .errors import ConfigError

SEED_MAX = 2**32 - 1  # numpy's seeding range


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None, fix: str = "") -> int:
    """``value`` as an int, or ConfigError naming ``name``, the value and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}" + (f": {fix}" if fix else ""))
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}") if minimum is not None \
            else f"<= {maximum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}" + (f": {fix}" if fix else ""))
    return value


def check_float(name: str, value, *, minimum: float | None = None, maximum: float | None = None,
                exclusive_minimum: bool = False, fix: str = "") -> float:
    """``value`` as a finite float, or ConfigError naming ``name``, the value and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be a finite number, got {value!r}" + (f": {fix}" if fix else ""))
    value = float(value)
    low_bad = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    if low_bad or (maximum is not None and value > maximum):
        parts = []
        if minimum is not None:
            parts.append(f"{'>' if exclusive_minimum else '>='} {minimum:g}")
        if maximum is not None:
            parts.append(f"<= {maximum:g}")
        raise ConfigError(f"{name} must be {' and '.join(parts)}, got {value:g}" + (f": {fix}" if fix else ""))
    return value


def check_seed(seed, name: str = "seed") -> int:
    return check_int(name, seed, minimum=0, maximum=SEED_MAX)


def int_type(name: str, *, minimum: int | None = None, maximum: int | None = None):
    """An argparse ``type=`` that parses an int and applies :func:`check_int`."""
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        try:
            return check_int(name, value, minimum=minimum, maximum=maximum)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def float_type(name: str, *, minimum: float | None = None, exclusive_minimum: bool = False):
    """An argparse ``type=`` that parses a float and applies :func:`check_float`."""
    import argparse

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        try:
            return check_float(name, value, minimum=minimum, exclusive_minimum=exclusive_minimum)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
