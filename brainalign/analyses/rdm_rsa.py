"""RSA against precomputed neural RDMs (``--rdms rdm:PATH --rdm-images DIR``).

Published RDMs (e.g. the 92-image set of Kriegeskorte et al. 2008) come without responses:
per subject and RDM, the max over layers of Spearman(model RDM, neural RDM), mean ± SEM over
subjects and a noise ceiling when several subjects' RDMs share the images. RDMs are named
by their descriptors other than 'subject' (e.g. 'IT', or 'roi=IT, time=0.1').
"""
from __future__ import annotations

from . import Analysis, AnalysisResult


def rdm_labels(neural_rdms) -> list[str]:
    """One display name per RDM of a NeuralRDMs, from its descriptors other than 'subject'."""
    desc = {k: v for k, v in neural_rdms.descriptors.items() if k != "subject"}
    n = neural_rdms.n_rdms
    if not desc:
        return ["all"] if n == 1 else [f"RDM {i + 1}" for i in range(n)]
    if len(desc) == 1:
        values = next(iter(desc.values()))
        return [str(v) for v in values.tolist()]
    return [", ".join(f"{k}={v[i]}" for k, v in desc.items()) for i in range(n)]


class PrecomputedRDMRSA(Analysis):
    name = "rdm-rsa"
    title = "precomputed neural RDMs: per RDM the max over layers of Spearman(model RDM, neural RDM)"
    key = "rdms"

    def supports(self, data) -> bool:
        from ..data.neural_rdms import NeuralRDMs

        return bool(data) and all(isinstance(d, NeuralRDMs) for d in data.values())

    def run(self, context) -> AnalysisResult:
        from ..errors import DataError
        from ..evaluate import figures
        from ..evaluate.fmri import rsa_per_label
        from ..evaluate.report import _table, fmri_json, fmri_markdown, fmri_rows
        from ..evaluate.results import tidy_rows_fmri

        context.log("Precomputed RDMs: RSA per RDM")
        neural = {}
        for s, d in context.data.items():
            labels = rdm_labels(d)
            if len(set(labels)) != len(labels):
                raise DataError(f"subject {s}'s RDMs are not told apart by their descriptors ({labels}): give "
                                "descriptors that name each RDM (e.g. descriptors={'roi': [...]})")
            neural[s] = dict(zip(labels, d.rdms.vectors))
        stimuli = self.stimuli(context.data)
        res = rsa_per_label(context.models, neural, stimuli, progress=context.progress, log=context.log,
                            stages=context.stages, what="RDM", **context.options)
        modality = next(iter(context.data.values())).modality
        res.settings.update({"neural_rdm": "precomputed", "modality": modality})
        with context.stages("figures"):
            figs = {"rdms": figures.plot_fmri_bars(res, context.out / "rdms.png",
                                                   title=f"RSA with precomputed {modality} RDMs")}
        h, r = fmri_rows(res)
        summary = (f"Precomputed RDMs (max over layers, mean ± SEM over {len(res.subjects)} subject(s))\n"
                   + _table(h, r))
        md = fmri_markdown(res, figs, title=f"## Precomputed {modality} RDMs",
                           neural=f"neural RDMs read from `{context.source}`")
        return AnalysisResult(self.name, self.key, rows=tidy_rows_fmri(res, "rdms"), figures=figs, markdown=md,
                              summary=summary, json=fmri_json(res), value=res)
