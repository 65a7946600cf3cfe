"""`brainalign robustness` through the CLI: labelled image folders, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from brainalign.cli import main


@pytest.fixture
def image_folder(tmp_path):
    """root/<class index>/<image>.png: 2 classes x 3 random images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    for c in ("0", "7"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_robustness_folder_labels(image_folder, tmp_path, capsys):
    out = tmp_path / "rob"
    code = main(["robustness", "cornet_tiny", "--no-pretrained", "--images", str(image_folder), "--labels", "folder",
                 "--eps", "0,0.05", "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    curve = res["curves"][0]
    assert res["meta"]["labels"] == "folder" and res["meta"]["n_images"] == 6
    assert curve["eps"] == [0.0, 0.05] and 0.0 <= curve["top1"][0] <= 1.0
    assert all(b <= 1e-9 for b in curve["top5_baseline_aligned"][1:]) or curve["top5"][0] < 1
    text = capsys.readouterr().out
    assert "top-5 %" in text and "report.md" in text


@pytest.mark.parametrize("args, needle", [
    (["cornet_tiny", "--images", "/nonexistent/folder"], "not found"),
    (["cornet_tiny", "--labels", "folder"], "class subfolders"),
    (["cornet_tiny", "--eps", "0,abc"], "--eps"),
    (["resnet_9000"], "unknown backbone"),
])
def test_robustness_bad_input(tmp_path, capsys, args, needle):
    code = main(["robustness", *args, "--no-pretrained", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_folder_labels_that_do_not_fit_the_model(tmp_path, capsys):
    root = tmp_path / "imgs"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(root / c / "a.png")
    code = main(["robustness", "cornet_tiny", "--no-pretrained", "--images", str(root), "--labels", "folder",
                 "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "--labels model" in capsys.readouterr().err


def test_clip_zero_shot_robustness(tmp_path, monkeypatch):
    """Embedding models go through the zero-shot head (5 class names here to keep it fast)."""
    import open_clip

    monkeypatch.setattr(open_clip, "IMAGENET_CLASSNAMES", ("tench", "goldfish", "shark", "cock", "hen"))
    out = tmp_path / "clip"
    code = main(["robustness", "clip", "--no-pretrained", "--templates", "single", "--max-images", "3",
                 "--eps", "0,0.01", "--batch-size", "3", "--cache-dir", str(tmp_path / "cache"), "--out", str(out),
                 "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert res["curves"][0]["top1"][0] == 1.0  # labels = its own zero-shot predictions
    assert list((tmp_path / "cache" / "zero_shot").glob("*.pt"))


def test_labels_auto_uses_ground_truth_when_the_folders_have_it_and_says_when_not(image_folder, tmp_path):
    out = tmp_path / "auto_folder"
    assert main(["robustness", "cornet_tiny", "--no-pretrained", "--images", str(image_folder), "--eps", "0",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["meta"]["labels"] == "folder" and "ground truth" in res["meta"]["label_note"]
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in image_folder.rglob("*.png"):
        (flat / f"{p.parent.name}_{p.name}").write_bytes(p.read_bytes())
    out = tmp_path / "auto_model"
    assert main(["robustness", "cornet_tiny", "--no-pretrained", "--images", str(flat), "--eps", "0",
                 "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert res["meta"]["labels"] == "model" and "not ground truth" in report and "as in the paper" not in report
