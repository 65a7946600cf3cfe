"""Proof that alignment works, on the synthetic brain's held-out (test) concepts.

A cornet_tiny briefly trained to classify the synthetic coarse classes (the stand-in for
ImageNet pretraining) is aligned with subject 1's training EEG. On the 96 test images of 24
concepts never seen in training:
  * RSA (Spearman between each layer's correlation RDM and the EEG correlation RDM over the
    0-200 ms window, averaged over V1, V2, V4, IT) is higher than the unaligned model's and
    higher than the unpaired control's;
  * the generation Spearman (exact, per image, averaged) is higher than the baseline of a head
    trained on the frozen unaligned backbone (``train_backbone=False``, same epochs);
  * the aligned model still agrees with its teacher's labels on the training images.

Margins with the synthetic brain of issue 12 (coarse-class labels, snr 0.1, realistic time
courses; seeds 0, 1, 2 of brain + model, this configuration, measured once with a script on a
busy machine): RSA aligned - unaligned 0.058, 0.041, 0.030 (0.035 at seed 0 inside this test);
aligned - unpaired 0.043, 0.001, 0.091. Seed 1's unpaired margin is ~0, so the multi-seed proof
(issue 12) is NOT established by this design yet; the test runs seed 0 with thresholds below
its margins. Generation Spearman at seed 0: aligned 0.186 vs frozen readout 0.175 vs unpaired
-0.021.
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

SEED = 0
LAYERS = ["V1", "V2", "V4", "IT"]
PP = Preprocessing(size=32)  # 32-px images keep the test fast on 2 CPU cores


@pytest.fixture(scope="module")
def runs():
    brain = SyntheticBrain(seed=SEED, image_size=32, n_test_concepts=24, test_images_per_concept=4)
    train, test = brain.eeg(1, "training"), brain.eeg(1, "test")
    torch.manual_seed(SEED)
    net = brainalign.load_backbone("cornet_tiny", pretrained=False, device="cpu")
    train_classifier(net, train.images, brain.labels("training"), epochs=6, lr=2e-3, batch_size=32, seed=SEED,
                     device="cpu", preprocessing=PP)
    kw = dict(epochs=5, lr=5e-4, beta=100.0, batch_size=16, progress=False, device="cpu", preprocessing=PP,
              seed=SEED)
    return dict(
        brain=brain, train=train, test=test, net=net,
        aligned=align(net, eeg=train, **kw),
        unpaired=align(net, eeg=train, unpaired=True, **kw),
        frozen=align(net, eeg=train, train_backbone=False, **{**kw, "lr": 1e-3}),
    )


def _mean_rsa(model, images, eeg_rdm) -> float:
    model.eval()
    with torch.no_grad(), LayerTap(model, LAYERS, detach=True) as tap:
        tap.run(PP(images))
        return float(np.mean([compare(rdm(tap.outputs[k].flatten(1).numpy()), eeg_rdm)[0, 0] for k in LAYERS]))


def test_rsa_on_held_out_concepts_improves(runs):
    test = runs["test"]
    x = test.images.load(list(range(len(test))))
    eeg_rdm = rdm(test.targets())
    unaligned = _mean_rsa(runs["net"], x, eeg_rdm)
    aligned = _mean_rsa(runs["aligned"].model, x, eeg_rdm)
    unpaired = _mean_rsa(runs["unpaired"].model, x, eeg_rdm)
    assert aligned > unaligned + 0.015, (aligned, unaligned)
    assert aligned > unpaired + 0.01, (aligned, unpaired)  # interim: replaced by the multi-seed proof (issue 12)


def test_generation_beats_the_frozen_readout(runs):
    test = runs["test"]
    x = test.images.load(list(range(len(test))))
    y = torch.as_tensor(test.targets())
    gen = {k: float(spearman_rows(y, runs[k].predict(x)).mean()) for k in ("aligned", "frozen", "unpaired")}
    # per-image generation Spearman is low at the brain's realistic snr 0.1 (seed 0 measured aligned 0.186,
    # frozen 0.175, unpaired -0.021)
    assert gen["aligned"] > gen["frozen"] > gen["unpaired"] + 0.1, gen
    # the returned epoch is the best on the validation concepts, never on the test set
    res = runs["aligned"]
    assert res.history[res.best_epoch - 1]["val_spearman"] == max(r["val_spearman"] for r in res.history)
    assert not set(res.config["data"]["val_concepts"]) & set(test.concepts.tolist())


def test_task_behaviour_is_kept(runs):
    x = PP(runs["train"].images.load(list(range(len(runs["train"])))))
    with torch.no_grad():
        teacher = runs["net"].eval()(x).argmax(-1)
        student = runs["aligned"].model.eval()(x).argmax(-1)
    assert float((teacher == student).float().mean()) >= 0.7
