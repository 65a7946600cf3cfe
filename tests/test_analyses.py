"""The analysis registry: built-in analyses, compare running what the data supports, a plugin analysis,
precomputed RDMs through compare, per-stage timings, models loaded one at a time."""
from __future__ import annotations

import csv
import gc
import json
import weakref

import numpy as np
import pytest

from brainalign.analyses import Analysis, AnalysisResult, analyses_for, available_analyses, get_analysis
from brainalign.errors import ConfigError

STAGES = {"load", "decoding RDMs", "features", "RSA", "statistics", "figures"}


def test_builtin_analyses_registered_and_chosen_by_data():
    names = [a.name for a in available_analyses()]
    assert {"time-resolved-rsa", "roi-rsa", "rdm-rsa"} <= set(names)
    from brainalign.data.synthetic import cached_brain

    brain = cached_brain(0)
    eeg = {1: brain.eeg(1, "test", average_repetitions=False)}
    fmri = {1: brain.fmri(1, "test")}
    assert [a.name for a in analyses_for(eeg)] == ["time-resolved-rsa"]
    assert [a.name for a in analyses_for(fmri)] == ["roi-rsa"]
    averaged = {1: brain.eeg(1, "test")}  # no repetitions: no decoding RDMs possible
    assert "time-resolved-rsa" not in [a.name for a in analyses_for(averaged)]
    with pytest.raises(ConfigError, match="Did you mean"):
        get_analysis("roi-rs")


def _rdm_files(tmp_path, n=6, k=2):
    from PIL import Image

    rng = np.random.default_rng(0)
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(img_dir / f"im{i}.png")
    x = rng.normal(size=(k, n, 5))
    rdms = np.stack([1 - np.corrcoef(xi) for xi in x])
    np.save(tmp_path / "rdms.npy", rdms)
    return tmp_path / "rdms.npy", img_dir


def test_compare_precomputed_rdms_and_stage_times(tmp_path, capsys):
    from brainalign.cli import main

    path, images = _rdm_files(tmp_path)
    out = tmp_path / "rep"
    code = main(["compare", "cornet_tiny", "cornet_tiny", "--rdms", f"rdm:{path}", "--rdm-images", str(images),
                 "--out", str(out), "--no-pretrained", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Precomputed RDMs" in text and "[time] features" in text
    res = json.loads((out / "results.json").read_text())
    assert res["analyses"] == {"rdm-rsa": "rdms"} and res["eeg"] is None
    assert res["rdms"]["rois"] == ["RDM 1", "RDM 2"]
    vals = np.array(res["rdms"]["values"]["cornet_tiny"])  # (n_layers, n_subjects, n_rdms)
    assert vals.shape[1:] == (1, 2) and np.isfinite(vals).all()
    assert np.allclose(vals, res["rdms"]["values"]["cornet_tiny (2)"])  # same seed, same random model
    assert {"load", "features", "RSA", "statistics", "figures"} <= set(res["stages"])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["analysis"] for r in rows} == {"rdms"} and {r["roi"] for r in rows} == {"RDM 1", "RDM 2"}
    assert (out / "rdms.png").is_file() and "Precomputed" in (out / "report.md").read_text()


def test_compare_synthetic_stage_times_and_outcome(tmp_path):
    from brainalign.evaluate.compare import run_compare

    o = run_compare(["cornet_tiny"], subjects=[1], out=tmp_path / "r", pretrained=False, n_permutations=10,
                    cache_dir=tmp_path / "c", progress=False, log=lambda *a: None)
    assert STAGES <= set(o.stages) and all(v >= 0 for v in o.stages.values())
    assert set(o.results) == {"time-resolved-rsa", "roi-rsa"} and o.eeg is o.results["time-resolved-rsa"].value
    assert json.loads((tmp_path / "r" / "results.json").read_text())["stages"] == o.stages


class _MeanDissimilarity(Analysis):
    """A test analysis: each model layer's mean RDM value on fMRI-like data."""

    name = "mean-dissimilarity"
    key = "mean_dissimilarity"

    def supports(self, data):
        return all(getattr(d, "responses", None) is not None and d.responses.ndim == 2 for d in data.values())

    def run(self, context):
        rows = []
        for m in context.models:
            for s, d in context.data.items():
                rdms = m.for_subject(s, d.images.fingerprint())
                rows += [{"analysis": self.name, "model": m.label, "layer": lab, "subject": s, "measure": "mean",
                          "value": float(v.mean())} for lab, v in zip(m.layer_labels, rdms)]
        return AnalysisResult(self.name, self.key, rows=rows, markdown="## Mean dissimilarity\n",
                              summary="mean dissimilarity", json={"rows": rows})


def test_plugin_analysis_runs_in_compare_and_models_load_one_at_a_time(tmp_path, monkeypatch):
    import sys
    import types

    from brainalign.evaluate import compare as cmp
    from brainalign.hookspecs import hookimpl
    from brainalign.plugin_manager import get_plugin_manager, register_plugin

    mod = types.ModuleType("test_mean_dissimilarity_plugin")
    mod.brainalign_analyses = hookimpl(lambda: [_MeanDissimilarity()])
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    pm = get_plugin_manager()
    register_plugin(pm, mod, "test-mean-dissimilarity")
    alive = []
    real_resolve = cmp.resolve_entries

    def resolve(texts, *a, **kw):  # record each loaded model; the earlier ones must be gone by then
        assert all(ref() is None for ref in alive), "an earlier model is still in memory"
        entries = real_resolve(texts, *a, **kw)
        alive.append(weakref.ref(entries[0].shared.model))
        return entries

    monkeypatch.setattr(cmp, "resolve_entries", resolve)
    try:
        o = cmp.run_compare(["cornet_tiny", "cornet_tiny"], fmri="synthetic", subjects=[1, 2],
                            analyses=["mean-dissimilarity", "roi-rsa"], out=tmp_path / "r", pretrained=False,
                            progress=False, log=lambda *a: None)
    finally:
        pm.unregister(name="test-mean-dissimilarity")
    gc.collect()
    assert len(alive) == 2
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["analyses"] == {"mean-dissimilarity": "mean_dissimilarity", "roi-rsa": "fmri"}
    assert len(res["mean_dissimilarity"]["rows"]) == 2 * 2 * 4  # models x subjects x layers
    assert "mean dissimilarity" in o.table and "## Mean dissimilarity" in (tmp_path / "r" / "report.md").read_text()


def test_an_incomplete_plugin_analysis_is_refused_naming_what_is_missing(monkeypatch):
    import sys
    import types

    from brainalign.analyses import Analysis, available_analyses
    from brainalign.errors import PluginError
    from brainalign.hookspecs import hookimpl
    from brainalign.plugin_manager import get_plugin_manager, register_plugin

    class NoRun(Analysis):
        name = "no-run"

        def supports(self, data):
            return True

    mod = types.ModuleType("test_incomplete_analysis_plugin")
    mod.brainalign_analyses = hookimpl(lambda: [NoRun()])
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    pm = get_plugin_manager()
    register_plugin(pm, mod, "test-incomplete-analysis")
    try:
        with pytest.raises(PluginError, match=r"'test-incomplete-analysis'.*NoRun that does not define run"):
            available_analyses()
    finally:
        pm.unregister(name="test-incomplete-analysis")
    assert "no-run" not in [a.name for a in available_analyses()]
