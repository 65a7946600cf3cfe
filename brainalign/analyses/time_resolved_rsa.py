"""Time-resolved RSA (the paper's Figure 2A): layer RDMs vs EEG/MEG decoding RDMs per time point.

Runs on per-subject datasets with a time axis and raw repetitions (``--eeg SOURCE``: EEG or
MEG); see :func:`brainalign.evaluate.eeg.compare_eeg` for the method.
"""
from __future__ import annotations

from . import Analysis, AnalysisResult


class TimeResolvedRSA(Analysis):
    name = "time-resolved-rsa"
    title = "EEG/MEG: model layer RDMs vs decoding RDMs per time point, cluster tests vs the first model"
    key = "eeg"

    def supports(self, data) -> bool:
        return bool(data) and all(getattr(d, "repetitions", None) is not None and getattr(d, "times", None) is not None
                                  and d.responses.ndim == 3 for d in data.values())

    def stimuli(self, data) -> dict:
        from ..evaluate.eeg import check_same_images

        fingerprint = check_same_images(data, "EEG test images")
        first = data[next(iter(data))]
        return {s: {fingerprint: first} for s in data}

    def run(self, context) -> AnalysisResult:
        from ..evaluate import figures
        from ..evaluate.eeg import compare_eeg
        from ..evaluate.report import _table, eeg_json, eeg_markdown, eeg_rows, significance_lines
        from ..evaluate.results import tidy_rows_eeg

        context.log("EEG: time-resolved RSA")
        res = compare_eeg(context.models, context.data, cache_dir=context.cache_dir,
                          n_permutations=context.n_permutations, seed=context.seed, progress=context.progress,
                          log=context.log, stages=context.stages, **context.options)
        with context.stages("figures"):
            figs = {"eeg_timecourses": figures.plot_eeg_timecourses(res, context.out / "eeg_timecourses.png"),
                    "eeg_best_layer": figures.plot_eeg_best_layer(res, context.out / "eeg_best_layer.png")}
        h, r = eeg_rows(res)
        summary = f"EEG RSA (Spearman, mean ± SEM over {len(res.subjects)} subject(s))\n" + _table(h, r)
        sig = significance_lines(res)
        if sig:
            summary += "\n\n" + "\n".join(sig)
        return AnalysisResult(self.name, self.key, rows=tidy_rows_eeg(res), figures=figs,
                              markdown=eeg_markdown(res, figs), summary=summary, json=eeg_json(res), value=res)
