"""``brainalign reproduce``: the paper's figure set (2A-C, 3A-C, 4, 5) with statistics and a verdict."""
from __future__ import annotations

from ._options import add_device_option, add_output_options, add_progress_option, log, seed_option


def register(subparsers) -> None:
    from ..validation import int_type

    p = subparsers.add_parser(
        "reproduce", help="the paper's figures with statistics and a verdict (synthetic brain by default)",
        description="Trains, per subject, the aligned model (beta 100), the unpaired control, the model without the "
                    "contrastive term and a beta sweep (1, 10, 100, 1000), then writes the paper's Fig. 2A-C, 3A-C, "
                    "4 and 5 as PNGs, report.md with one section per figure and a verdict saying which of the "
                    "paper's claims held, and results.json (tidy rows, statistics, stage timings).")
    add_output_options(p, "reproduce")
    p.add_argument("--subjects", type=int_type("--subjects", minimum=2), default=None,
                   help="number of subjects (default 6; >= 5 lets the cluster test reach p < .05)")
    p.add_argument("--epochs", type=int_type("--epochs", minimum=1), default=None, help="alignment epochs per model")
    p.add_argument("--paper-settings", action="store_true",
                   help="the paper's choices: zscore='global' (one mean/std per subject), 30 epochs, lr 2e-5, "
                        "batch 16, betas 1/10/100/1000, seed 2023")
    p.add_argument("--zscore", choices=["feature", "global", "none"], default=None,
                   help="EEG scaling with the training split's statistics: per channel x time point ('feature', "
                        "default) or one mean and std per subject ('global', the paper's code; the default of "
                        "--paper-settings), or none")
    p.add_argument("--eeg", metavar="SOURCE", help="EEG with a training split, e.g. things-eeg2:ROOT (default: the "
                                                   "synthetic brain)")
    p.add_argument("--fmri", metavar="SOURCE", help="fMRI test data, e.g. shen:PATH")
    p.add_argument("--fmri-images", metavar="DIR", help="the fMRI stimulus images (Shen's release has none)")
    p.add_argument("--images", metavar="DIR", help="images to attack (class subfolders give ground-truth labels)")
    p.add_argument("--backbone", default=None, help="starting backbone (default: cornet_tiny on the synthetic "
                                                    "brain, cornet with --eeg)")
    p.add_argument("--weights", metavar="PATH", help="local weights for --backbone")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 epoch: checks the pipeline in about a "
                                                        "minute, too small to show any effect")
    seed_option(p, "seed of the data and all training (default 0; --paper-settings: 2023)")
    add_device_option(p)
    p.add_argument("--cache-dir", metavar="DIR", help="cache for EEG decoding RDMs")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate.reproduce import ReproduceSettings, run_reproduce

    kw = {"seed": args.seed}
    if args.subjects is not None:
        kw["n_subjects"] = args.subjects
    if args.eeg:
        kw.update(backbone=args.backbone or "cornet", pretrained=not args.weights)
    elif args.backbone:
        kw["backbone"] = args.backbone
    if args.weights:
        kw["weights"] = args.weights
    s = ReproduceSettings.quick(**kw) if args.quick else ReproduceSettings(**kw)
    if args.paper_settings:
        s = s.with_paper_settings()
    from dataclasses import replace

    if args.epochs is not None:
        s = replace(s, align_epochs=args.epochs)
    if args.zscore is not None:
        s = replace(s, zscore=None if args.zscore == "none" else args.zscore)
    outcome = run_reproduce(args.out, settings=s, eeg=args.eeg, fmri=args.fmri, fmri_images=args.fmri_images,
                            images=args.images, overwrite=args.overwrite, device=args.device,
                            cache_dir=args.cache_dir, progress=args.progress, log=log, argv=args.argv)
    print()
    print(outcome.verdict)
    print(f"Report: {outcome.out / 'report.md'}")
    return 0
