"""Alignment objectives: registry, selection by name, composition, per-term history, and each
layer objective (rsa, cka) making a backbone closer to the synthetic brain on held-out
concepts than the unaligned model."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import brainalign
from brainalign.alignment import align
from brainalign.alignment.objectives import (ObjectiveBatch, ObjectiveSpec, available_objectives, build_objective,
                                             objective_label, parse_objective)
from brainalign.alignment.objectives.similarity import batch_rdm, linear_cka
from brainalign.errors import ConfigError
from brainalign.hookspecs import hookimpl
from brainalign.plugin_manager import get_plugin_manager, register_plugin

from align_helpers import FAST, TinyNet, tiny_dataset

LAYERS = ["block1", "block2"]


def test_first_party_objectives_are_registered_through_the_hook():
    specs = available_objectives()
    assert {"realnet", "rsa", "cka"} <= set(specs) and all(isinstance(s, ObjectiveSpec) for s in specs.values())


def test_selection_parses_composes_and_round_trips():
    assert parse_objective("realnet") == (("realnet", 1.0),)
    parsed = parse_objective("realnet + 0.5*rsa")
    assert parsed == (("realnet", 1.0), ("rsa", 0.5))
    assert parse_objective(objective_label(parsed)) == parsed
    assert parse_objective({"cka": 2, "rsa": 1}) == parse_objective("2*cka+rsa") == (("cka", 2.0), ("rsa", 1.0))
    assert parse_objective(["realnet", ("cka", 0.25)]) == (("realnet", 1.0), ("cka", 0.25))
    with pytest.raises(ConfigError, match=r"unknown objective 'rsaa'.*Did you mean: rsa.*Available: .*cka"):
        parse_objective("realnet+rsaa")
    with pytest.raises(ConfigError, match="twice"):
        parse_objective("rsa+rsa")
    with pytest.raises(ConfigError, match="must be >= 0"):
        parse_objective({"rsa": -1})


def test_similarity_measures_match_their_definitions():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((6, 10)))
    from brainalign.rsa import rdm

    assert np.allclose(batch_rdm(x).numpy(), rdm(x.numpy()).vectors[0], atol=1e-6)
    assert float(linear_cka(x, 3 * x)) == pytest.approx(1.0, abs=1e-6)  # invariant to scale
    q, _ = torch.linalg.qr(torch.tensor(rng.standard_normal((10, 10))))
    assert float(linear_cka(x, x @ q)) == pytest.approx(1.0, abs=1e-6)  # and to rotations
    for y in (3 * x, x @ q):
        assert float(linear_cka(x, y, debiased=True)) == pytest.approx(1.0, abs=1e-6)


def test_debiased_cka_is_the_unbiased_hsic_u_statistic_and_ignores_noise_power():
    import itertools

    from brainalign.alignment.objectives.similarity import _offdiag_gram, _unbiased_hsic

    rng = np.random.default_rng(1)
    x, y = (torch.tensor(rng.standard_normal((7, d))) for d in (5, 9))
    k, m = x @ x.T, y @ y.T
    # Song et al. 2012: the U-statistic over ordered 4-tuples of distinct images of k_ij l_ij + k_ij l_qr - 2 k_ij l_iq
    h = [k[i, j] * m[i, j] + k[i, j] * m[q, r] - 2 * k[i, j] * m[i, q] for i, j, q, r in itertools.permutations(range(7), 4)]
    assert float(_unbiased_hsic(_offdiag_gram(x), _offdiag_gram(y))) == pytest.approx(float(np.mean(h)), rel=1e-9)
    # independent batches: the plug-in CKA is far from 0 (noise power on the Gram diagonals), the unbiased is not
    a, b = (torch.tensor(rng.standard_normal((16, d))) for d in (10, 300))
    assert float(linear_cka(a, b)) > 0.3 and abs(float(linear_cka(a, b, debiased=True))) < 0.15


def test_combined_terms_weights_and_gradients():
    torch.manual_seed(0)
    acts = {"a": torch.randn(8, 4, 3, 3, requires_grad=True)}
    y = torch.randn(8, 12)
    pred = torch.randn(8, 12, requires_grad=True)
    obj = build_objective("realnet+0.5*rsa+2*cka", {"contrastive": True, "rank_temperature": 0.1})
    assert obj.terms == ("mse", "contrastive", "rsa", "cka") and obj.min_batch == 4 and obj.uses_head
    terms, total = obj.weighted(ObjectiveBatch(activations=acts, output=torch.randn(8, 5), prediction=pred,
                                               targets=y))
    expect = terms["mse"] + terms["contrastive"] + 0.5 * terms["rsa"] + 2 * terms["cka"]
    assert torch.allclose(total, expect)
    total.backward()
    assert acts["a"].grad.abs().sum() > 0 and pred.grad.abs().sum() > 0


def test_history_holds_every_term_and_the_head_is_a_readout_for_layer_objectives():
    ds = tiny_dataset()
    res = align(TinyNet(), LAYERS, ds, **FAST, objective="realnet+rsa")
    row = res.history[0]
    assert {"task", "mse", "contrastive", "rsa", "total", "val_spearman"} <= set(row)
    assert res.config["settings"]["objective"] == "realnet+rsa"
    cka = align(TinyNet(), LAYERS, ds, **FAST, objective="cka")
    assert {"cka", "readout"} <= set(cka.history[0]) and "mse" not in cka.history[0]
    assert cka.history[-1]["readout"] < cka.history[0]["readout"]  # the read-out head still learns
    assert cka.history[0]["val_spearman"] is not None
    with pytest.raises(ConfigError, match=r"batch_size=2 .*'rsa'.*>= 3"):
        align(TinyNet(), LAYERS, ds, **{**FAST, "batch_size": 2}, objective="rsa")
    with pytest.raises(ConfigError, match="unknown objective 'nope'"):
        align(TinyNet(), LAYERS, ds, **FAST, objective="nope")


def test_a_third_party_objective_registers_like_the_first_party_ones():
    class Spread:
        terms, min_batch, uses_head = ("spread",), 2, False

        def __call__(self, batch):
            return {"spread": -sum(a.flatten(1).std(0).mean() for a in batch.activations.values())}

    plugin = types.ModuleType("spread_plugin")
    plugin.brainalign_objectives = hookimpl(lambda: [ObjectiveSpec("spread", lambda settings: Spread())])
    pm = get_plugin_manager()
    register_plugin(pm, plugin, "spread_plugin")
    try:
        assert "spread" in available_objectives()
        res = align(TinyNet(), LAYERS, tiny_dataset(), **{**FAST, "epochs": 1}, objective="realnet+spread")
        assert res.history[0]["spread"] < 0
    finally:
        pm.unregister(name="spread_plugin")
    assert "spread" not in available_objectives()


# --- each layer objective brings a small backbone closer to the synthetic brain (held-out concepts) --
# cornet_tiny (random init, seeded), 32-px synthetic images (96 training images of 24 concepts, EEG averaged
# over 16 repetitions), 4 epochs at lr 1e-3, beta 100, batch 16, last epoch (val_fraction 0); RSA = mean over
# V1, V2, V4, IT of Spearman(layer RDM, EEG RDM) on the 96 test images of 24 concepts never trained on.
# Why the first design (2 epochs, 4 repetitions) failed at seed 0 (margin -0.08):
#  * the baseline: a freshly initialised network has no BatchNorm statistics (running mean 0, var 1), and
#    training in train mode sets them; at seed 0 that alone moved RSA 0.442 -> 0.357 (align with lr 1e-12),
#    and after 2 epochs the weights had changed RSA by ~0. The unaligned model here gets its BatchNorm
#    statistics from the training images (no gradient step), so the margin measures the objective.
#  * the data: 96 images x 4 repetitions at the brain's snr 0.1 give batch RDMs mostly made of noise (with
#    40 repetitions seed 0's rsa margin is +0.20); 16 repetitions make the proof about the objective, not
#    about how many images a noisy subject needs (the demo aligns the 4-repetition EEG on more images).
#  * cka: the plug-in CKA rewarded spreading images apart (its Gram diagonals are noise power); the objective
#    now uses the unbiased estimator (4 repetitions, seeds 0-4: biased -0.001, +0.021, -0.009, +0.128,
#    -0.001; unbiased +0.061, +0.046, -0.030, +0.195, +0.103).
# Margins aligned - unaligned, seeds 0-4 (2026-12-02, load ~11 on 2 cores):
#   rsa: +0.174, +0.064, +0.049, +0.200, +0.156;  cka: +0.184, +0.069, +0.034, +0.182, +0.152.
# Thresholds sit at about half the smallest measured margin. realnet reads the brain through its head; it is
# proven from a pretrained-like start in tests/test_align_proof.py.
THRESHOLD = {"rsa": 0.025, "cka": 0.017}
SEEDS = (0, 1, 2, 3, 4)


@pytest.fixture(scope="module")
def brains():
    from brainalign.data.synthetic import SyntheticBrain

    out = {}
    for seed in SEEDS:
        brain = SyntheticBrain(seed=seed, image_size=32, n_test_concepts=24, test_images_per_concept=4,
                               train_images_per_concept=4, n_repetitions_train=16)
        out[seed] = (brain.eeg(1, "training"), brain.eeg(1, "test"))
    return out


def _with_batchnorm_statistics(model, images, pp):
    """A copy of ``model`` whose BatchNorm running statistics are the training images' (no weight changes)."""
    import copy

    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the passes
    model.train()
    with torch.no_grad():
        x = pp(images.load(list(range(len(images)))))
        for batch in x.split(16):
            model(batch)
    return model.eval()


def _mean_rsa(model, test) -> float:
    from brainalign.models.spec import Preprocessing
    from brainalign.rsa import compare, rdm
    from brainalign.taps import LayerTap

    layers, pp = ["V1", "V2", "V4", "IT"], Preprocessing(size=32)
    eeg_rdm = rdm(test.targets())
    model.eval()
    with torch.no_grad(), LayerTap(model, layers, detach=True) as tap:
        tap.run(pp(test.images.load(list(range(len(test))))))
        return float(np.mean([compare(rdm(tap.outputs[k].flatten(1).numpy()), eeg_rdm)[0, 0] for k in layers]))


@pytest.mark.parametrize("objective", ["rsa", "cka"])
def test_objective_improves_rsa_on_held_out_concepts_for_every_seed(brains, objective):
    from brainalign.models.spec import Preprocessing

    pp = Preprocessing(size=32)
    margins = []
    for seed in SEEDS:
        train, test = brains[seed]
        torch.manual_seed(seed)
        net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
        res = align(net, eeg=train, objective=objective, epochs=4, lr=1e-3, beta=100.0, batch_size=16,
                    val_fraction=0, progress=False, device="cpu", preprocessing=pp, seed=seed)
        margins.append(_mean_rsa(res.model, test) - _mean_rsa(_with_batchnorm_statistics(net, train.images, pp), test))
    assert min(margins) > THRESHOLD[objective], margins


def test_align_config_is_the_single_source_of_settings(tmp_path):
    import json

    from brainalign.alignment.config import AlignConfig

    cfg = AlignConfig(beta=10, epochs=1, batch_size=8, lr=1e-3, seed=1, objective="realnet + 0.5*rsa")
    assert cfg.objective == "realnet+0.5*rsa" and AlignConfig.from_dict(cfg.to_dict()) == cfg
    res = align(TinyNet(), LAYERS, tiny_dataset(), config=cfg, device="cpu", progress=False, out_dir=tmp_path / "r")
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["settings"]
    assert AlignConfig.from_dict(saved) == cfg and res.config["settings"]["beta"] == 10
    with pytest.raises(TypeError, match=r"'bta'.*Did you mean: beta"):
        align(TinyNet(), LAYERS, tiny_dataset(), bta=3)
    with pytest.raises(ConfigError, match="both config= and the setting.*lr"):
        align(TinyNet(), LAYERS, tiny_dataset(), config=cfg, lr=0.5)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        AlignConfig(lr=0)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        AlignConfig(optimizer="lion")
