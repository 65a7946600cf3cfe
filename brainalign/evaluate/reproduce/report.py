"""report.md (one section per figure, the verdict first) and results.json (settings, tidy rows,
statistics, claims, per-stage timings) of a ``reproduce`` run."""
from __future__ import annotations

from pathlib import Path

from ...io import atomic_write_text, write_json
from ..results import tidy_rows_eeg
from .panel import Panel


def write_report(out: Path, panels: list[Panel], claims: list[dict], paragraph: str, *, meta: dict,
                 ev, stage_times: dict) -> dict:
    lines = ["# brainalign reproduce: the paper's figures", "",
             f"Data: {meta['data']}. Models: {meta['models']}.", "",
             "## Verdict", "", paragraph, "",
             "| claim | result | statistic |", "|---|---|---|"]
    lines += [f"| {c['claim']} | {_word(c['held'])} | {c['statistic']} |" for c in claims]
    for p in panels:
        lines += ["", f"## Figure {p.key}: {p.title}", ""]
        if p.figure is not None:
            lines += [f"![Figure {p.key}]({p.figure.name})", ""]
        lines += p.section
    lines += ["", "## Settings and timings", "", *meta["settings_lines"], "",
              "Stage wall times: " + ", ".join(f"{k} {v:.1f} s" for k, v in stage_times.items()) +
              f" (total {sum(stage_times.values()):.0f} s)."]
    report = atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
    rows = [r for p in panels for r in p.rows] + tidy_rows_eeg(ev.eeg)
    results = write_json(out / "results.json", {
        "claims": claims, "verdict": paragraph, "stats": {p.key: p.stats for p in panels}, "settings": meta["settings"],
        "data": meta["data"], "stage_times_s": stage_times, "figures": {p.key: p.figure.name for p in panels if p.figure},
        "label_note": ev.label_note, "provenance": meta.get("provenance"), "rows": rows})
    return {"report": report, "results": results}


def _word(held) -> str:
    return {True: "held", False: "did not hold", None: "not tested"}[held]
