"""Reproduce the ReAlnet analyses (Lu, Wang & Golomb 2024) with THINGS-EEG2 and Shen 2019 data.

    python examples/reproduce_realnet.py --things /data/things-eeg2 --shen /data/shen/fmri \
        --shen-images /data/shen/images --out realnet-repro [--imagenet-val /data/imagenet/val]

Paper settings (the defaults): ImageNet-pretrained CORnet-S, one personalised model per
subject for the 10 THINGS-EEG2 subjects, beta 100, 30 epochs, Adam lr 2e-5, batch 16,
seed 2023, 0-200 ms of the 17 occipital/parietal channels; the unpaired control with the
same settings. Then:

1. EEG (Figure 2A): each subject's ReAlnet and control vs that subject's test-set decoding
   RDMs, time-resolved, vs CORnet-S, with cluster-corrected differences.
2. fMRI (Figure 2B): Shen et al. 2019 test set, ROIs V1, V2, V3, V4, LOC, max over layers,
   noise ceiling. Shen has 3 subjects (other people than the EEG subjects): ReAlnet k is
   paired with fMRI subject k (k = 1..3), as a cross-modality check.
3. Individual variability between the 10 ReAlnets per layer.
4. FGSM robustness, epsilon 0..0.06, top-1/top-5: on ImageNet validation images in class
   folders (WordNet ids) if given, else on the THINGS test images with the unaligned
   CORnet-S's predictions as labels (as in the paper).

Every step is one ``brainalign`` command (printed before it runs; ``--dry-run`` only prints).
Finished alignment runs are skipped, so the script can be re-run after an interruption
(add ``--resume`` to continue a half-finished run). Budget: the 20 alignment runs take
roughly a GPU-day at 224 px; use --device cuda.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Reproduce ReAlnet's analyses with brainalign")
    ap.add_argument("--things", required=True, help="THINGS-EEG2 root (preprocessed_data/, image_set/)")
    ap.add_argument("--shen", help="Shen 2019 fMRI: a folder of sub-XX_*Test*.h5 BData files")
    ap.add_argument("--shen-images", help="folder of the Shen test images (not part of the fMRI release)")
    ap.add_argument("--imagenet-val", help="ImageNet validation images in WordNet-id class folders (robustness)")
    ap.add_argument("--out", default="realnet-repro", help="output root (default realnet-repro)")
    ap.add_argument("--subjects", default="1-10", help="EEG subjects (default 1-10)")
    ap.add_argument("--backbone", default="cornet", help="backbone (default cornet = CORnet-S)")
    ap.add_argument("--weights", help="local CORnet-S weights (default: the published pretrained ones)")
    ap.add_argument("--beta", default="100")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=2023)
    ap.add_argument("--device", default=None)
    ap.add_argument("--resume", action="store_true", help="continue interrupted alignment runs")
    ap.add_argument("--overwrite", action="store_true", help="replace earlier reports in --out")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = ap.parse_args(argv)

    from brainalign.cli import main as brainalign

    out = Path(args.out)
    things = f"things-eeg2:{args.things}"
    beta = args.beta.split(",")[0]
    common = [*(["--device", args.device] if args.device else [])]
    weights = ["--weights", args.weights] if args.weights else []
    base_model = f"{args.backbone}@{args.weights}" if args.weights else args.backbone
    align = ["align", args.backbone, "--eeg", things, "--subjects", args.subjects, "--beta", args.beta,
             "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch-size", str(args.batch_size),
             "--seed", str(args.seed), "--out", str(out / "align"), *weights, *common,
             *(["--resume"] if args.resume else [])]
    realnet = str(out / "align" / f"sub-{{subject:02d}}_beta-{beta}")
    control = realnet + "_unpaired"
    ow = ["--overwrite"] if args.overwrite else []
    steps = [
        ("align ReAlnets", align),
        ("unpaired control", [*align, "--unpaired"]),
        ("EEG comparison (Figure 2A)", ["compare", base_model, realnet, control, "--eeg", things, "--subjects",
                                        args.subjects, "--out", str(out / "eeg"), *ow, *common]),
    ]
    if args.shen:
        steps.append(("fMRI comparison (Figure 2B)",
                      ["compare", base_model, realnet, "--fmri", f"shen:{args.shen}", "--subjects", "1-3",
                       *(["--fmri-images", args.shen_images] if args.shen_images else []),
                       "--out", str(out / "fmri"), *ow, *common]))
    from brainalign.data.subjects import parse_subjects

    subs = parse_subjects(args.subjects)
    per_subject = [realnet.format(subject=s) for s in subs]
    steps.append(("individual variability", ["variability", *per_subject, "--images",
                                             str(Path(args.things) / "image_set" / "test_images"),
                                             "--out", str(out / "variability"), *ow, *common]))
    rob_images = (["--images", args.imagenet_val, "--labels", "folder"] if args.imagenet_val else
                  ["--images", str(Path(args.things) / "image_set" / "test_images"), "--labels", "model"])
    steps.append(("FGSM robustness", ["robustness", base_model, per_subject[0], *rob_images,
                                      "--eps", "0,0.01,0.02,0.03,0.04,0.05,0.06", "--out", str(out / "robustness"),
                                      *ow, *common]))
    for title, cmd in steps:
        print(f"\n== {title}\n$ brainalign {shlex.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        code = brainalign(cmd)
        if code != 0:
            print(f"step '{title}' failed (exit {code}); fix the message above and re-run (finished runs are kept)")
            return code
    print(f"\nReports: {', '.join(str(out / d / 'report.md') for d in ('eeg', 'fmri', 'variability', 'robustness'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
