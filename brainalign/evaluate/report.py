"""Report writers: results.json, a tidy results.csv, report.md and compact terminal tables."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..io import atomic_write_text, write_json
from .results import EEGResult, FMRIResult

CSV_COLUMNS = ("analysis", "model", "layer", "subject", "time_ms", "roi", "measure", "value")


def write_csv(path, rows, columns=CSV_COLUMNS) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return atomic_write_text(path, buf.getvalue())


def _fmt(mean: float, sem: float | None = None) -> str:
    if sem is None or not np.isfinite(sem):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {sem:.3f}"


def _table(headers, rows) -> str:
    """A plain fixed-width table (also valid as a markdown table when md=True)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(out)


def _md_table(headers, rows) -> str:
    out = ["| " + " | ".join(map(str, headers)) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out)


PAPER_WINDOW_MS = (50.0, 200.0)  # ReAlnet's summary window


def eeg_rows(res: EEGResult, window_ms=None) -> tuple[list[str], list[list]]:
    t = res.times_ms
    if window_ms is None:  # the paper's 50-200 ms when the recording covers it, else everything
        lo, hi = max(PAPER_WINDOW_MS[0], float(t[0])), min(PAPER_WINDOW_MS[1], float(t[-1]))
        window_ms = (lo, hi) if hi > lo else (float(t[0]), float(t[-1]))
    headers = ["model", "layer", "peak ρ", "peak (ms)", f"mean ρ {window_ms[0]:.0f}-{window_ms[1]:.0f} ms"]
    rows = [[r["model"], r["layer"], f"{r['peak']:.3f}", f"{r['peak_ms']:.0f}", _fmt(r["window_mean"], r["window_sem"])]
            for r in res.summary(window_ms)]
    return headers, rows


def fmri_rows(res: FMRIResult) -> tuple[list[str], list[list]]:
    headers = ["model", *res.rois]
    rows = []
    for m in res.models:
        best = res.best(m)
        sem = best.std(0, ddof=1) / np.sqrt(best.shape[0]) if best.shape[0] > 1 else [None] * len(res.rois)
        rows.append([m, *(_fmt(best[:, i].mean(), sem[i]) for i in range(len(res.rois)))])
    if res.noise_ceiling:
        rows.append(["noise ceiling", *(f"{res.noise_ceiling[r][0]:.3f}-{res.noise_ceiling[r][1]:.3f}"
                                         if r in res.noise_ceiling else "n/a" for r in res.rois)])
    return headers, rows


def terminal_summary(eeg: EEGResult | None, fmri: FMRIResult | None) -> str:
    parts = []
    if eeg is not None:
        h, r = eeg_rows(eeg)
        parts.append(f"EEG RSA (Spearman, mean ± SEM over {len(eeg.subjects)} subject(s))\n" + _table(h, r))
        sig = significance_lines(eeg)
        if sig:
            parts.append("\n".join(sig))
    if fmri is not None:
        h, r = fmri_rows(fmri)
        parts.append(f"fMRI RSA (max over layers, mean ± SEM over {len(fmri.subjects)} subject(s))\n" + _table(h, r))
    return "\n\n".join(parts)


def significance_lines(res: EEGResult) -> list[str]:
    lines = []
    from .eeg import MIN_SUBJECTS_FOR_TEST

    if len(res.subjects) < MIN_SUBJECTS_FOR_TEST and len(res.models) > 1:
        return [f"(cluster-corrected significance vs {res.models[0]} needs >= {MIN_SUBJECTS_FOR_TEST} subjects: "
                "not tested)"]
    for s in res.significance:
        sig = [c for c in s["clusters"] if c.get("p", 1.0) < 0.05]
        if sig:
            spans = ", ".join(f"{c.get('start_ms', c['start']):.0f}-{c.get('stop_ms', c['stop']):.0f} ms (p={c['p']:.3f})"
                              for c in sig)
            lines.append(f"{s['model']} vs {s['reference']} [{s['layer']}]: significant clusters {spans}")
    if res.significance and not lines:
        n = len(res.subjects)
        p_min = min(1.0, 2.0 / 2 ** n)  # two-sided sign flips of whole subjects
        extra = (f"; with {n} subjects the smallest attainable p is {p_min:.3g}, so nothing can reach p<.05"
                 if p_min >= 0.05 else "")
        lines.append(f"no cluster-corrected significant difference vs {res.models[0]} (p<.05){extra}")
    return lines


def eeg_json(res: EEGResult) -> dict:
    return {"times_ms": res.times_ms, "subjects": res.subjects, "models": res.models, "layers": res.layers,
            "values": {m: v for m, v in res.values.items()},  # [layer][subject][time]
            "mean": {m: v.mean(axis=1) for m, v in res.values.items()},
            "sem": {m: (v.std(axis=1, ddof=1) / np.sqrt(v.shape[1]) if v.shape[1] > 1 else np.full(v.shape[::2], np.nan))
                    for m, v in res.values.items()},
            "summary": res.summary(), "significance": res.significance, "noise_ceiling": res.noise_ceiling,
            "settings": res.settings}


def fmri_json(res: FMRIResult) -> dict:
    return {"rois": res.rois, "subjects": res.subjects, "models": res.models, "layers": res.layers,
            "values": res.values,  # [layer][subject][roi]
            "best": {m: res.best(m) for m in res.models},  # [subject][roi]
            "best_layer": {m: res.best_layer_names(m) for m in res.models},
            "noise_ceiling": {r: {"lower": lo, "upper": hi} for r, (lo, hi) in res.noise_ceiling.items()},
            "settings": res.settings}


def eeg_markdown(res: EEGResult, figures: dict) -> str:
    """The report section of the time-resolved EEG RSA."""
    h, r = eeg_rows(res)
    md = ["## EEG: time-resolved RSA", "",
          f"Model RDM per layer (1 − Pearson of flattened activations) vs the EEG decoding RDM at each time "
          f"point (pairwise decoding accuracy, {res.settings['decoding']['engine'].upper()}), Spearman ρ, "
          f"mean ± SEM over {len(res.subjects)} subject(s), {res.settings['n_images']} test images.", "",
          _md_table(h, r), ""]
    md += [f"- {line}" for line in significance_lines(res)] + [""]
    md += [f"![{key}]({Path(path).name})\n" for key, path in figures.items()]
    return "\n".join(md)


def fmri_markdown(res: FMRIResult, figures: dict, *, title: str = "## fMRI: RSA per ROI",
                  neural: str = "ROI RDM = 1 − Pearson across voxels") -> str:
    """The report section of an RSA per label (fMRI ROIs, or precomputed RDMs with ``title``/``neural``)."""
    h, r = fmri_rows(res)
    md = [title, "",
          f"Per subject and {'ROI' if 'ROI' in title else 'RDM'}, the maximum over layers of Spearman(model RDM, "
          f"neural RDM); {neural}; mean ± SEM over {len(res.subjects)} subject(s). Noise ceiling: lower = each "
          "subject vs the mean of the others, upper = vs the mean of all.", "", _md_table(h, r), ""]
    md += [f"![{key}]({Path(path).name})\n" for key, path in figures.items()]
    return "\n".join(md)


def write_compare_report(out: Path, results: list, meta: dict, *, stages: dict | None = None,
                         title: str = "brainalign compare") -> dict[str, Path]:
    """results.json, results.csv and report.md in ``out`` from AnalysisResults; returns their paths.

    results.json: {'meta', 'stages' ({stage: wall seconds}), one section per
    analysis (its key: 'eeg', 'fmri', 'rdms', a plugin's name), 'analyses' (name -> key)}.
    """
    out = Path(out)
    results = list(results)
    doc = {"meta": meta, "stages": dict(stages or {}), "eeg": None, "fmri": None}
    for res in results:
        doc[res.key] = res.json
    doc["analyses"] = {res.name: res.key for res in results}
    paths = {"json": write_json(out / "results.json", doc)}
    paths["csv"] = write_csv(out / "results.csv", [row for res in results for row in res.rows])
    md = [f"# {title}", ""]
    if meta.get("synthetic"):
        md += ["> **Synthetic data.** No neural data was given, so this report uses brainalign's built-in "
               "synthetic brain (procedural images, a hidden network with an EEG-like temporal hierarchy and "
               "fMRI-like ROIs). Numbers show the pipeline works; they say nothing about human brains.", ""]
    data = f"EEG `{meta.get('eeg_source')}`, fMRI `{meta.get('fmri_source')}`"
    if meta.get("rdm_source"):
        data += f", RDMs `{meta['rdm_source']}`"
    md += [f"- Data: {data}; subjects {', '.join(map(str, meta.get('subjects', [])))}",
           f"- Models: {', '.join(f'`{m}`' for m in meta.get('model_args', []))}",
           f"- Created {meta.get('provenance', {}).get('created', '')} with brainalign "
           f"{meta.get('provenance', {}).get('brainalign', '')}", ""]
    if stages:
        md += ["- Wall time per stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()), ""]
    for res in results:
        md += [res.markdown.rstrip(), ""]
    md += ["## Files", "", "- `results.json`: all values, summaries, significance, settings and stage times",
           "- `results.csv`: tidy table (analysis, model, layer, subject, time_ms, roi, measure, value)"]
    md += [f"- `{Path(p).name}`" for res in results for p in res.figures.values()]
    paths["report"] = atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    return paths


def write_robustness_report(out: Path, curves, meta: dict, figure: Path) -> dict[str, Path]:
    """results.json, results.csv (model, attack, eps, metric, value, baseline_aligned) and report.md."""
    out = Path(out)
    paths = {"json": write_json(out / "results.json", {"meta": meta, "curves": [c.to_dict() for c in curves]}),
             "figure": figure}
    rows = []
    for c in curves:
        for metric in ("top1", "top5"):
            for e, a, b in zip(c.eps, getattr(c, metric), c.baseline_aligned(metric)):
                rows.append({"model": c.model, "attack": c.attack, "eps": e, "metric": metric, "accuracy": a,
                             "baseline_aligned": b})
    paths["csv"] = write_csv(out / "results.csv", rows,
                             ("model", "attack", "eps", "metric", "accuracy", "baseline_aligned"))
    headers = ["model", "metric", *(f"ε={e:g}" for e in curves[0].eps)]
    md_rows = [[c.model, name, *(f"{100 * a:.1f}" for a in getattr(c, metric))]
               for c in curves for metric, name in (("top1", "top-1 %"), ("top5", "top-5 %"))]
    label_txt = meta.get("label_note") or meta.get("labels")
    md = ["# brainalign robustness", ""]
    if meta.get("synthetic"):
        md += ["> **Synthetic images** (the built-in synthetic brain's test images).", ""]
    md += [f"White-box {meta['attack'].upper()} in [0, 1] pixel space (attack before normalisation, images clamped "
           f"to [0, 1]) on {meta['n_images']} images from `{meta['images']}`; labels = {label_txt}.", "",
           _md_table(headers, md_rows), "",
           "Baseline-aligned curves subtract each model's accuracy at the smallest ε (0).", "",
           f"![robustness]({Path(figure).name})", "",
           "Files: `results.json` (curves, settings), `results.csv` (tidy), "
           f"`{Path(figure).name}`."]
    paths["report"] = atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    return paths


def write_variability_report(out: Path, mats: dict, labels: list[str], meta: dict, figure: Path) -> dict[str, Path]:
    """results.json (matrices per layer), results.csv (layer, model_a, model_b, value) and report.md."""
    out = Path(out)
    paths = {"json": write_json(out / "results.json", {"meta": meta, "models": labels, "layers": list(mats),
                                                         "matrices": mats,
                                                         "mean_offdiagonal": {k: float(m[~np.eye(len(m), dtype=bool)].mean())
                                                                              for k, m in mats.items()}}),
             "figure": figure}
    rows = [{"layer": lab, "model_a": a, "model_b": b, "value": float(m[i, j])}
            for lab, m in mats.items() for i, a in enumerate(labels) for j, b in enumerate(labels) if i < j]
    paths["csv"] = write_csv(out / "results.csv", rows, ("layer", "model_a", "model_b", "value"))
    md_rows = [[lab, f"{m[~np.eye(len(m), dtype=bool)].mean():.3f}"] for lab, m in mats.items()]
    md = ["# brainalign variability", ""]
    if meta.get("synthetic"):
        md += ["> **Synthetic images** (the built-in synthetic brain's test images).", ""]
    md += [f"Individual variability between {len(labels)} models ({', '.join(f'`{x}`' for x in labels)}) on "
           f"{meta['n_images']} images from `{meta['images']}`: per layer, 1 − Spearman between the models' RDMs "
           "(1 − Pearson of flattened activations).", "", _md_table(["layer", "mean 1 − ρ (off-diagonal)"], md_rows),
           "", f"![variability]({Path(figure).name})", "",
           f"Files: `results.json`, `results.csv`, `{Path(figure).name}`."]
    paths["report"] = atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    return paths
