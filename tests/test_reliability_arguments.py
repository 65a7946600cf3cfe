"""Issue 13 classes 1-2: bad numeric arguments and degenerate inputs fail as one line (exit 2), through
the CLI and the API, before anything is written; file-system problems on output paths are one line too."""
from __future__ import annotations

import errno

import pytest

from brainalign.cli import main
from brainalign.errors import ConfigError, DataError


@pytest.mark.parametrize("argv,needle", [
    (["compare", "cornet_tiny", "--seed", "-1"], "--seed must be between 0"),
    (["compare", "cornet_tiny", "--permutations", "-5"], "--permutations must be >= 1"),
    (["compare", "cornet_tiny", "--permutations", "0"], "--permutations must be >= 1"),
    (["compare", "cornet_tiny", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["robustness", "cornet_tiny", "--seed", "-3"], "--seed must be between 0"),
    (["robustness", "cornet_tiny", "--steps", "abc"], "--steps must be an integer"),
    (["variability", "cornet_tiny", "cornet_tiny", "--max-images", "2"], "--max-images must be >= 3"),
    (["align", "cornet_tiny", "--seed", "-1"], "seed must be between 0"),
    (["align", "cornet_tiny", "--lr", "abc"], "'abc'"),
    (["align", "cornet_tiny", "--lr", "-1"], "lr must be > 0"),
    (["align", "cornet_tiny", "--lr", "nan"], "lr must be a finite number"),
    (["align", "cornet_tiny", "--epochs", "0"], "epochs must be"),
    (["align", "cornet_tiny", "--batch-size", "0"], "batch_size must be >= 1"),
    (["synth", "--seed", "-1"], "--seed must be between 0"),
    (["demo", "--quick", "--seed", "-1"], "--seed must be between 0"),
    (["demo", "--quick", "--epochs", "0"], "--epochs must be >= 1"),
    (["synth", "--subjects", "0"], "--subjects must be >= 1"),
    (["synth", "--snr", "0"], "--snr must be > 0"),
])
def test_cli_bad_numbers_are_one_line(tmp_path, capsys, argv, needle):
    out = tmp_path / "o"
    assert main([*argv, "--out", str(out), *(["--no-pretrained"] if argv[0] not in ("synth", "demo") else [])]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_api_bad_numbers_are_config_errors(tmp_path):
    from brainalign.evaluate.compare import run_compare
    from brainalign.evaluate.robustness_run import run_robustness

    with pytest.raises(ConfigError, match="n_permutations must be >= 1"):
        run_compare(["cornet_tiny"], n_permutations=0, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="seed must be between 0"):
        run_compare(["cornet_tiny"], seed=-1, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="batch_size must be an integer"):
        run_robustness(["cornet_tiny"], batch_size="8", out=tmp_path / "c")
    from brainalign.alignment import align

    from align_helpers import TinyNet, tiny_dataset

    for bad, match in ((dict(lr="abc"), "lr must be a finite number, got 'abc'"), (dict(lr=-1.0), "lr must be > 0"),
                       (dict(epochs=0), "epochs must be"), (dict(seed=-1), "seed must be between 0")):
        with pytest.raises(ConfigError, match=match):  # was a TypeError deep in the optimiser for lr='abc'
            align(TinyNet(), eeg=tiny_dataset(), layers=["block1"], device="cpu", progress=False,
                  out_dir=tmp_path / "run", **bad)
    from brainalign.data.synthetic import SyntheticBrain

    with pytest.raises(ConfigError, match="SyntheticConfig.seed must be between 0"):
        SyntheticBrain(seed=-1)
    assert not any(tmp_path.iterdir())


def test_variability_needs_three_images(tmp_path):
    import torch

    from brainalign.evaluate.model_sources import resolve_model
    from brainalign.evaluate.variability import compute_variability

    srcs = [resolve_model("cornet_tiny", pretrained=False, seed=s) for s in (0, 1)]
    with pytest.raises(DataError, match="at least 3 images"):
        compute_variability(srcs, torch.rand(2, 3, 64, 64), progress=False)
    mats = compute_variability(srcs, torch.rand(3, 3, 64, 64), progress=False)
    assert all(m.shape == (2, 2) for m in mats.values())


def test_cache_dir_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys):
    f = tmp_path / "cache"
    f.write_text("not a folder")
    assert main(["compare", "cornet_tiny", "--no-pretrained", "--cache-dir", str(f), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--cache-dir" in err and "is a file" in err and len(err.strip().splitlines()) == 1


def test_unwritable_out_is_one_line(tmp_path, capsys, monkeypatch):
    """Root may write anywhere here, so the OS refusal is simulated where the folder is created."""
    import pathlib

    real_mkdir = pathlib.Path.mkdir

    def refuse(self, *a, **k):
        if "readonly" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "mkdir", refuse)
    target = tmp_path / "readonly" / "report"
    assert main(["compare", "cornet_tiny", "--no-pretrained", "--out", str(target), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "--out" in err and len(err.strip().splitlines()) == 1
