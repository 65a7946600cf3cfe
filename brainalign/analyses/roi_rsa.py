"""ROI RSA (the paper's Figure 2B): per subject and ROI, the max over layers of the RDM Spearman.

Runs on per-subject datasets without a time axis (``--fmri SOURCE``: responses (n_images,
n_voxels) with a 'roi' channel descriptor); see :func:`brainalign.evaluate.fmri.compare_fmri`.
"""
from __future__ import annotations

from . import Analysis, AnalysisResult


class ROIRSA(Analysis):
    name = "roi-rsa"
    title = "fMRI: per ROI the max over layers of Spearman(model RDM, ROI RDM), with the noise ceiling"
    key = "fmri"

    def supports(self, data) -> bool:
        def ok(d):
            if isinstance(d, dict):  # an old {roi: dataset} dict
                return bool(d) and all(ok(x) for x in d.values())
            return getattr(d, "responses", None) is not None and d.responses.ndim == 2
        return bool(data) and all(ok(d) for d in data.values())

    def stimuli(self, data) -> dict:
        from ..evaluate.fmri import fmri_roi_datasets

        out = {}
        for s, rois in fmri_roi_datasets(data).items():
            first = rois[next(iter(rois))]
            out[s] = {first.images.fingerprint(): first}
        return out

    def run(self, context) -> AnalysisResult:
        from ..evaluate import figures
        from ..evaluate.fmri import compare_fmri
        from ..evaluate.report import _table, fmri_json, fmri_markdown, fmri_rows
        from ..evaluate.results import tidy_rows_fmri

        context.log("fMRI: RSA per ROI")
        res = compare_fmri(context.models, context.data, progress=context.progress, log=context.log,
                           stages=context.stages, **context.options)
        with context.stages("figures"):
            figs = {"fmri_rois": figures.plot_fmri_bars(res, context.out / "fmri_rois.png")}
        h, r = fmri_rows(res)
        summary = f"fMRI RSA (max over layers, mean ± SEM over {len(res.subjects)} subject(s))\n" + _table(h, r)
        return AnalysisResult(self.name, self.key, rows=tidy_rows_fmri(res), figures=figs,
                              markdown=fmri_markdown(res, figs), summary=summary, json=fmri_json(res), value=res)
