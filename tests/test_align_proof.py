"""Proof that alignment works, on the synthetic brain's held-out (test) concepts, for several seeds.

For each seed (brain + model) a cornet_tiny briefly trained to classify the synthetic coarse
classes (the stand-in for ImageNet pretraining) is aligned with subject 1's training EEG
(objective ``realnet``). On the 96 test images of 24 concepts never seen in training:
  * RSA (Spearman between each layer's correlation RDM and the EEG correlation RDM over the
    0-200 ms window, averaged over V1, V2, V4, IT) is higher than the unaligned model's and
    higher than the unpaired control's (each image trained with another image's EEG);
  * (seed 0) the generation Spearman (exact, per image, averaged) is higher than the baseline of
    a head trained on the frozen unaligned backbone (``train_backbone=False``, same epochs);
  * the aligned model still agrees with its teacher's labels on the training images.

The margins are asserted for seeds 0-2 (seeds 3-4, measured below, would double the test's time).

Design, and why the earlier one was not a multi-seed proof (seed 1's unpaired margin was ~0):
  * ``head_pooling='avg'``: with the reference 'flatten' head, a linear read-out of every spatial
    position fits the EEG without the backbone having to change (seeds 0-2, 16 repetitions:
    aligned - unaligned -0.008, +0.037, +0.030; aligned - unpaired +0.078, +0.019, +0.074).
    Pooled channels leave the head only the backbone's features to work with, so alignment
    reshapes them, and that transfers to unseen concepts.
  * training EEG averaged over 16 repetitions: at the brain's snr 0.1 the 4-repetition average of
    192 images is mostly noise for a short run (the demo aligns 4-repetition EEG on more images).
Margins (2026-12-02, seeds 0-4, load ~16 on 2 cores, val_fraction 0):
  aligned - unaligned +0.085, +0.068, +0.083, +0.050, +0.047;
  aligned - unpaired  +0.205, +0.050, +0.105, +0.164, +0.085.
Thresholds are about half the smallest measured margin. Task agreement of the aligned model with
its teacher on the training images: 0.80, 0.76, 0.68 (seeds 0-2; chance 1/8).
"""
import numpy as np
import pytest
import torch

import brainalign
from brainalign.alignment import align, train_classifier
from brainalign.alignment.losses import spearman_rows
from brainalign.data.synthetic import SyntheticBrain
from brainalign.models.spec import Preprocessing
from brainalign.rsa import compare, rdm
from brainalign.taps import LayerTap

SEEDS = (0, 1, 2)
LAYERS = ["V1", "V2", "V4", "IT"]
PP = Preprocessing(size=32)  # 32-px images keep the test fast on 2 CPU cores
MIN_GAIN = 0.023  # aligned - unaligned
MIN_GAIN_OVER_UNPAIRED = 0.025  # aligned - unpaired


def _runs(seed: int, frozen: bool) -> dict:
    brain = SyntheticBrain(seed=seed, image_size=32, n_test_concepts=24, test_images_per_concept=4,
                           n_repetitions_train=16)
    train, test = brain.eeg(1, "training"), brain.eeg(1, "test")
    torch.manual_seed(seed)
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    train_classifier(net, train.images, brain.labels("training"), epochs=6, lr=2e-3, batch_size=32, seed=seed,
                     device="cpu", preprocessing=PP)
    kw = dict(epochs=5, lr=1e-3, beta=100.0, batch_size=16, head_pooling="avg", val_fraction=0, progress=False,
              device="cpu", preprocessing=PP, seed=seed)
    out = dict(train=train, test=test, net=net, aligned=align(net, eeg=train, **kw),
               unpaired=align(net, eeg=train, unpaired=True, **kw))
    if frozen:
        out["frozen"] = align(net, eeg=train, train_backbone=False, **kw)
    return out


@pytest.fixture(scope="module")
def runs():
    return {seed: _runs(seed, frozen=seed == SEEDS[0]) for seed in SEEDS}


def _mean_rsa(model, images, eeg_rdm) -> float:
    model.eval()
    with torch.no_grad(), LayerTap(model, LAYERS, detach=True) as tap:
        tap.run(PP(images))
        return float(np.mean([compare(rdm(tap.outputs[k].flatten(1).numpy()), eeg_rdm)[0, 0] for k in LAYERS]))


def test_rsa_on_held_out_concepts_improves_for_every_seed(runs):
    gains, over_unpaired = [], []
    for r in runs.values():
        x = r["test"].images.load(list(range(len(r["test"]))))
        eeg_rdm = rdm(r["test"].targets())
        aligned = _mean_rsa(r["aligned"].model, x, eeg_rdm)
        gains.append(aligned - _mean_rsa(r["net"], x, eeg_rdm))
        over_unpaired.append(aligned - _mean_rsa(r["unpaired"].model, x, eeg_rdm))
    assert min(gains) > MIN_GAIN, gains
    assert min(over_unpaired) > MIN_GAIN_OVER_UNPAIRED, over_unpaired


def test_generation_beats_the_frozen_readout(runs):
    r = runs[SEEDS[0]]
    x = r["test"].images.load(list(range(len(r["test"]))))
    y = torch.as_tensor(r["test"].targets())
    gen = {k: float(spearman_rows(y, r[k].predict(x)).mean()) for k in ("aligned", "frozen", "unpaired")}
    assert gen["aligned"] > gen["frozen"] > gen["unpaired"] + 0.05, gen


def test_the_best_epoch_is_chosen_on_validation_concepts_never_on_the_test_set(runs):
    r = runs[SEEDS[0]]
    brain_test = r["test"]
    res = align(r["net"], eeg=r["train"], epochs=2, lr=1e-3, beta=100.0, batch_size=16, head_pooling="avg",
                progress=False, device="cpu", preprocessing=PP, seed=0)
    assert res.history[res.best_epoch - 1]["val_spearman"] == max(h["val_spearman"] for h in res.history)
    assert res.config["data"]["val_concepts"]
    assert not set(res.config["data"]["val_concepts"]) & set(brain_test.concepts.tolist())


def test_task_behaviour_is_kept(runs):
    agreement = []
    for r in runs.values():
        x = PP(r["train"].images.load(list(range(len(r["train"])))))
        with torch.no_grad():
            teacher = r["net"].eval()(x).argmax(-1)
            student = r["aligned"].model.eval()(x).argmax(-1)
        agreement.append(float((teacher == student).float().mean()))
    # measured 0.80, 0.76, 0.68 (seeds 0-2; chance 1/8): the pooled head makes alignment change the backbone
    # more than the reference head did (seed 0 agreed 0.7+ then, with a smaller RSA gain)
    assert min(agreement) >= 0.6, agreement
