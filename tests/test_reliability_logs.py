"""Daily use (issue 13): long commands print per-stage wall times and, in a log file (stderr not a
terminal), compact lines instead of progress-bar carriage returns."""
from __future__ import annotations

import json

from brainalign.cli import main


def test_variability_logs_and_saves_its_stage_times(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_PROGRESS", "lines")  # as in a Slurm log
    out = tmp_path / "var"
    assert main(["variability", "cornet_tiny", "cornet_tiny", "--no-pretrained", "--max-images", "6",
                 "--out", str(out)]) == 0
    cap = capsys.readouterr()
    stages = json.loads((out / "results.json").read_text())["meta"]["stages"]
    assert list(stages) == ["load", "models", "RDMs", "variability"]  # 'report' is timed after it is written
    for name in [*stages, "report"]:
        assert f"[time] {name}: " in cap.out
    assert "Done in " in cap.out and "(load " in cap.out and "\r" not in cap.err


def test_robustness_logs_and_saves_its_stage_times(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BRAINALIGN_PROGRESS", "lines")
    out = tmp_path / "rob"
    assert main(["robustness", "cornet_tiny", "--no-pretrained", "--max-images", "4", "--eps", "0,0.01",
                 "--batch-size", "4", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    stages = json.loads((out / "results.json").read_text())["meta"]["stages"]
    assert list(stages) == ["load", "models", "labels", "attack"]
    for name in [*stages, "report"]:
        assert f"[time] {name}: " in cap.out
    assert "Done in " in cap.out and "(load " in cap.out and "\r" not in cap.err
