"""Figure 3: individual variability between the subjects' aligned models (3A matrices, 3B by
layer) and white-box FGSM robustness, raw and baseline-aligned (3C)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...rsa import stats
from .. import figures
from .evaluation import Evaluation
from .panel import Panel, fmt_p, fmt_test, paired, table


def fig3ab(ev: Evaluation, out: Path) -> list[Panel]:
    mats = ev.variability["aligned"]
    layers = list(mats)
    names = [f"sub-{s}" for s in ev.subjects]
    path_a = figures.plot_variability(mats, names, out / "fig3a_variability_matrices.png",
                                      title="3A  Individual variability between aligned models (1 - Spearman of RDMs)")
    by_layer = ev.variability_by_layer("aligned")  # (n_subjects, n_layers)
    mean, sem = figures.mean_sem(by_layer)
    plt = figures._plt()
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    ax.errorbar(range(len(layers)), mean, yerr=sem, fmt="o-", color=figures.model_colors(["u", "aligned"])["aligned"],
                capsize=3, label="aligned")
    for lab in ev.settings.sweep_labels:
        if lab != "aligned":
            ax.plot(range(len(layers)), ev.variability_by_layer(lab).mean(0), ":", lw=1, alpha=0.7, label=lab)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_xlabel("Layer")
    ax.set_ylabel("Variability (1 - Spearman ρ)")
    ax.legend(frameon=False, fontsize=6)
    depth = paired(by_layer[:, -1], by_layer[:, 0])
    ax.set_title(f"3B  Variability by layer ({layers[-1]} - {layers[0]}: {fmt_p(depth['p'])})", fontsize=9)
    fig.tight_layout()
    path_b = figures._save(fig, out / "fig3b_variability_by_layer.png")
    rho = _spearman_depth(by_layer)
    rows = [{"figure": "3B", "model": "aligned", "layer": lab, "subject": s, "measure": "variability",
             "value": float(by_layer[si, li])} for li, lab in enumerate(layers) for si, s in enumerate(ev.subjects)]
    st = {"by_layer": dict(zip(layers, mean.tolist())), "last_minus_first": depth, "spearman_depth": rho,
          "layers": layers}
    a = Panel("3A", "Variability matrices", path_a,
              [f"1 - Spearman between the RDMs of two subjects' aligned models, per layer, on the "
               f"{ev.eeg.settings.get('n_images', '?')} EEG test images (the unaligned model has "
               "none: it is one model)."], [], {})
    b = Panel("3B", "Variability by layer", path_b,
              ["Each aligned model's mean variability to the other subjects' models, mean ± SEM over subjects:", "",
               *table(["layer", *layers], [["variability", *(f"{m:.3f} ± {e:.3f}" for m, e in zip(mean, sem))]]), "",
               f"{layers[-1]} - {layers[0]}: {fmt_test(depth)} (paired over subjects); Spearman of layer depth with "
               f"variability over subjects x layers: rho = {rho['rho']:.2f} ({fmt_p(rho['p'])})."], rows, st)
    return [a, b]


def _spearman_depth(by_layer: np.ndarray) -> dict:
    from scipy.stats import spearmanr

    depth = np.tile(np.arange(by_layer.shape[1]), by_layer.shape[0])
    vals = by_layer.reshape(-1)
    if np.ptp(vals) == 0:
        return {"rho": float("nan"), "p": float("nan")}
    r = spearmanr(depth, vals)
    return {"rho": float(r.statistic), "p": float(r.pvalue)}


def fig3c(ev: Evaluation, out: Path) -> Panel:
    eps = list(ev.robustness["unaligned"][0].eps)
    metric = ev.attack_metric
    name = "Top-5" if metric == "top5" else "Top-1"
    plt = figures._plt()
    colors = figures.model_colors(["unaligned", "aligned"])
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.0))
    st, lines, rows = {}, [], []
    for ax, aligned_to_base in zip(axes, (False, True)):
        u = np.array([ev.accuracy("unaligned", e, baseline_aligned=aligned_to_base)[0] for e in eps])
        a = np.stack([ev.accuracy("aligned", e, baseline_aligned=aligned_to_base) for e in eps], axis=1)
        tests = [paired(a[:, i], np.full(len(a), u[i])) for i in range(len(eps))]
        ps = np.array([1.0 if not np.isfinite(t["p"]) else t["p"] for t in tests])
        reject, p_adj = stats.fdr(ps[1:] if aligned_to_base else ps)  # eps 0 is 0 by construction once aligned
        if aligned_to_base:
            reject, p_adj = np.r_[False, reject], np.r_[1.0, p_adj]
        mean, sem = figures.mean_sem(a)
        ax.plot(eps, 100 * u, "o-", ms=3, color=colors["unaligned"], label="unaligned")
        ax.errorbar(eps, 100 * mean, yerr=100 * sem, fmt="o-", ms=3, capsize=2, color=colors["aligned"], label="aligned")
        top = 100 * max(np.max(u), np.max(mean + sem))
        for i in np.flatnonzero(reject):
            ax.text(eps[i], top + 2, "*", ha="center")
        ax.set_xlabel("FGSM ε (pixel units)")
        ax.set_ylabel(f"{name} accuracy {'change (points)' if aligned_to_base else '(%)'}")
        ax.set_title(f"{'baseline-aligned (minus ε = 0)' if aligned_to_base else 'raw'}", fontsize=9)
        key = "baseline_aligned" if aligned_to_base else "raw"
        st[key] = {f"{e:g}": {**t, "p_fdr": float(q), "significant": bool(r)}
                   for e, t, q, r in zip(eps, tests, p_adj, reject)}
        lines.append([key, *(f"{100 * t['mean']:+.1f} ({fmt_p(float(q))})" for t, q in zip(tests, p_adj))])
        rows += [{"figure": "3C", "model": "aligned", "subject": s, "eps": e, "measure": f"{metric}_{key}",
                  "value": float(a[si, i])} for i, e in enumerate(eps) for si, s in enumerate(ev.subjects)]
        rows += [{"figure": "3C", "model": "unaligned", "subject": "", "eps": e, "measure": f"{metric}_{key}",
                  "value": float(u[i])} for i, e in enumerate(eps)]
    axes[0].legend(frameon=False, fontsize=7)
    fig.suptitle(f"3C  White-box FGSM robustness ({ev.robustness['unaligned'][0].n_images} images; * p < .05 "
                 "FDR over ε)", fontsize=10)
    fig.tight_layout()
    path = figures._save(fig, out / "fig3c_fgsm.png")
    e0 = ev.settings.attack_eps
    st["attack_eps"] = e0
    st["at_eps"] = st["baseline_aligned"][f"{e0:g}"]
    section = [f"{name} accuracy under FGSM; labels: {ev.label_note}. Aligned minus unaligned in percentage points "
               f"per ε (t-test over the {len(ev.subjects)} aligned models, FDR over ε):", "",
               *table(["curve", *(f"ε={e:g}" for e in eps)], lines)]
    return Panel("3C", "FGSM robustness", path, section, rows, st)
