"""What each figure module returns, and the small statistics they share (thin wrappers of rsa.stats)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ALPHA = 0.05


@dataclass
class Panel:
    """One of the paper's figures as reproduced: its PNG, its report section (markdown lines), tidy
    rows for results.json and the statistics the verdict reads."""

    key: str
    title: str
    figure: Path | None
    section: list[str]
    rows: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def vs_zero(x) -> dict:
    """Mean, SEM and a two-sided one-sample t-test (= paired t-test against 0) over subjects (n,).

    Constant samples give t = +-inf, p = 0 for a non-zero mean and t = 0, p = 1 for zero.
    """
    from ...rsa import stats

    x = np.asarray(x, dtype=float).reshape(-1)
    mean, sem = stats.mean_sem(x)
    if len(x) < 2 or np.allclose(x, x[0]):
        t, p = (0.0, 1.0) if np.isclose(mean, 0.0) or len(x) < 2 else (float(np.sign(mean) * np.inf), 0.0)
    else:
        t, p = (float(v) for v in stats.paired_ttest(x, np.zeros_like(x)))
    return {"mean": float(mean), "sem": float(sem), "t": t, "p": p, "n": int(len(x))}


def paired(a, b) -> dict:
    """a - b over subjects: mean, SEM, t, p (two-sided)."""
    return vs_zero(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


def fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "p = n/a"
    return "p < .001" if p < 0.001 else f"p = {p:.3f}"


def fmt_test(d: dict, unit: str = "") -> str:
    """'+0.031 ± 0.008 (t(5) = 3.9, p = .011)'."""
    t = d["t"]
    tt = "t = inf" if not np.isfinite(t) else f"t({d['n'] - 1}) = {t:.2f}"
    return f"{d['mean']:+.3f}{unit} ± {d['sem']:.3f} ({tt}, {fmt_p(d['p'])})"



def table(headers, rows) -> list[str]:
    """Markdown table lines (the report module's table)."""
    from ..report import _md_table

    return _md_table(headers, rows).split("\n")
