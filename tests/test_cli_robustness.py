"""`brainalign robustness` through the CLI: labelled image folders, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.cli import main
from brainalign.errors import ConfigError


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


class _Linear(torch.nn.Module):
    """images (n, 3, H, W) -> logits (n, k): a stand-in classifier, fast and deterministic."""

    def __init__(self, k, seed=0):
        super().__init__()
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(48, k)
        torch.nn.init.normal_(self.fc.weight, generator=torch.Generator().manual_seed(seed))

    def forward(self, x):
        return self.fc(self.pool(x).flatten(1))


def test_synthetic_images_attack_their_ground_truth_classes_when_the_model_has_them():
    from brainalign.analyses.robustness import attack_targets
    from brainalign.evaluate.image_sources import load_image_source

    src = load_image_source("synthetic", max_images=6)
    assert src.class_labels is not None and len(src.class_labels) == 6 and src.n_label_classes >= 2
    kw = dict(class_labels=src.class_labels, n_label_classes=src.n_label_classes, source=src.source)
    truth = attack_targets(src.images, _Linear(src.n_label_classes), **kw)
    assert truth.kind == "classes" and truth.ground_truth and np.array_equal(truth.labels, src.class_labels)
    assert "ground truth" in truth.note and "not ground truth" not in truth.note
    other = _Linear(1000)  # e.g. an ImageNet model: the coarse classes are not its classes
    pred = attack_targets(src.images, other, reference_name="ref", **kw)
    assert pred.kind == "model" and not pred.ground_truth and pred.reference == "ref"
    with torch.inference_mode():
        assert np.array_equal(pred.labels, other(src.images.load(np.arange(6))).argmax(1).numpy())
    assert "not ground truth" in pred.note and "as in the paper" not in pred.note
    with pytest.raises(ConfigError, match="--labels model"):
        attack_targets(src.images, other, mode="folder", **kw)
    assert attack_targets(src.images, _Linear(src.n_label_classes), mode="model", **kw).kind == "model"


def test_robustness_is_a_registered_analysis_and_the_cli_runs_it(image_folder, tmp_path, monkeypatch):
    from brainalign.analyses import AnalysisContext, analyses_for, get_analysis
    from brainalign.analyses.robustness import AttackImages, Robustness
    from brainalign.data.synthetic import cached_brain

    analysis = get_analysis("robustness")
    assert isinstance(analysis, Robustness)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    targets = AttackImages(images, np.array([0, 1, 2, 1]), "classes", "ground truth: test labels", "tensor")
    assert analysis.supports({"images": targets}) and analysis.stimuli({"images": targets}) == {}
    assert "robustness" not in [a.name for a in analyses_for({1: cached_brain(0).eeg(1, "test")})]

    class Src:
        def __init__(self, label, seed):
            self.label, self.model = label, _Linear(3, seed)

    res = analysis.run(AnalysisContext(data={"images": targets}, models=[Src("a", 0), Src("b", 1)], out=tmp_path,
                                       progress=False, log=lambda *a: None,
                                       options={"classifier": lambda s: s.model, "eps": [0.0, 0.1]}))
    assert [c.model for c in res.value] == ["a", "b"] and res.figures["robustness"].is_file()
    assert res.json["labels"] == "classes" and "ground truth: test labels" in res.markdown
    a0 = [r for r in res.rows if r["model"] == "a" and r["measure"] == "top1" and r["eps"] == 0.0]
    with torch.inference_mode():
        assert a0[0]["value"] == pytest.approx(float((Src("a", 0).model(images).argmax(1).numpy()
                                                      == targets.labels).mean()))

    calls = []
    run = Robustness.run
    monkeypatch.setattr(Robustness, "run", lambda self, ctx: calls.append(ctx) or run(self, ctx))
    out = tmp_path / "cli"
    assert main(["robustness", "cornet_tiny", "--no-pretrained", "--images", str(image_folder), "--eps", "0",
                 "--out", str(out), "--no-progress"]) == 0
    assert len(calls) == 1 and calls[0].data["images"].kind == "folder"
    assert json.loads((out / "results.json").read_text())["meta"]["ground_truth"] is True


def test_fgsm_curve_shares_one_gradient_across_eps_and_equals_fgsm_per_eps():
    from brainalign.evaluate.robustness import fgsm, robustness_curve

    torch.manual_seed(0)
    clf = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 7)).eval()
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 7, (10,), generator=torch.Generator().manual_seed(2))
    eps = [0.0, 0.02, 0.1, 0.3]
    calls = []
    clf.register_forward_hook(lambda *a: calls.append(1))
    curve = robustness_curve(clf, x, y.numpy(), eps=eps, batch_size=4, progress=False)
    assert len(calls) == 3 * len(eps)  # per batch: 1 forward with the gradient (clean logits) + 1 per eps > 0
    for e, top1, top5 in zip(eps, curve.top1, curve.top5):
        adv = fgsm(clf, x, y, e)
        with torch.inference_mode():
            logits = clf(adv)
        assert top1 == pytest.approx(float((logits.argmax(1) == y).float().mean()))
        assert top5 == pytest.approx(float((logits.topk(5, 1).indices == y[:, None]).any(1).float().mean()))
