"""``brainalign robustness MODEL... --images SOURCE``: accuracy under FGSM/PGD attack."""
from __future__ import annotations

from ..validation import int_type
from ._options import add_image_cache_option, add_output_options, add_device_option, add_progress_option, log, seed_option

from ..evaluate.robustness import DEFAULT_EPS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "robustness", help="white-box FGSM/PGD robustness (top-1/top-5 vs epsilon); figure + JSON",
        description="Attack each MODEL white-box in [0, 1] pixel space (before normalisation) over a range of "
                    "epsilons and report top-1/top-5 accuracy, raw and baseline-aligned (minus eps=0). Embedding "
                    "models (CLIP) are classified zero-shot over ImageNet's classes with their text tower.")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="backbone names, timm:/open_clip: names or aligned-model files (first = reference for "
                        "--labels model)")
    p.add_argument("--images", default="synthetic", metavar="SOURCE",
                   help="synthetic[:SEED] (default), a folder of images, or a folder of class subfolders")
    p.add_argument("--attack", choices=["fgsm", "pgd"], default="fgsm", help="attack (default fgsm)")
    p.add_argument("--eps", default=",".join(f"{e:g}" for e in DEFAULT_EPS),
                   help="comma-separated epsilons in pixel units (default 0,0.01,...,0.06)")
    p.add_argument("--steps", type=int_type("--steps", minimum=1), default=10, help="PGD steps (default 10)")
    p.add_argument("--step-size", type=float, default=None, help="PGD step size (default 2.5*eps/steps)")
    p.add_argument("--labels", choices=["auto", "folder", "model"], default="auto",
                   help="'folder': ground truth from class subfolders (as the paper's ImageNet evaluation); "
                        "'model': the reference model's clean predictions (for images without labels, said so in "
                        "the report); 'auto' (default): folder labels when the source has class folders that fit "
                        "the models, else the model's")
    p.add_argument("--reference", metavar="MODEL", help="reference model for --labels model (default: the first MODEL)")
    p.add_argument("--max-images", type=int_type("--max-images", minimum=1), default=None,
                   help="use a seeded random subset of this many images")
    p.add_argument("--templates", choices=["simple", "openai", "single"], default="simple",
                   help="zero-shot prompt templates for CLIP (default: open_clip's 7 'simple' ones)")
    add_output_options(p, "robustness")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="random weights for backbone names (and a random CLIP text tower)")
    add_device_option(p)
    add_image_cache_option(p)
    p.add_argument("--batch-size", type=int_type("--batch-size", minimum=1), default=32, help="images per batch (default 32)")
    seed_option(p, "seed (image subset, PGD random start)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache for zero-shot heads (default ~/.cache/brainalign)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate.robustness_run import run_robustness

    o = run_robustness(args.models, images=args.images, attack=args.attack, eps=args.eps, labels=args.labels,
                       reference=args.reference, steps=args.steps, step_size=args.step_size,
                       batch_size=args.batch_size, max_images=args.max_images, out=args.out,
                       overwrite=args.overwrite, pretrained=args.pretrained, device=args.device, seed=args.seed,
                       templates=args.templates, cache_dir=args.cache_dir, progress=args.progress,
                       log=log, argv=["brainalign", *args.argv])
    print()
    print(o.table)
    print()
    print(f"Report: {o.out / 'report.md'}  (results.json, results.csv, robustness.png)")
    return 0
