"""Resource limits: memory estimates fail early with the estimate and the fix; streaming stays bounded."""
import numpy as np
import pytest
import torch
from torch import nn

from brainalign import resources
from brainalign.errors import BrainAlignError, ConfigError, ResourceError
from brainalign.features import extract_features, iter_features
from brainalign.rsa import RDMAccumulator, rdm


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))


@pytest.mark.parametrize("text,expected", [("1000", 1000), ("2GB", 2 * 10**9), ("2 gb", 2 * 10**9),
                                           ("512MiB", 512 * 2**20), ("1.5G", 1_500_000_000), ("10k", 10_000),
                                           (4096, 4096)])
def test_parse_bytes(text, expected):
    assert resources.parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["lots", "2XB", "-5GB", "0", "", "GB"])
def test_parse_bytes_rejects_unreadable_sizes(bad):
    with pytest.raises(ConfigError, match="memory size"):
        resources.parse_bytes(bad)


def test_available_memory_reads_the_os(monkeypatch):
    avail = resources.available_memory_bytes()
    assert avail is None or avail > 0
    monkeypatch.delenv(resources.ENV_VAR, raising=False)
    budget, source = resources.memory_budget_bytes()
    if avail is not None:  # the budget is a safe fraction of what is available now
        assert 0 < budget <= avail and "available" in source


def test_available_memory_falls_back_without_proc_and_sysconf(monkeypatch):
    import builtins

    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr(resources.os, "sysconf", lambda name: 1000 if name == "SC_AVPHYS_PAGES" else 4096)
    assert resources.available_memory_bytes() == 4_096_000

    def missing(name):
        raise ValueError(name)

    monkeypatch.setattr(resources.os, "sysconf", missing)
    monkeypatch.delenv(resources.ENV_VAR, raising=False)
    assert resources.available_memory_bytes() is None
    assert resources.memory_budget_bytes() == (None, "unknown")
    resources.check_memory(10**15, "anything", "nothing")  # unknown budget: nothing is refused


def test_check_memory_message_names_estimate_what_and_fix(monkeypatch):
    monkeypatch.setenv(resources.ENV_VAR, "1GB")
    resources.check_memory(10**9, "exactly the budget", "n/a")  # equal is fine
    with pytest.raises(ResourceError) as info:
        resources.check_memory(3 * 10**9, "the RDM of 20000 images", "use fewer images")
    msg = str(info.value)
    assert "3 GB" in msg and "the RDM of 20000 images" in msg and "use fewer images" in msg
    assert "BRAINALIGN_MEMORY_LIMIT=1GB" in msg
    assert isinstance(info.value, BrainAlignError) and isinstance(info.value, MemoryError)


def test_bad_memory_limit_env_is_a_config_error(monkeypatch):
    monkeypatch.setenv(resources.ENV_VAR, "plenty")
    with pytest.raises(ConfigError, match="BRAINALIGN_MEMORY_LIMIT|memory size"):
        resources.check_memory(1, "x", "y")


def test_extract_features_fails_before_allocating_outputs(monkeypatch):
    net, images = _net(), torch.rand(40, 3, 8, 8)
    seen = []
    real_empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *a, **k: seen.append(a) or real_empty(*a, **k))
    # 40 images x (4 + 6) x 64 values x 4 bytes = 102 400 bytes of output
    monkeypatch.setenv(resources.ENV_VAR, "100000")
    with pytest.raises(ResourceError) as info:
        extract_features(net, images, ["0", "2"], batch_size=8, progress=False)
    msg = str(info.value)
    assert "2 layer(s) for 40 images" in msg and "0.000102 GB" in msg
    assert "pooling='avg'" in msg and "iter_features" in msg
    assert not seen  # failed after one batch, before any output array existed
    # the fix works: avg pooling needs 40 x 10 x 4 bytes
    feats = extract_features(net, images, ["0", "2"], batch_size=8, pooling="avg", progress=False)
    assert feats["0"].shape == (40, 4) and feats["2"].shape == (40, 6)
    monkeypatch.setenv(resources.ENV_VAR, "102400")  # exactly enough
    assert extract_features(net, images, ["2"], batch_size=8, progress=False)["2"].shape == (40, 384)


def test_cli_reports_resource_errors_as_one_line(monkeypatch, capsys):
    from brainalign.cli import main

    monkeypatch.setenv(resources.ENV_VAR, "1kB")
    # parsers are built inside main(), so the patched run is the one registered
    monkeypatch.setattr("brainalign.cli.layers.run",
                        lambda args: resources.check_memory(10**6, "the test step", "lower it"))
    assert main(["layers", "cornet_tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("brainalign: error: the test step needs about 0.001 GB")


def test_streamed_rdm_equals_in_memory_rdm_under_a_tight_budget(tmp_path, monkeypatch):
    """iter_features + RDMAccumulator never hold all features: works when extract_features may not."""
    net, images = _net(), torch.rand(30, 3, 8, 8)
    monkeypatch.setenv(resources.ENV_VAR, "20000")  # 30 x 384 x 4 = 46 080 bytes would not fit
    with pytest.raises(ResourceError):
        extract_features(net, images, ["2"], batch_size=8, progress=False)
    acc = RDMAccumulator(30, "correlation", max_memory_bytes=4096, tmp_dir=str(tmp_path))
    peak = 0
    for idx, batch in iter_features(net, images, ["2"], batch_size=8, progress=False):
        peak = max(peak, batch["2"].numel() * 4)
        acc.update(idx, batch["2"])
    streamed = acc.result()
    monkeypatch.delenv(resources.ENV_VAR)
    full = extract_features(net, images, ["2"], batch_size=8, progress=False)["2"]
    np.testing.assert_allclose(streamed.vectors, rdm(full).vectors, atol=1e-10)
    assert peak <= 8 * 384 * 4  # one batch at a time


def test_rdm_accumulator_refuses_an_rdm_larger_than_the_budget(monkeypatch):
    from brainalign.errors import ResourceError
    from brainalign.rsa import RDMAccumulator

    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "1MB")
    with pytest.raises(ResourceError, match="RDM of 1000 images"):
        RDMAccumulator(1000)
    RDMAccumulator(100)  # 120 kB fits


def test_align_refuses_a_head_larger_than_the_budget_before_training(monkeypatch, tmp_path):
    import brainalign
    from brainalign.errors import ResourceError

    from align_helpers import TinyNet, tiny_dataset

    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "10kB")
    with pytest.raises(ResourceError, match="head_pooling='avg'"):
        brainalign.align(TinyNet(), ["block1", "block2"], tiny_dataset(), epochs=1, out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_decoding_rdm_refuses_work_larger_than_the_budget(monkeypatch):
    from brainalign.rsa import decoding_rdm

    trials = np.random.default_rng(0).normal(size=(50, 8, 4, 30))
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "100kB")
    with pytest.raises(ResourceError, match="decoding RDMs of 50 conditions x 30 time points"):
        decoding_rdm(trials, n_pseudo=2, n_folds=2, n_permutations=1)
    monkeypatch.setenv("BRAINALIGN_MEMORY_LIMIT", "64MB")
    assert decoding_rdm(trials, n_pseudo=2, n_folds=2, n_permutations=1).vectors.shape == (30, 50 * 49 // 2)
