"""Publication-style PNG figures: EEG time courses, fMRI ROI bars, robustness, variability.

All functions write a PNG (150 dpi) and return its path. Colours are fixed per model
position so a model keeps its colour across figures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..rsa import stats
from .results import EEGResult, FMRIResult


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
                         "axes.spines.top": False, "axes.spines.right": False})
    return plt


def model_colors(models: Sequence[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def mean_sem(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SEM over subjects (axis 0); an undefined SEM (one subject) draws no band."""
    mean, sem = stats.mean_sem(x, axis=0)
    return mean, np.where(np.isfinite(sem), sem, 0.0)


def _save(fig, path) -> Path:
    """Write ``fig`` (format from the suffix, PNG by default) all-or-nothing through
    io.atomic_write: a full disk leaves no truncated image and is a one-line OutputError."""
    import matplotlib.pyplot as plt

    from ..io import atomic_write

    path = Path(path)
    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format=path.suffix[1:] or "png", dpi=150,
                                                         bbox_inches="tight"))
    finally:
        plt.close(fig)


def _grid(n: int, max_cols: int = 4):
    cols = min(n, max_cols)
    rows = int(np.ceil(n / cols))
    return rows, cols


def _ylim(lines, ceiling=None) -> tuple[float, float]:
    lo, hi = [0.0], [0.0]
    for _, data in lines:
        mean, sem = mean_sem(data)
        lo.append(float(np.nanmin(mean - sem)))
        hi.append(float(np.nanmax(mean + sem)))
    if ceiling is not None:
        hi.append(float(np.nanmax(ceiling["upper"])))
    span = max(max(hi) - min(lo), 1e-6)
    return min(lo) - 0.05 * span, max(hi) + 0.08 * span


def _timecourse_panel(ax, t, lines, sig, colors, title, ceiling=None, ylim=None):
    """lines: [(label, (n_subjects, n_times))]; sig: [(label, mask)] drawn as bars under the curves."""
    for label, data in lines:
        mean, sem = mean_sem(data)
        ax.plot(t, mean, color=colors[label], lw=1.6, label=label)
        ax.fill_between(t, mean - sem, mean + sem, color=colors[label], alpha=0.2, lw=0)
    if ceiling is not None:
        ax.fill_between(t, ceiling["lower"], ceiling["upper"], color="0.85", lw=0, zorder=0,
                        label="noise ceiling")
    ax.axhline(0, color="0.4", lw=0.8, ls="--", zorder=0)
    ax.axvline(0, color="0.6", lw=0.6, ls=":", zorder=0)
    lo, hi = ylim if ylim is not None else _ylim(lines, ceiling)
    span = hi - lo
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    for k, (label, mask) in enumerate(sig):
        y = lo - (0.04 + 0.05 * k) * span
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            ax.hlines(np.full(mask.sum(), y), t[mask] - dt / 2, t[mask] + dt / 2, color=colors[label], lw=3)
    ax.set_ylim(lo - (0.04 + 0.05 * len(sig)) * span if sig else lo, hi)
    ax.set_title(title)
    ax.set_xlabel("Time from stimulus onset (ms)")
    ax.set_ylabel("Spearman ρ (model vs EEG RDM)")
    ax.set_xlim(t[0], t[-1])


def plot_eeg_timecourses(res: EEGResult, path, *, title: str | None = None) -> Path:
    """One panel per layer (models sharing layer names) or per model, mean +- SEM bands.

    Bars under the curves mark cluster-corrected significant differences vs the first model.
    """
    plt = _plt()
    colors = model_colors(res.models)
    t = np.asarray(res.times_ms, dtype=float)
    shared = all(res.layers[m] == res.layers[res.models[0]] for m in res.models)
    sig_by = {}
    for s in res.significance:
        sig_by.setdefault(s["layer"], []).append((s["model"], s["mask"]))
    panels = []  # (title, lines, sig, colours)
    if shared:
        for li, layer in enumerate(res.layers[res.models[0]]):
            lines = [(m, res.values[m][li]) for m in res.models]
            panels.append((layer, lines, sig_by.get(layer, []), colors))
    else:  # different architectures: one panel per model, its layers early (dark) to late (light)
        import matplotlib

        cmap = matplotlib.colormaps["viridis"]
        for m in res.models:
            n = len(res.layers[m])
            cols_m = {layer: cmap(li / max(1, n - 1) * 0.9) for li, layer in enumerate(res.layers[m])}
            lines = [(layer, res.values[m][li]) for li, layer in enumerate(res.layers[m])]
            panels.append((m, lines, [], cols_m))
    rows, cols = _grid(len(panels))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    lims = [_ylim(p[1]) for p in panels]  # one y range for all panels so they compare at a glance
    ylim = (min(a for a, _ in lims), max(b for _, b in lims))
    for ax, (name, lines, sig, cmap_p) in zip(axes.flat, panels):
        _timecourse_panel(ax, t, lines, sig, cmap_p, name, None, ylim)
        if not shared:
            ax.legend(frameon=False, loc="best", fontsize=7, title="layer", title_fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if shared:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if any(s["mask"].any() for s in res.significance):
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="0.3", lw=3))
            labels.append(f"p<.05 vs {res.models[0]} (cluster-corrected)")
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False,
                   bbox_to_anchor=(0.5, -0.02 - 0.03 * (rows - 1)))
        fig.subplots_adjust(bottom=0.2)
    n_sub = len(res.subjects)
    fig.suptitle(title or f"EEG RSA by layer (mean ± SEM over {n_sub} subject{'s' if n_sub != 1 else ''})")
    fig.tight_layout(rect=(0, 0.06 if shared else 0, 1, 1))
    return _save(fig, path)


def plot_eeg_best_layer(res: EEGResult, path, *, title: str | None = None) -> Path:
    """All models in one panel: per time point the max over layers, mean +- SEM."""
    plt = _plt()
    colors = model_colors(res.models)
    t = np.asarray(res.times_ms, dtype=float)
    lines = [(m, res.best_layer(m)) for m in res.models]
    sig = [(s["model"], s["mask"]) for s in res.significance if s["layer"] == "max over layers"]
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    _timecourse_panel(ax, t, lines, sig, colors, "Best layer per time point", res.noise_ceiling)
    handles, labels = ax.get_legend_handles_labels()
    if sig and any(np.asarray(m).any() for _, m in sig):
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="0.3", lw=3))
        labels.append(f"p<.05 vs {res.models[0]}")
    ax.legend(handles, labels, frameon=False, loc="upper left", fontsize=7)
    n_sub = len(res.subjects)
    fig.suptitle(title or f"EEG RSA, max over layers (mean ± SEM, {n_sub} subject{'s' if n_sub != 1 else ''})")
    fig.tight_layout()
    return _save(fig, path)


def plot_fmri_bars(res: FMRIResult, path, *, title: str | None = None) -> Path:
    """Grouped bars per ROI (max over layers, mean +- SEM over subjects) with noise-ceiling marks."""
    plt = _plt()
    colors = model_colors(res.models)
    n_m, n_r = len(res.models), len(res.rois)
    width = 0.8 / n_m
    x = np.arange(n_r)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * n_r * max(1, n_m / 2.5)), 3.4))
    for k, m in enumerate(res.models):
        best = res.best(m)  # (n_subjects, n_rois)
        mean, sem = mean_sem(best)
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, mean, width * 0.92, color=colors[m], label=m,
               yerr=sem if best.shape[0] > 1 else None, capsize=2, error_kw={"lw": 0.8})
        if best.shape[0] > 1:  # individual subjects as dots
            for si in range(best.shape[0]):
                ax.plot(pos, best[si], "o", ms=2.2, color="0.2", alpha=0.6, zorder=3)
    drew_ceiling = False
    for r, roi in enumerate(res.rois):
        nc = res.noise_ceiling.get(roi) if res.noise_ceiling else None
        if nc is not None and np.all(np.isfinite(nc)):
            ax.add_patch(plt.Rectangle((r - 0.45, nc[0]), 0.9, max(nc[1] - nc[0], 1e-3), color="0.5",
                                       alpha=0.25, lw=0, zorder=0, label=None if drew_ceiling else "noise ceiling"))
            ax.hlines([nc[0], nc[1]], r - 0.45, r + 0.45, colors="0.35", lw=0.8, linestyles=["--", "-"])
            drew_ceiling = True
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, res.rois)
    ax.set_xlabel("Region of interest")
    ax.set_ylabel("Spearman ρ (max over layers)")
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    n_sub = len(res.subjects)
    ax.set_title(title or f"fMRI RSA per ROI (mean ± SEM, {n_sub} subject{'s' if n_sub != 1 else ''})")
    fig.tight_layout()
    return _save(fig, path)


def plot_robustness(curves: Sequence, path, *, title: str | None = None) -> Path:
    """2 x 2: top-1 / top-5 accuracy (rows), raw / baseline-aligned (columns), vs epsilon."""
    plt = _plt()
    models = [c.model for c in curves]
    colors = model_colors(models)
    fig, axes = plt.subplots(2, 2, figsize=(8, 5.6), sharex=True)
    for row, which in enumerate(("top1", "top5")):
        for col, aligned in enumerate((False, True)):
            ax = axes[row, col]
            for c in curves:
                y = np.asarray(c.baseline_aligned(which) if aligned else getattr(c, which)) * 100
                ax.plot(c.eps, y, "o-", ms=3, color=colors[c.model], label=c.model)
            if aligned:
                ax.axhline(0, color="0.4", lw=0.8, ls="--")
            name = "Top-1" if which == "top1" else "Top-5"
            ax.set_ylabel(f"{name} accuracy {'change ' if aligned else ''}(%{' points' if aligned else ''})")
            ax.set_title(f"{name}, {'baseline-aligned (minus ε=0)' if aligned else 'raw'}")
            if row == 1:
                ax.set_xlabel("Attack strength ε (pixel units, [0, 1] images)")
    axes[0, 0].legend(frameon=False, fontsize=7)
    attack = curves[0].attack.upper() if curves else ""
    n = curves[0].n_images if curves else 0
    fig.suptitle(title or f"White-box {attack} robustness ({n} images)")
    fig.tight_layout()
    return _save(fig, path)


def plot_variability(matrices: dict[str, np.ndarray], labels: Sequence[str], path, *, title: str | None = None) -> Path:
    """One heatmap per layer of 1 - Spearman between models' RDMs (shared colour scale)."""
    plt = _plt()
    layers = list(matrices)
    rows, cols = _grid(len(layers))
    n = len(labels)
    size = max(2.6, 0.45 * n + 1.6)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 0.8, size * rows), squeeze=False)
    off = [m[~np.eye(n, dtype=bool)] for m in matrices.values()]
    vmax = max(float(np.nanmax(np.concatenate(off))) if n > 1 else 1.0, 1e-6)
    im = None
    for ax, layer in zip(axes.flat, layers):
        mat = np.asarray(matrices[layer], dtype=float)
        im = ax.imshow(mat, vmin=0, vmax=vmax, cmap="viridis")
        ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(f"{layer} (mean {np.nanmean(mat[~np.eye(n, dtype=bool)]):.3f})" if n > 1 else layer)
        if n <= 8:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if mat[i, j] < 0.6 * vmax else "black")
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.suptitle(title or "Individual variability between models (1 − Spearman of RDMs)")
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    cax = fig.add_axes((0.93, 0.15, 0.015, 0.7))
    fig.colorbar(im, cax=cax, label="1 − Spearman ρ")
    return _save(fig, path)
