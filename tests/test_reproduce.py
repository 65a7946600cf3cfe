"""brainalign reproduce: a --quick run writes every figure, report section and the verdict; the
verdict logic on constructed statistics; bad input is one line, exit 2, nothing written."""
from __future__ import annotations

import json

import pytest

from brainalign.cli import main
from brainalign.evaluate.reproduce import ReproduceSettings, judge, run_reproduce, verdict_paragraph

FIGURES = ["fig2a_eeg_timecourses.png", "fig2b_fmri_rois.png", "fig2c_eeg_vs_fmri_gain.png",
           "fig3a_variability_matrices.png", "fig3b_variability_by_layer.png", "fig3c_fgsm.png", "fig4_beta.png",
           "fig5_controls.png"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "run"
    return run_reproduce(out, settings=ReproduceSettings.quick(), progress=False, log=lambda m: None,
                         cache_dir=out.parent / "cache")


def test_quick_run_writes_every_figure_section_and_verdict(quick_run):
    out = quick_run.out
    for name in FIGURES:
        assert (out / name).stat().st_size > 1000, name
    report = (out / "report.md").read_text()
    for key in ("2A", "2B", "2C", "3A", "3B", "3C", "4", "5"):
        assert f"## Figure {key}:" in report
    assert "## Verdict" in report and "claims of the paper held" in report
    res = json.loads((out / "results.json").read_text())
    assert {c["key"] for c in res["claims"]} == {"eeg_gain", "fmri_gain", "eeg_fmri", "unpaired", "no_contrastive",
                                                  "beta", "variability", "robustness"}
    assert all(c["held"] in (True, False) for c in res["claims"])  # the synthetic brain has fMRI: all tested
    assert {"starting model", "align: aligned", "EEG RSA + cluster tests", "FGSM robustness"} <= set(res["stage_times_s"])
    figs = {r["figure"] for r in res["rows"] if "figure" in r}
    assert {"2A", "2B", "2C", "3B", "3C", "4", "5"} <= figs
    # the synthetic test images' coarse classes are the starting model's classes: ground truth
    assert res["label_note"].startswith("ground truth: the 6 classes") and "not ground truth" not in report
    assert "the unaligned model's clean top-1 is" in res["label_note"] and "(chance 16.7 %)" in report
    assert "as in the paper" not in report


def _t(mean, p, n=6):
    return {"mean": mean, "sem": 0.01, "t": 3.0 if mean > 0 else -3.0, "p": p, "n": n}


def _stats(**over):
    st = {"2A": {"gain": _t(0.05, 0.001), "ratio": 0.4, "tested": True, "significant_layers": ["V1", "IT"],
                 "min_cluster_p": 0.016},
          "2B": {"gain": _t(0.03, 0.01), "n_significant": 4, "n_rois": 5},
          "2C": {"r": 0.9, "p": 0.001, "n_models": 36},
          "3B": {"last_minus_first": _t(0.1, 0.002), "layers": ["V1", "V2", "V4", "IT"]},
          "3C": {"at_eps": _t(0.02, 0.03), "attack_eps": 0.02},
          "4": {"eeg_gain": {"trend": {"rho": 0.6, "p": 0.001}}, "robustness": {"trend": {"rho": -0.5, "p": 0.01}}},
          "5": {"unpaired": {"eeg": _t(0.001, 0.8), "eeg_vs_aligned": _t(-0.05, 0.001)},
                "w/o contrastive": {"eeg": _t(0.04, 0.002), "fmri_vs_aligned": _t(-0.02, 0.01), "fmri": _t(0.01, 0.2)}}}
    for k, v in over.items():
        st[k] = v
    return st


def test_verdict_all_claims_hold_on_paper_like_results():
    claims = judge(_stats())
    assert [c["held"] for c in claims] == [True] * 8
    text = verdict_paragraph(claims, synthetic=True)
    assert text.startswith("On this run (the synthetic brain), 8 of 8 tested claims")
    assert "ratio +40 %" in text and "r = 0.90" in text


def test_verdict_each_claim_can_fail():
    st = _stats()
    st["2A"]["gain"] = _t(0.05, 0.2)  # not significant
    st["2C"] = {"r": -0.3, "p": 0.01, "n_models": 36}  # negative correlation
    st["5"]["unpaired"]["eeg"] = _t(0.04, 0.01)  # the control gains too
    st["5"]["w/o contrastive"]["fmri_vs_aligned"] = _t(0.01, 0.5)  # fMRI does not drop
    st["4"]["robustness"]["trend"] = {"rho": 0.5, "p": 0.01}  # robustness rises with beta: no trade-off
    st["3B"]["last_minus_first"] = _t(-0.1, 0.01)
    st["3C"]["at_eps"] = _t(0.02, 0.3)
    held = {c["key"]: c["held"] for c in judge(st)}
    assert held == {"eeg_gain": False, "fmri_gain": True, "eeg_fmri": False, "unpaired": False,
                    "no_contrastive": False, "beta": False, "variability": False, "robustness": False}


def test_verdict_without_fmri_says_not_tested():
    st = _stats()
    del st["2B"], st["2C"]
    del st["5"]["w/o contrastive"]["fmri_vs_aligned"], st["5"]["w/o contrastive"]["fmri"]
    claims = {c["key"]: c for c in judge(st)}
    assert claims["fmri_gain"]["held"] is None and claims["eeg_fmri"]["held"] is None
    assert claims["no_contrastive"]["held"] is None
    assert "5 of 5 tested claims" in verdict_paragraph(list(claims.values()), synthetic=False)


@pytest.mark.parametrize("argv, fragment", [
    (["--subjects", "1"], "--subjects"),
    (["--fmri", "shen:/nowhere"], "--fmri needs --eeg"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, argv, fragment):
    out = tmp_path / "out"
    assert main(["reproduce", "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_a_users_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["reproduce", "--out", str(tmp_path), "--quick", "--no-progress"]) == 2
    assert (tmp_path / "mine.txt").read_text() == "keep" and len(list(tmp_path.iterdir())) == 1
    assert "\n" not in capsys.readouterr().err.strip()


def test_paper_settings():
    s = ReproduceSettings().with_paper_settings()
    assert (s.zscore, s.align_epochs, s.align_lr, s.batch_size, s.seed) == ("global", 30, 2e-5, 16, 2023)
    assert s.sweep_labels == ["beta=1", "beta=10", "aligned", "beta=1000"]


@pytest.mark.parametrize("argv, expected", [([], "feature"), (["--paper-settings"], "global"),
                                            (["--paper-settings", "--zscore", "feature"], "feature"),
                                            (["--zscore", "none"], None)])
def test_zscore_option_reaches_the_eeg(monkeypatch, tmp_path, argv, expected):
    """--paper-settings scales EEG as the paper's code (one mean/std per subject); --zscore overrides it."""
    from types import SimpleNamespace

    import numpy as np

    import brainalign.evaluate.reproduce as reproduce
    from brainalign.evaluate.reproduce.data import synthetic_data

    seen = {}
    monkeypatch.setattr(reproduce, "run_reproduce", lambda out, settings, **k: seen.setdefault(
        "s", settings) and SimpleNamespace(verdict="", out=tmp_path))
    assert main(["reproduce", "--quick", "--out", str(tmp_path / "o"), *argv]) == 0
    s = seen["s"]
    assert s.zscore == expected and s.paper_settings == ("--paper-settings" in argv)
    d = synthetic_data(s)
    train = d.eeg_train[1].responses  # (n_images, n_channels, n_times), trials z-scored then averaged
    assert d.eeg_train[1].meta["zscore"] == expected and d.eeg_test[1].meta["zscore"] == expected
    per_feature = np.abs(train.mean(axis=0)).max()
    if expected == "feature":
        assert per_feature < 1e-4
    elif expected == "global":  # one mean over everything: 0 overall, not per channel x time point
        assert abs(float(train.mean())) < 1e-4 and per_feature > 0.05
