"""Figure 4: the beta sweep -- EEG gain, fMRI gain, individual variability and robustness at one
attack strength, per beta (mean ± SEM over subjects), with Spearman trends over beta."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import figures
from .evaluation import Evaluation
from .panel import Panel, fmt_p, table


def beta_measures(ev: Evaluation) -> dict:
    """{measure: (n_subjects, n_betas)} for eeg_gain, fmri_gain (if fMRI), variability, robustness."""
    labs = ev.settings.sweep_labels
    eps = ev.settings.attack_eps
    out = {"eeg_gain": np.stack([ev.eeg_gain(lab) for lab in labs], axis=1)}
    if ev.fmri is not None:
        out["fmri_gain"] = np.stack([ev.fmri_gain(lab).mean(axis=1) for lab in labs], axis=1)
    out["variability"] = np.stack([ev.variability_by_layer(lab).mean(axis=1) for lab in labs], axis=1)
    out["robustness"] = np.stack([ev.accuracy(lab, eps) for lab in labs], axis=1)
    return out


def trend(values: np.ndarray, betas) -> dict:
    """Spearman rho between log10(beta) and the values of every subject x beta."""
    from scipy.stats import spearmanr

    x = np.tile(np.log10(np.asarray(betas, dtype=float)), values.shape[0])
    y = values.reshape(-1)
    if np.ptp(y) == 0:
        return {"rho": float("nan"), "p": float("nan")}
    r = spearmanr(x, y)
    return {"rho": float(r.statistic), "p": float(r.pvalue)}


TITLES = {"eeg_gain": "EEG gain over unaligned", "fmri_gain": "fMRI gain over unaligned",
          "variability": "Individual variability (mean over layers)", "robustness": "accuracy at ε"}


def fig4(ev: Evaluation, out: Path) -> Panel:
    s = ev.settings
    betas = list(s.betas)
    meas = beta_measures(ev)
    metric = "Top-5" if ev.attack_metric == "top5" else "Top-1"
    plt = figures._plt()
    fig, axes = plt.subplots(1, len(meas), figsize=(3.0 * len(meas), 2.8))
    st, lines, rows = {}, [], []
    for ax, (name, v) in zip(np.atleast_1d(axes), meas.items()):
        mean, sem = figures.mean_sem(v)
        ax.errorbar(betas, mean, yerr=sem, fmt="o-", capsize=3, color="C1")
        ax.set_xscale("log")
        ref = ev.accuracy("unaligned", s.attack_eps)[0] if name == "robustness" else 0.0
        ax.axhline(ref, color="0.4", lw=0.8, ls="--", label="unaligned" if name == "robustness" else None)
        tr = trend(v, betas)
        title = TITLES[name] if name != "robustness" else f"{metric} {TITLES[name]} = {s.attack_eps:g}"
        ax.set_title(f"{title}\nrho = {tr['rho']:.2f}, {fmt_p(tr['p'])}", fontsize=8)
        ax.set_xlabel("β")
        st[name] = {"per_beta": dict(zip(map(str, betas), mean.tolist())), "sem": dict(zip(map(str, betas), sem.tolist())),
                    "trend": tr, **({"unaligned": float(ref)} if name == "robustness" else {})}
        lines.append([name, *(f"{m:.3f} ± {e:.3f}" for m, e in zip(mean, sem)), f"{tr['rho']:+.2f} ({fmt_p(tr['p'])})"])
        rows += [{"figure": "4", "beta": b, "subject": subj, "measure": name, "value": float(v[si, bi])}
                 for bi, b in enumerate(betas) for si, subj in enumerate(ev.subjects)]
    fig.suptitle(f"4  The β sweep (mean ± SEM over {len(ev.subjects)} subjects)", fontsize=10)
    fig.tight_layout()
    path = figures._save(fig, out / "fig4_beta.png")
    section = [f"Per β: gains over the unaligned model (EEG: mean over layers and {s.window_ms[0]:.0f}-"
               f"{s.window_ms[1]:.0f} ms; fMRI: mean over ROIs), variability between subjects' models (mean over "
               f"layers) and {metric.lower()} accuracy under FGSM at ε = {s.attack_eps:g} (unaligned: "
               f"{ev.accuracy('unaligned', s.attack_eps)[0]:.3f}); trend = Spearman rho with log β over subjects x β.", "",
               *table(["measure", *(f"β={b:g}" for b in betas), "trend"], lines)]
    return Panel("4", "Beta sweep", path, section, rows, st)
