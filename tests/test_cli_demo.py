"""`brainalign demo --quick`, then `robustness` and `variability` on the demo's saved models (CLI)."""
from __future__ import annotations

import json

import pytest

from brainalign.cli import main


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    cache = tmp_path_factory.mktemp("cache")
    code = main(["demo", "--quick", "--out", str(out), "--cache-dir", str(cache), "--no-progress"])
    assert code == 0
    return out


def test_demo_outputs(demo_dir, capsys):
    for name in ("report.md", "results.json", "results.csv", "demo_scores.json", "eeg_timecourses.png",
                 "eeg_best_layer.png", "fmri_rois.png", "models/unaligned.pt",
                 "models/sub-01_beta-300/aligned.pt", "models/sub-02_beta-300/aligned.pt",
                 "models/sub-01_beta-300_unpaired/aligned.pt", "models/runs.json", "models/runs.tsv"):
        assert (demo_dir / name).is_file(), name
    scores = json.loads((demo_dir / "demo_scores.json").read_text())
    assert set(scores["eeg"]) == {"unaligned", "aligned", "unpaired control"}
    report = (demo_dir / "report.md").read_text()
    assert "## Verdict" in report and "brainalign robustness" in report
    # never overwrite a previous report without --overwrite
    assert main(["demo", "--quick", "--out", str(demo_dir), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_robustness_on_demo_models(demo_dir, tmp_path):
    models = demo_dir / "models"
    out = tmp_path / "rob"
    code = main(["robustness", f"cornet_tiny@{models / 'unaligned.pt'}", str(models / "sub-01_beta-300"),
                 str(models / "sub-01_beta-300_unpaired" / "aligned.pt"), "--images", "synthetic", "--labels", "model",
                 "--eps", "0,0.03", "--max-images", "12", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert [c["model"] for c in res["curves"]] == ["unaligned", "sub-01_beta-300", "sub-01_beta-300_unpaired"]
    ref = res["curves"][0]
    assert ref["top1"][0] == 1.0  # labels are the reference (unaligned) model's own predictions
    for c in res["curves"]:
        assert c["top1_baseline_aligned"][0] == 0.0 and len(c["top5"]) == 2
    assert (out / "robustness.png").is_file() and (out / "results.csv").is_file()
    # PGD option runs too
    assert main(["robustness", f"cornet_tiny@{models / 'unaligned.pt'}", "--attack", "pgd", "--steps", "2",
                 "--eps", "0,0.03", "--max-images", "6", "--out", str(tmp_path / "pgd"), "--no-progress"]) == 0


def test_variability_on_demo_models(demo_dir, tmp_path):
    models = demo_dir / "models"
    out = tmp_path / "var"
    code = main(["variability", str(models / "sub-01_beta-300"), str(models / "sub-02_beta-300"),
                 str(models / "sub-01_beta-300_unpaired"), "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["layers"] == ["V1", "V2", "V4", "IT"]
    for layer, m in res["matrices"].items():
        assert len(m) == 3 and m[0][0] == 0.0 and abs(m[0][1] - m[1][0]) < 1e-9
        assert m[0][1] > 0  # two subjects' personalised models differ
    assert (out / "variability.png").is_file()


def test_personalised_model_for_the_wrong_subject_is_refused(demo_dir, tmp_path, capsys):
    import shutil

    # both subjects' folders hold subject 1's model
    for s in (1, 2):
        shutil.copytree(demo_dir / "models" / "sub-01_beta-300", tmp_path / f"sub-{s}")
    tmpl = str(tmp_path / "sub-{subject}")
    code = main(["compare", "cornet_tiny", tmpl, "--subjects", "1,2", "--no-pretrained",
                 "--out", str(tmp_path / "c"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "aligned to subject 1" in err and "Traceback" not in err


def test_compare_personalised_template(demo_dir, tmp_path):
    models = demo_dir / "models"
    out = tmp_path / "cmp"
    code = main(["compare", f"cornet_tiny@{models / 'unaligned.pt'}", str(models / "sub-{subject:02d}_beta-300"),
                 "--subjects", "1,2", "--eeg", "synthetic", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["eeg"]["models"] == ["unaligned", "sub-XX_beta-300"]
    per_subject = res["meta"]["models"][1]["personalised"]
    assert [per_subject[s]["path"].split("/")[-2] for s in ("1", "2")] == ["sub-01_beta-300", "sub-02_beta-300"]
    assert res["fmri"] is None  # only --eeg was given


def test_demo_reports_ratio_and_cluster_test(demo_dir):
    scores = json.loads((demo_dir / "demo_scores.json").read_text())
    e, ratio = scores["eeg"], scores["eeg_ratio"]
    assert abs(ratio["aligned"] - (e["aligned"] - e["unaligned"]) / e["unaligned"]) < 1e-9
    assert ratio["unaligned"] == 0.0
    gap, best = scores["eeg_gap"], scores["eeg_best_layer"]  # 3 subjects: a noise ceiling exists
    assert abs(gap["gap"] - (gap["noise_ceiling_lower"] - best["unaligned"])) < 1e-9
    assert abs(gap["closed"]["aligned"] * gap["gap"] - (best["aligned"] - best["unaligned"])) < 1e-9
    assert gap["closed"]["unaligned"] == 0.0
    assert list(scores["stages"]) == ["synthetic brain", "starting model", "alignment", "comparison"]
    # 3 subjects: the sign-flip cluster test runs for every model vs the unaligned one
    assert set(scores["eeg_cluster_p"]) == {"aligned", "unpaired control"}
    assert "max over layers" in scores["eeg_cluster_p"]["aligned"]
    report = (demo_dir / "report.md").read_text()
    assert "EEG cluster test vs unaligned (3 subjects" in report and "ratio vs unaligned" in report
    assert not list(demo_dir.glob(".models*"))  # the staging folder is gone
    runs = json.loads((demo_dir / "models" / "runs.json").read_text())  # the demo ran the align grid
    assert [r["name"] for r in runs["runs"]] == [f"sub-0{s}_beta-300{c}" for s in (1, 2, 3) for c in ("", "_unpaired")]


@pytest.mark.parametrize("existing", [False, True])
def test_failed_demo_leaves_no_model_file(tmp_path, monkeypatch, existing):
    import brainalign.alignment as alignment
    from brainalign.evaluate.demo import DemoSettings, run_demo

    def broken(*a, **k):
        raise RuntimeError("simulated failure during alignment")

    monkeypatch.setattr(alignment, "align", broken)
    out = tmp_path / "demo"
    if existing:  # a user's folder, reused with overwrite: their file stays, no model file appears
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    settings = DemoSettings.quick(classifier_epochs=1)
    with pytest.raises(RuntimeError, match="simulated"):
        run_demo(out, overwrite=existing, settings=settings, progress=False, log=lambda *a: None)
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    else:
        assert not out.exists()


def test_demo_refuses_a_bad_zscore_before_any_work(tmp_path, capsys):
    assert main(["demo", "--quick", "--zscore", "both", "--out", str(tmp_path / "d")]) == 2
    assert "invalid choice" in capsys.readouterr().err and not (tmp_path / "d").exists()
