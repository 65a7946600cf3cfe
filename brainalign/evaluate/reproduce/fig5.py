"""Figure 5: the controls -- unpaired (each image trained with another image's EEG) and without
the contrastive term -- against the aligned model, on EEG and fMRI gains."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from .evaluation import Evaluation
from .panel import Panel, fmt_test, paired, table, vs_zero

CONTROLS = ("unpaired", "w/o contrastive")


def fig5(ev: Evaluation, out: Path) -> Panel:
    labels = ["aligned", *CONTROLS]
    measures = {"EEG gain": {lab: ev.eeg_gain(lab) for lab in labels}}
    if ev.fmri is not None:
        measures["fMRI gain"] = {lab: ev.fmri_gain(lab).mean(axis=1) for lab in labels}
    colors = figures.model_colors(["unaligned", *labels])
    plt = figures._plt()
    fig, axes = plt.subplots(1, len(measures), figsize=(3.4 * len(measures), 3.0))
    st, lines, rows = {}, [], []
    for ax, (name, vals) in zip(np.atleast_1d(axes), measures.items()):
        key = "eeg" if name.startswith("EEG") else "fmri"
        for i, lab in enumerate(labels):
            mean, sem = figures.mean_sem(vals[lab])
            ax.bar(i, mean, 0.7, yerr=sem, capsize=3, color=colors[lab])
            ax.plot(np.full(len(vals[lab]), i), vals[lab], "o", ms=2, color="0.2", alpha=0.6)
            d = vs_zero(vals[lab])
            st.setdefault(lab, {})[key] = d
            if lab != "aligned":
                st[lab][f"{key}_vs_aligned"] = paired(vals[lab], vals["aligned"])
            lines.append([name, lab, fmt_test(d), "" if lab == "aligned" else fmt_test(st[lab][f"{key}_vs_aligned"])])
            rows += [{"figure": "5", "model": lab, "subject": s, "measure": key + "_gain", "value": float(v)}
                     for s, v in zip(ev.subjects, vals[lab])]
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(range(len(labels)), labels, rotation=15)
        ax.set_ylabel(f"{name} (Spearman ρ)")
    fig.suptitle(f"5  Controls (mean ± SEM over {len(ev.subjects)} subjects)", fontsize=10)
    fig.tight_layout()
    path = figures._save(fig, out / "fig5_controls.png")
    section = ["Gains over the unaligned model (t-test against 0) and the difference to the aligned model (paired "
               "over subjects):", "", *table(["measure", "model", "gain", "minus aligned"], lines)]
    return Panel("5", "Controls", path, section, rows, st)
