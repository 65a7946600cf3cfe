"""The example plugin packages (examples/plugin_analysis, plugin_dataset, plugin_objective) install with pip
and work: the dataset source and the analysis in compare, the objective by name in the objective registry."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from brainalign.plugin_manager import get_plugin_manager

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PACKAGES = {"plugin_analysis": "brainalign_meandissim", "plugin_dataset": "brainalign_npzdata",
            "plugin_objective": "brainalign_rdmmse"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("example_plugins")
    target = root / "site"
    srcs = []
    for folder in PACKAGES:
        shutil.copytree(EXAMPLES / folder, root / folder)  # build in a copy: the repository stays clean
        srcs.append(str(root / folder))
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), *srcs], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sys.path.insert(0, str(target))
    get_plugin_manager(refresh=True)
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in PACKAGES.values():
            sys.modules.pop(name, None)
        get_plugin_manager(refresh=True)


def test_example_dataset_and_analysis_in_compare(installed, tmp_path):
    from brainalign.analyses import get_analysis
    from brainalign.data.registry import source_subjects
    from brainalign.evaluate.compare import run_compare

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "study.npz", images=rng.integers(0, 255, (8, 16, 16, 3), dtype=np.uint8),
             responses=rng.normal(size=(2, 8, 30)).astype(np.float32), rois=np.array(["V1"] * 15 + ["IT"] * 15))
    assert source_subjects(f"npz:{tmp_path / 'study.npz'}") == [1, 2]
    assert type(get_analysis("mean-dissimilarity")).__module__ == "brainalign_meandissim"
    o = run_compare(["cornet_tiny"], fmri=f"npz:{tmp_path / 'study.npz'}", out=tmp_path / "r", pretrained=False,
                    progress=False, log=lambda *a: None)
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["analyses"] == {"roi-rsa": "fmri", "mean-dissimilarity": "mean-dissimilarity"}
    assert res["fmri"]["rois"] == ["V1", "IT"]
    assert len(res["mean-dissimilarity"]["rows"]) == 2 * 4  # subjects x layers
    assert "## Mean dissimilarity" in (tmp_path / "r" / "report.md").read_text()
    assert o.results["mean-dissimilarity"].rows[0]["value"] > 0


def test_example_objective_by_name(installed):
    import torch

    from brainalign.alignment.objectives import ObjectiveBatch, available_objectives, parse_objective

    spec = available_objectives()["rdm-mse"]
    assert parse_objective("realnet+0.5*rdm-mse") == (("realnet", 1.0), ("rdm-mse", 0.5))
    objective = spec.factory({})
    torch.manual_seed(0)
    act = torch.randn(6, 4, 3, 3, requires_grad=True)
    targets = torch.randn(6, 10)
    terms = objective(ObjectiveBatch({"V1": act}, torch.randn(6, 5), torch.randn(6, 10), targets))
    assert set(terms) == set(objective.terms) and terms["rdm_mse"] > 0
    terms["rdm_mse"].backward()
    assert torch.isfinite(act.grad).all() and act.grad.abs().sum() > 0
    same = objective(ObjectiveBatch({"V1": targets.clone()}, torch.randn(6, 5), targets, targets))
    assert float(same["rdm_mse"]) < 1e-10  # a layer with the neural geometry costs nothing
