"""`brainalign compare` through the CLI entry point: outputs, cache reuse and bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from brainalign.cli import main

BASE = ["--no-pretrained", "--subjects", "1-3", "--permutations", "50", "--no-progress"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


def test_compare_synthetic_writes_report(tmp_path, cache_dir, capsys):
    out = tmp_path / "rep"
    code = main(["compare", "cornet_tiny", "cornet_tiny", "--out", str(out), "--cache-dir", cache_dir, *BASE])
    text = capsys.readouterr().out
    assert code == 0
    assert "synthetic brain" in text and "EEG RSA" in text and "fMRI RSA" in text
    for name in ("results.json", "results.csv", "report.md", "eeg_timecourses.png", "eeg_best_layer.png",
                 "fmri_rois.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["synthetic"] is True
    assert res["eeg"]["models"] == ["cornet_tiny", "cornet_tiny (2)"]
    vals = np.array(res["eeg"]["values"]["cornet_tiny"])
    assert vals.shape == (4, 3, 20) and np.isfinite(vals).all()
    # same seed for random weights: the duplicate is the same model, so no difference is significant
    assert not any(any(s["mask"]) for s in res["eeg"]["significance"])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["analysis"] for r in rows} == {"eeg", "fmri"}
    assert set(rows[0]) == {"analysis", "model", "layer", "subject", "time_ms", "roi", "measure", "value"}
    assert len([r for r in rows if r["analysis"] == "eeg"]) == 2 * 4 * 3 * 20
    report = (out / "report.md").read_text()
    assert "Synthetic data" in report and "eeg_timecourses.png" in report and "fmri_rois.png" in report

    # a second run reuses the cached decoding RDMs and refuses to overwrite the report
    assert main(["compare", "cornet_tiny", "--out", str(out), "--cache-dir", cache_dir, *BASE]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["compare", "cornet_tiny", "--out", str(out), "--overwrite", "--cache-dir", cache_dir,
                 "--eeg", "synthetic", *BASE]) == 0
    assert "from cache" in capsys.readouterr().out


@pytest.mark.parametrize("args, needle", [
    (["cornet_tinyy"], "Did you mean"),
    (["not/a/model.pt"], "not found"),
    (["cornet_tiny", "--eeg", "things-eeg2:/nonexistent/root"], "nonexistent"),
    (["cornet_tiny", "--subjects", "1-x"], "--subjects"),
])
def test_compare_bad_input_one_line_exit_2(tmp_path, capsys, args, needle):
    code = main(["compare", *args, "--out", str(tmp_path / "o"), "--no-pretrained", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_compare_refuses_non_model_file_and_out_file(tmp_path, capsys):
    junk = tmp_path / "notes.pt"
    junk.write_text("this is not a model")
    assert main(["compare", str(junk), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "aligned-model file" in capsys.readouterr().err
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["compare", "cornet_tiny", "--out", str(f), "--no-pretrained", "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err


def test_mismatched_image_sets_are_refused():
    from brainalign.errors import DataError
    from brainalign.evaluate.data_sources import synthetic_brain
    from brainalign.evaluate.eeg import check_same_images

    brain = synthetic_brain("synthetic")
    a = brain.eeg(1, "test", average_repetitions=False)
    b = brain.eeg(2, "test", average_repetitions=False)
    b = b.subset(np.arange(len(b))[::-1].copy())  # same images, other order
    with pytest.raises(DataError, match="different image set"):
        check_same_images({1: a, 2: b}, "EEG test images")
