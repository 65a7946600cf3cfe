"""Figure 2: EEG time courses (2A), fMRI ROIs (2B), EEG gain vs fMRI gain per model (2C)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ...rsa import stats
from .. import figures
from .evaluation import Evaluation
from .panel import ALPHA, Panel, fmt_p, fmt_test, table, vs_zero


def eeg_subset(res, models):
    """The EEGResult restricted to ``models`` (their significance entries included)."""
    return replace(res, models=list(models), layers={m: res.layers[m] for m in models},
                   values={m: res.values[m] for m in models},
                   significance=[s for s in res.significance if s["model"] in models])


def positive_clusters(res, model: str, layer: str) -> list[dict]:
    """Clusters of (model - reference) with a positive mass for ``layer`` ('max over layers' too)."""
    for s in res.significance:
        if s["model"] == model and s["layer"] == layer:
            return [c for c in s["clusters"] if c.get("mass", 0) > 0]
    return []


def fig2a(ev: Evaluation, out: Path) -> Panel:
    res = eeg_subset(ev.eeg, ["unaligned", "aligned"])
    lo, hi = ev.settings.window_ms
    path = figures.plot_eeg_timecourses(
        res, out / "fig2a_eeg_timecourses.png",
        title=f"2A  EEG RSA on held-out concepts, aligned vs unaligned (mean ± SEM, {len(ev.subjects)} subjects)")
    a, u = ev.eeg_window("aligned"), ev.eeg_window("unaligned")
    rows, layer_stats, lines = [], {}, []
    tested = bool(res.significance)
    for li, layer in enumerate(res.layers["aligned"]):
        d = vs_zero(a[li] - u[li])
        clusters = positive_clusters(res, "aligned", layer)
        sig = [c for c in clusters if c["p"] < ALPHA]
        layer_stats[layer] = {**d, "unaligned": float(u[li].mean()), "aligned": float(a[li].mean()),
                              "ratio": _ratio(d["mean"], u[li].mean()),
                              "clusters": [{k: c.get(k) for k in ("start_ms", "stop_ms", "p")} for c in clusters],
                              "min_cluster_p": min((c["p"] for c in clusters), default=None)}
        span = ", ".join(f"{c['start_ms']:.0f}-{c['stop_ms']:.0f} ms (p = {c['p']:.3f})" for c in sig) or \
            ("none" if tested else "not tested (< 3 subjects)")
        lines.append([layer, f"{u[li].mean():.3f}", f"{a[li].mean():.3f}", fmt_test(d),
                      f"{100 * layer_stats[layer]['ratio']:+.0f} %", span])
        for si, subj in enumerate(ev.subjects):
            rows += [{"figure": "2A", "model": m, "layer": layer, "subject": subj, "measure": f"eeg_rsa_{lo:.0f}_{hi:.0f}ms",
                      "value": float(v[li, si])} for m, v in (("unaligned", u), ("aligned", a))]
    gain = vs_zero(ev.eeg_gain("aligned"))
    best = positive_clusters(res, "aligned", "max over layers")
    all_p = [c["p"] for s in layer_stats.values() for c in s["clusters"]] + [c["p"] for c in best]
    st = {"gain": gain, "ratio": _ratio(gain["mean"], u.mean()), "unaligned": float(u.mean()),
          "aligned": float(a.mean()), "layers": layer_stats, "tested": tested,
          "min_cluster_p": min(all_p) if all_p else None,
          "significant_layers": [lab for lab, s in layer_stats.items()
                                 if any(c["p"] < ALPHA for c in s["clusters"])],
          "window_ms": [lo, hi]}
    section = [f"EEG RSA (Spearman between model-layer RDMs and time-resolved EEG decoding RDMs) on the held-out "
               f"test concepts, averaged over {lo:.0f}-{hi:.0f} ms; gain = aligned - unaligned per subject, paired "
               f"t-test over {len(ev.subjects)} subjects; bars in the figure and the last column: cluster-corrected "
               f"(sign-flip, {ev.settings.n_permutations} permutations) time windows where aligned > unaligned.", "",
               *table(["layer", "unaligned", "aligned", "gain (t-test)", "ratio", "significant clusters"], lines), "",
               f"Mean over layers: gain {fmt_test(gain)}, ratio {100 * st['ratio']:+.0f} % of the unaligned model's "
               f"similarity."]
    return Panel("2A", "EEG time courses", path, section, rows, st)


def _ratio(gain: float, base: float) -> float:
    return float(gain / base) if base > 0 else float("nan")


def fig2b(ev: Evaluation, out: Path) -> Panel | None:
    if ev.fmri is None:
        return None
    rois = ev.fmri.rois
    a, u = ev.fmri_scores["aligned"], ev.fmri_scores["unaligned"][0]
    per_roi = [vs_zero(a[:, r] - u[r]) for r in range(len(rois))]
    reject, p_adj = stats.fdr([d["p"] for d in per_roi])
    ceiling = ev.fmri.noise_ceiling or {}
    path = _plot_rois(rois, u, a, reject, ceiling, out / "fig2b_fmri_rois.png",
                      f"2B  fMRI RSA per ROI (never trained on; mean ± SEM over {len(a)} aligned models)")
    lines, rows, roi_stats = [], [], {}
    for r, roi in enumerate(rois):
        nc = ceiling.get(roi)
        roi_stats[roi] = {**per_roi[r], "p_fdr": float(p_adj[r]), "significant": bool(reject[r]),
                          "unaligned": float(u[r]), "aligned": float(a[:, r].mean()),
                          "noise_ceiling": None if nc is None else [float(nc[0]), float(nc[1])]}
        lines.append([roi, f"{u[r]:.3f}", f"{a[:, r].mean():.3f}", fmt_test(per_roi[r]), fmt_p(float(p_adj[r])),
                      "n/a" if nc is None else f"{nc[0]:.3f}-{nc[1]:.3f}"])
        rows.append({"figure": "2B", "model": "unaligned", "roi": roi, "subject": "", "measure": "fmri_rsa",
                     "value": float(u[r])})
        rows += [{"figure": "2B", "model": "aligned", "roi": roi, "subject": s, "measure": "fmri_rsa",
                  "value": float(a[si, r])} for si, s in enumerate(ev.subjects)]
    gain = vs_zero(ev.fmri_gain("aligned").mean(axis=1))
    st = {"gain": gain, "rois": roi_stats, "n_significant": int(reject.sum()), "n_rois": len(rois),
          "n_fmri_subjects": len(ev.fmri.subjects)}
    section = [f"fMRI RSA per ROI: max over layers of Spearman(model RDM, ROI RDM), averaged over the "
               f"{len(ev.fmri.subjects)} fMRI subjects for each of the {len(a)} aligned models (one per EEG subject); "
               "gain tested against the unaligned model (t-test over models), FDR (Benjamini-Hochberg) over ROIs; "
               "noise ceiling lower-upper.", "",
               *table(["ROI", "unaligned", "aligned", "gain (t-test)", "FDR p", "noise ceiling"], lines), "",
               f"Mean over ROIs: gain {fmt_test(gain)}; {int(reject.sum())} of {len(rois)} ROIs significant after FDR."]
    return Panel("2B", "fMRI ROIs", path, section, rows, st)


def _plot_rois(rois, u, a, reject, ceiling, path, title):
    plt = figures._plt()
    colors = figures.model_colors(["unaligned", "aligned"])
    x = np.arange(len(rois))
    mean, sem = figures.mean_sem(a)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 * len(rois) + 1.5), 3.4))
    ax.bar(x - 0.2, u, 0.38, color=colors["unaligned"], label="unaligned")
    ax.bar(x + 0.2, mean, 0.38, yerr=sem, capsize=2, color=colors["aligned"], label="aligned", error_kw={"lw": 0.8})
    for si in range(len(a)):
        ax.plot(x + 0.2, a[si], "o", ms=2, color="0.2", alpha=0.6, zorder=3)
    for r, roi in enumerate(rois):
        nc = ceiling.get(roi)
        if nc is not None and np.all(np.isfinite(nc)):
            ax.add_patch(plt.Rectangle((r - 0.45, nc[0]), 0.9, max(nc[1] - nc[0], 1e-3), color="0.5", alpha=0.25,
                                       lw=0, zorder=0, label="noise ceiling" if r == 0 else None))
        if reject[r]:
            ax.text(r + 0.2, np.nanmax(a[:, r]) + 0.02, "*", ha="center", fontsize=12)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, rois)
    ax.set_ylabel("Spearman ρ (max over layers)")
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title + "\n* gain p < .05, FDR over ROIs", fontsize=9)
    fig.tight_layout()
    return figures._save(fig, path)


def model_gains(ev: Evaluation) -> list[dict]:
    """One point per trained model (variant x subject): its EEG gain and its fMRI gain (mean over ROIs)."""
    pts = []
    for label in ev.settings.labels:
        e, f = ev.eeg_gain(label), ev.fmri_gain(label).mean(axis=1)
        pts += [{"model": label, "subject": s, "eeg_gain": float(e[i]), "fmri_gain": float(f[i])}
                for i, s in enumerate(ev.subjects)]
    return pts


def fig2c(ev: Evaluation, out: Path) -> Panel | None:
    from scipy.stats import pearsonr

    if ev.fmri is None:
        return None
    pts = model_gains(ev)
    x = np.array([p["eeg_gain"] for p in pts])
    y = np.array([p["fmri_gain"] for p in pts])
    r, p = (float(v) for v in pearsonr(x, y)) if np.ptp(x) > 0 and np.ptp(y) > 0 else (float("nan"), float("nan"))
    plt = figures._plt()
    colors = figures.model_colors(["unaligned", *ev.settings.labels])
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    for label in ev.settings.labels:
        sel = [i for i, q in enumerate(pts) if q["model"] == label]
        ax.plot(x[sel], y[sel], "o", ms=4, color=colors[label], label=label)
    if np.isfinite(r):
        k, c = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 2)
        ax.plot(xs, k * xs + c, color="0.3", lw=1)
    ax.axhline(0, color="0.6", lw=0.6, ls=":")
    ax.axvline(0, color="0.6", lw=0.6, ls=":")
    ax.set_xlabel("EEG gain over unaligned (Spearman ρ)")
    ax.set_ylabel("fMRI gain over unaligned (Spearman ρ)")
    ax.set_title(f"2C  EEG vs fMRI improvement per model (r = {r:.2f}, {fmt_p(p)})")
    ax.legend(frameon=False, fontsize=6, loc="best")
    fig.tight_layout()
    path = figures._save(fig, out / "fig2c_eeg_vs_fmri_gain.png")
    rows = [{"figure": "2C", "model": q["model"], "subject": q["subject"], "measure": m, "value": q[m]}
            for q in pts for m in ("eeg_gain", "fmri_gain")]
    st = {"r": r, "p": p, "n_models": len(pts)}
    section = [f"Each trained model ({len(ev.settings.labels)} variants x {len(ev.subjects)} subjects): its EEG gain "
               "(mean over layers and the window) against its fMRI gain (mean over ROIs), both over the unaligned "
               f"model. Pearson r = {r:.3f} ({fmt_p(p)}, n = {len(pts)} models)."]
    return Panel("2C", "EEG vs fMRI improvement", path, section, rows, st)
