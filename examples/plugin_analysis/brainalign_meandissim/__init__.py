"""Example analysis plugin: each model layer's mean dissimilarity on the stimuli of any dataset.

Install (``pip install examples/plugin_analysis``) and ``brainalign compare`` runs it next to
the built-in analyses on every dataset with responses; ``--analysis mean-dissimilarity`` alone.
"""
from __future__ import annotations

from brainalign.analyses import Analysis, AnalysisResult
from brainalign.hookspecs import hookimpl


class MeanDissimilarity(Analysis):
    name = "mean-dissimilarity"
    title = "mean of each layer's RDM (how spread out the model's representations are)"

    def supports(self, data) -> bool:
        return all(getattr(d, "responses", None) is not None for d in data.values())

    def run(self, context) -> AnalysisResult:
        rows = []
        with context.stages("RSA"):
            for m in context.models:
                for s, d in context.data.items():
                    rdms = m.for_subject(s, d.images.fingerprint())  # (n_layers, n_pairs)
                    rows += [{"analysis": self.name, "model": m.label, "layer": layer, "subject": s,
                              "measure": "mean 1 - Pearson", "value": float(r.mean())}
                             for layer, r in zip(m.layer_labels, rdms)]
        lines = [f"| {r['model']} | {r['layer']} | {r['subject']} | {r['value']:.3f} |" for r in rows]
        md = "\n".join(["## Mean dissimilarity", "", "| model | layer | subject | mean 1 - r |", "|---|---|---|---|",
                        *lines])
        return AnalysisResult(self.name, rows=rows, markdown=md, summary=f"mean dissimilarity: {len(rows)} rows",
                              json={"rows": rows})


@hookimpl
def brainalign_analyses():
    return [MeanDissimilarity()]
