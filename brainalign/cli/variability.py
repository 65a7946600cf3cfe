"""``brainalign variability MODEL...``: how different are personalised models from each other?"""
from __future__ import annotations

from ..validation import int_type
from ._options import add_image_cache_option, add_output_options, add_device_option, add_progress_option, log, seed_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "variability", help="individual variability between models per layer (1 - Spearman of RDMs); figure + JSON",
        description="For each layer shared by the MODELs, correlate (Spearman) every pair of models' RDMs on the "
                    "same images; variability = 1 - rho. Typically the personalised aligned models of several "
                    "subjects (the paper finds it grows from early to late layers).")
    p.add_argument("models", nargs="+", metavar="MODEL", help="aligned-model files/folders or backbone names (>= 2)")
    p.add_argument("--images", default="synthetic", metavar="SOURCE",
                   help="synthetic[:SEED] (default: the synthetic test images) or an image folder")
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="layers (default: those all models share)")
    p.add_argument("--max-images", type=int_type("--max-images", minimum=3), default=None,
                   help="use a seeded random subset of this many images (>= 3)")
    add_output_options(p, "variability")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false", help="random weights for backbone names")
    add_device_option(p)
    add_image_cache_option(p)
    p.add_argument("--batch-size", type=int_type("--batch-size", minimum=1), default=32,
                   help="images per forward pass (default 32)")
    seed_option(p, "seed (image subset, random weights)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate.variability import run_variability

    o = run_variability(args.models, images=args.images, layers=args.layers, out=args.out, overwrite=args.overwrite,
                        pretrained=args.pretrained, device=args.device, batch_size=args.batch_size,
                        max_images=args.max_images, seed=args.seed, progress=args.progress,
                        log=log, argv=["brainalign", *args.argv])
    print()
    print(o.table)
    print()
    print(f"Report: {o.out / 'report.md'}  (results.json, results.csv, variability.png)")
    return 0
