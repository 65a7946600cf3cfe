"""How far is a classifier from the synthetic brain? (and how far could it get?)

Trains a network only to classify the synthetic brain's coarse classes (``brain.labels``:
outline family x texture type) on the training concepts, then measures
on the held-out test concepts (never seen in training):

* RSA = Spearman between the model's RDM (1 - Pearson over a layer's flattened
  activations) and the EEG RDM (1 - Pearson over the 17 channels, repetition-averaged,
  per time point), averaged over 50-200 ms and over subjects; the best layer is reported;
* the same for the untrained network and for a pure concept-label RDM;
* the brain's own hidden stages (the ground truth; what a perfectly aligned model could
  reach) and the noise ceiling: split-half reliability of the EEG RDM (even vs odd
  repetitions, Spearman-Brown corrected to all repetitions).

Usage::

    python examples/synthetic_gap.py [--seed 0] [--epochs 30] [--backbone cornet_tiny|small]

Measured: see the README's "Synthetic brain" section (the figures depend on the brain's
configuration; rerun this script after changing it).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from brainalign.data.synthetic import SyntheticBrain
from brainalign.seeding import seed_everything


def small_cnn(n_out: int) -> nn.Module:
    """A 4-stage CNN (stand-in when the cornet_tiny backbone is not available)."""
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
    return nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 128),
                         nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, n_out)))


def build(backbone: str, n_classes: int):
    if backbone == "cornet_tiny":
        import brainalign

        model = brainalign.load_backbone("cornet_tiny", pretrained=False)
        layers = ["V1", "V2", "V4", "IT"]
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    else:
        model = small_cnn(n_classes)
        layers = ["0", "1", "2", "3"]
        mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    norm = (torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None])
    return model, layers, norm


def activations(model, layers, x) -> dict[str, np.ndarray]:
    """{layer: (n, n_features)} from forward hooks on top-level children (block output once)."""
    store, hooks = {}, []
    mods = dict(model.named_children())
    for name in layers:
        hooks.append(mods[name].register_forward_hook(lambda m, i, o, n=name: store.__setitem__(n, o.flatten(1))))
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return {k: v.numpy().astype(np.float64) for k, v in store.items()}


def rdm(x):
    return pdist(np.asarray(x, dtype=np.float64), "correlation")


def eeg_rdms(ds) -> np.ndarray:
    """(n_times, n_pairs) RDMs of the repetition-averaged EEG."""
    return np.stack([rdm(ds.responses[:, :, t]) for t in range(ds.responses.shape[2])])


def rsa_curve(model_rdm, rdms) -> np.ndarray:
    return np.array([spearmanr(model_rdm, r)[0] for r in rdms])


def align_check(model, layers, brain, norm, n_cls, epochs, seed, beta=10.0) -> dict[str, np.ndarray]:
    """Fine-tune a copy of ``model`` with CE (its own labels) + beta * MSE to subject 1's training EEG
    (beta=0: the control that only keeps training the classifier for as long).

    A minimal stand-in for the real alignment: pooled layer features -> Linear -> 17x20 EEG.
    Returns the tuned model's test-image activations.
    """
    import copy

    mu, sd = norm
    tuned = copy.deepcopy(model)
    eeg = brain.eeg(1, "training")
    x, y = brain.image_tensor("training"), torch.as_tensor(brain.labels("training"))
    target = torch.as_tensor(eeg.targets())
    mods = dict(tuned.named_children())
    feats = {}
    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: feats.__setitem__(n, o)) for n in layers]
    with torch.no_grad():
        tuned((x[:2] - mu) / sd)
    # ReAlnet-style head: flattened layer -> Linear(., 128) + ReLU per layer, concatenated -> EEG.
    enc = nn.ModuleDict({n: nn.Sequential(nn.Flatten(), nn.Linear(feats[n][0].numel(), 128), nn.ReLU())
                         for n in layers})
    head = nn.Sequential(nn.Linear(128 * len(layers), target.shape[1]))
    opt = torch.optim.Adam([{"params": tuned.parameters(), "lr": 1e-4},
                            {"params": [*enc.parameters(), *head.parameters()], "lr": 1e-3}])
    g = torch.Generator().manual_seed(seed + 1)
    for _ in range(epochs):
        tuned.train()
        for b in torch.randperm(len(x), generator=g).split(16):
            logits = tuned((x[b] - mu) / sd)[:, :n_cls]
            z = torch.cat([enc[n](feats[n]) for n in layers], 1)
            loss = F.cross_entropy(logits, y[b]) + beta * F.mse_loss(head(z), target[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for h in hooks:
        h.remove()
    return activations(tuned, layers, (brain.image_tensor("test") - mu) / sd)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images-per-concept", type=int, default=None, help="training images per concept")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--backbone", choices=["cornet_tiny", "small"], default="cornet_tiny")
    ap.add_argument("--align-epochs", type=int, default=0,
                    help="also fine-tune a copy on subject 1's training-concept EEG (plain MSE head) and "
                         "score it on the held-out concepts: does what the EEG teaches transfer?")
    args = ap.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    brain = SyntheticBrain(seed=args.seed, **({"train_images_per_concept": args.images_per_concept}
                                               if args.images_per_concept else {}))
    cfg = brain.config
    x_tr, y_tr = brain.image_tensor("training"), torch.as_tensor(brain.labels("training"))
    x_te = brain.image_tensor("test")
    n_cls = int(y_tr.max()) + 1

    seed_everything(args.seed)
    try:
        model, layers, (mu, sd) = build(args.backbone, n_cls)
    except Exception as exc:  # the backbone registry may not be installed in a minimal checkout
        print(f"cornet_tiny unavailable ({type(exc).__name__}: {exc}); using a small CNN")
        model, layers, (mu, sd) = build("small", n_cls)
    untrained = {k: v for k, v in activations(model, layers, (x_te - mu) / sd).items()}

    # Hold out 2 images per training concept to report generalisation within concepts.
    per = cfg.train_images_per_concept
    val = (np.arange(len(y_tr)) % per) >= per - 2
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(args.seed)
    tr_idx = np.flatnonzero(~val)
    for epoch in range(args.epochs):
        model.train()
        perm = tr_idx[torch.randperm(len(tr_idx), generator=g).numpy()]
        for i in range(0, len(perm), 32):
            b = perm[i:i + 32]
            xb = x_tr[b]
            if torch.rand(1, generator=g).item() < 0.5:  # flips keep the task about shape + colour
                xb = xb.flip(3)
            logits = model((xb - mu) / sd)[:, :n_cls]
            loss = F.cross_entropy(logits, y_tr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model((x_tr - mu) / sd)[:, :n_cls].argmax(1)
    acc_tr = float((pred[~torch.as_tensor(val)] == y_tr[~torch.as_tensor(val)]).float().mean())
    acc_val = float((pred[torch.as_tensor(val)] == y_tr[torch.as_tensor(val)]).float().mean())
    trained = activations(model, layers, (x_te - mu) / sd)
    aligned = None
    if args.align_epochs:
        aligned = align_check(model, layers, brain, (mu, sd), n_cls, args.align_epochs, args.seed)
        control = align_check(model, layers, brain, (mu, sd), n_cls, args.align_epochs, args.seed, beta=0.0)

    stages = brain.hidden_stages("test")
    concept_rdm = pdist(brain.concept_labels("test")[:, None].astype(float), "hamming")
    rows = {f"classifier {k}": rdm(v) for k, v in trained.items()}
    if aligned is not None:
        rows.update({f"EEG-tuned {k}": rdm(v) for k, v in aligned.items()})
        rows.update({f"CE-only tuned {k}": rdm(v) for k, v in control.items()})
    rows.update({f"untrained {k}": rdm(v) for k, v in untrained.items()})
    rows["concept labels"] = concept_rdm
    rows.update({f"brain {k}": rdm(v) for k, v in stages.items()})

    win = None
    scores = {k: [] for k in rows}
    ceilings, peaks = [], {k: [] for k in rows}
    for subject in range(1, cfg.n_subjects + 1):
        ds = brain.eeg(subject, "test", average_repetitions=False)
        win = (ds.times >= 0.05 - 1e-9) & (ds.times < 0.2 - 1e-9)
        rdms = eeg_rdms(ds)
        reps = ds.repetitions
        half = [np.stack([rdm(reps[:, h::2, :, t].mean(1)) for t in range(reps.shape[3])]) for h in (0, 1)]
        r_half = np.array([spearmanr(a, b)[0] for a, b in zip(*half)])
        ceilings.append((2 * r_half / (1 + r_half))[win].mean())
        for k, r in rows.items():
            curve = rsa_curve(r, rdms)
            scores[k].append(curve[win].mean())
            peaks[k].append(curve.max())

    print(f"synthetic brain seed {args.seed}: {len(y_tr)} training images / {n_cls} concepts, "
          f"{len(x_te)} test images / {len(brain.concept_names('test'))} held-out concepts, "
          f"{cfg.n_subjects} subjects, {cfg.n_repetitions_test} test repetitions")
    print(f"classifier ({args.backbone}, {args.epochs} epochs): train acc {acc_tr:.2f}, "
          f"held-out images of training concepts {acc_val:.2f}")
    print("EEG RSA on held-out concepts, mean over 50-200 ms (peak), mean over subjects:")
    for k in rows:
        print(f"  {k:24s} {np.mean(scores[k]):+.3f}  (peak {np.mean(peaks[k]):+.3f})")
    print(f"  {'noise ceiling (split-half, S-B)':24s} {np.mean(ceilings):+.3f}")
    best_cls = max((k for k in rows if k.startswith("classifier")), key=lambda k: np.mean(scores[k]))
    best_brain = max((k for k in rows if k.startswith("brain")), key=lambda k: np.mean(scores[k]))
    print(f"gap: best classifier layer ({best_cls}) {np.mean(scores[best_cls]):.3f} vs best hidden stage "
          f"{np.mean(scores[best_brain]):.3f} vs ceiling {np.mean(ceilings):.3f}   [{time.time() - t0:.0f} s]")


if __name__ == "__main__":
    main()
