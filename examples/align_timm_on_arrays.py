"""Align any timm model with your own neural data given as NumPy arrays.

    python examples/align_timm_on_arrays.py                      # random demo arrays, ~1 min CPU
    python examples/align_timm_on_arrays.py --images imgs.npy --responses eeg.npy --concepts concepts.npy \
        --model timm:convnext_tiny --pretrained --epochs 30 --out runs/convnext

Arrays: images (n, H, W, 3) uint8 or (n, 3, H, W) float in [0, 1]; responses (n, n_channels,
n_times) EEG or (n, n_voxels) fMRI (any shape per image works: it is flattened); concepts
(n,) labels (optional) so the held-out images come from unseen concepts. Without files the
script makes random arrays of that shape, which shows the mechanics (not a result).
"""
from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", help=".npy of images (n, H, W, 3) uint8 or (n, 3, H, W) float")
    ap.add_argument("--responses", help=".npy of responses (n, ...)")
    ap.add_argument("--concepts", help=".npy of concept labels (n,) (optional)")
    ap.add_argument("--model", default="timm:resnet10t", help="any timm:<name> (default timm:resnet10t: small)")
    ap.add_argument("--pretrained", action="store_true", help="timm's pretrained weights (needs them cached/online)")
    ap.add_argument("--layers", nargs="+", help="layers (default: timm's feature_info stages)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=100.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--head-pooling", default="adaptive4",
                    help="pooling before each layer encoder: 'flatten' is the paper's, but at 224 px an early "
                         "layer then needs a ~100M-parameter Linear; 'adaptive4' (default here) keeps it small")
    ap.add_argument("--out", default=None, help="folder for the run (checkpoint, aligned.pt)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import brainalign
    from brainalign import rsa
    from brainalign.data.user import from_arrays
    from brainalign.features import extract_features

    if args.images and args.responses:
        images, responses = np.load(args.images), np.load(args.responses)
        concepts = np.load(args.concepts, allow_pickle=False) if args.concepts else None
    else:  # random stand-in data: 60 images of 20 "concepts", 17 channels x 20 time points
        rng = np.random.default_rng(args.seed)
        images = rng.integers(0, 256, (60, 64, 64, 3), dtype=np.uint8)
        responses = rng.standard_normal((60, 17, 20)).astype(np.float32)
        concepts = np.repeat(np.arange(20), 3)
        print("No --images/--responses given: using random arrays (mechanics only, no real result).")
    data = from_arrays(images, responses, concepts=concepts)
    train, test = data.split_by_concept(0.2, seed=args.seed)  # held-out concepts for evaluation
    print(f"{len(train)} training / {len(test)} held-out images, response shape {data.response_shape}")

    model = brainalign.load_backbone(args.model, pretrained=args.pretrained, device=args.device)
    result = brainalign.align(model, args.layers, eeg=train, epochs=args.epochs, lr=args.lr, beta=args.beta,
                              batch_size=args.batch_size, seed=args.seed, device=args.device, out_dir=args.out,
                              head_pooling=args.head_pooling)
    print("history:", [{k: round(v, 4) for k, v in h.items() if isinstance(v, float)} for h in result.history])

    # held-out RSA: each layer's RDM vs the RDM of the held-out responses (1 - Pearson both)
    neural = rsa.rdm(test.targets())
    for name, m in (("before", model), ("after", result.model)):
        feats = extract_features(m, test.images, result.layers, progress=False)
        rhos = [float(rsa.compare(rsa.rdm(f), neural)[0, 0]) for f in feats.values()]
        print(f"held-out RSA {name} alignment: " + ", ".join(f"{layer} {r:+.3f}" for layer, r in zip(feats, rhos)))
    if args.out:
        print(f"saved: {result.save(f'{args.out}/aligned.pt')}  (use it as a MODEL in 'brainalign compare')")


if __name__ == "__main__":
    main()
