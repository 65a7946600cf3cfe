"""`brainalign variability` through the CLI: bad input (the demo test runs it on real aligned models)."""
from __future__ import annotations

import pytest

from brainalign.cli import main


@pytest.mark.parametrize("args, needle", [
    (["cornet_tiny"], "at least two"),
    (["cornet_tiny", "cornet_tiny", "--layers", "V9"], "V9"),
    (["cornet_tiny", "/no/such/aligned.pt"], "not found"),
])
def test_variability_bad_input(tmp_path, capsys, args, needle):
    code = main(["variability", *args, "--no-pretrained", "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_variability_random_models(tmp_path):
    import json

    out = tmp_path / "v"
    code = main(["variability", "cornet_tiny", "timm:resnet10t", "--layers", "V1", "--no-pretrained",
                 "--max-images", "10", "--out", str(out), "--no-progress"])
    # different architectures share no layer label 'V1' -> a clear error, exit 2
    assert code == 2
    code = main(["variability", "cornet_tiny", "cornet_tiny", "--no-pretrained", "--max-images", "10",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    res = json.loads((out / "results.json").read_text())
    assert all(abs(v) < 1e-9 for m in res["matrices"].values() for row in m for v in row)  # same seed = same model
