"""Individual variability (the paper's personalised-model comparison): per layer shared by the
models, 1 - Spearman between every pair of models' RDMs on the same images.

Runs on image sets without neural responses ({subject: ImageSet}); ``brainalign variability``
(:func:`brainalign.evaluate.variability.run_variability`) runs it.
"""
from __future__ import annotations

import numpy as np

from . import Analysis, AnalysisResult


class Variability(Analysis):
    name = "variability"
    title = "between-model variability per layer: 1 - Spearman of the models' RDMs"
    key = "variability"

    def supports(self, data) -> bool:
        return len(data) == 1 and all(hasattr(d, "fingerprint") and not hasattr(d, "responses")
                                      for d in data.values())

    def run(self, context) -> AnalysisResult:
        from ..errors import ConfigError
        from ..evaluate import figures
        from ..evaluate.variability import common_layers, variability_matrix, variability_table

        models = context.models
        if len(models) < 2:
            raise ConfigError("variability needs at least two models (e.g. personalised models of several subjects)")
        subject, images = next(iter(context.data.items()))
        fp = images.fingerprint()
        with context.stages("RSA"):
            mats = {lab: variability_matrix(np.stack([m.for_subject(subject, fp)[m.layer_labels.index(lab)]
                                                      for m in models]))
                    for lab in common_layers(models)}
        labels = [m.label for m in models]
        with context.stages("figures"):
            figs = {"variability": figures.plot_variability(mats, labels, context.out / "variability.png")}
        rows = [{"analysis": self.name, "layer": lab, "model_a": a, "model_b": b, "measure": "1 - spearman",
                 "value": float(mat[i, j])}
                for lab, mat in mats.items() for i, a in enumerate(labels) for j, b in enumerate(labels) if i < j]
        return AnalysisResult(self.name, self.key, rows=rows, figures=figs, summary=variability_table(mats),
                              json={"models": labels, "layers": list(mats), "matrices": mats}, value=mats)
