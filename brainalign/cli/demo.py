"""``brainalign demo [--out DIR] [--quick]``: align a small model to the synthetic brain, end to end."""
from __future__ import annotations

from ..validation import int_type
from ._options import add_image_cache_option, add_output_options, add_device_option, add_progress_option, log, seed_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="end-to-end demo on the built-in synthetic brain: align, control, compare, report (< 5 min on 2 CPU cores)",
        description="Builds the synthetic brain, trains cornet_tiny briefly to classify the synthetic training "
                    "coarse classes (stand-in for ImageNet pretraining), aligns it to six subjects' EEG, trains the "
                    "unpaired control, compares aligned vs unaligned vs control on held-out concepts (EEG with a "
                    "cluster test across subjects, and fMRI), and writes a report with figures plus the saved "
                    "models (moved into OUT/models only when the whole run succeeded). With real weights use --backbone cornet "
                    "--pretrained (or --weights PATH); the classifier step is then skipped.")
    add_output_options(p, "demo")
    p.add_argument("--quick", action="store_true", help="tiny data and 1 epoch: checks the pipeline quickly, too small to show the effect")
    seed_option(p, "seed of the synthetic brain and all training (default 0)")
    p.add_argument("--epochs", type=int_type("--epochs", minimum=1), default=None,
                   help="alignment epochs (default 6; --quick 1)")
    p.add_argument("--zscore", choices=["feature", "global", "none"], default="feature",
                   help="EEG scaling with the training split's statistics: per channel x time point (default), "
                        "one mean and std per subject as the paper's code ('global'), or none")
    p.add_argument("--backbone", default="cornet_tiny", help="starting backbone (default cornet_tiny)")
    p.add_argument("--pretrained", action="store_true", help="use the backbone's pretrained weights (skip the "
                                                             "classifier stand-in); needs them cached or online")
    p.add_argument("--weights", metavar="PATH", help="local weights for --backbone (skips the classifier stand-in)")
    add_device_option(p)
    add_image_cache_option(p)
    p.add_argument("--cache-dir", metavar="DIR", help="cache for EEG decoding RDMs")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate.demo import DemoSettings, run_demo

    kw = dict(seed=args.seed, backbone=args.backbone, pretrained=args.pretrained, weights=args.weights,
              zscore=None if args.zscore == "none" else args.zscore)
    if args.epochs is not None:
        kw["align_epochs"] = args.epochs
    settings = DemoSettings.quick(**kw) if args.quick else DemoSettings(**kw)
    outcome = run_demo(args.out, overwrite=args.overwrite, settings=settings, device=args.device,
                       progress=args.progress, cache_dir=args.cache_dir, log=log)
    print()
    for line in outcome.summary:
        print(line)
    return 0
