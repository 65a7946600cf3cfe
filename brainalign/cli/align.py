"""``brainalign align BACKBONE --eeg SOURCE``: personalised aligned models, one folder per run."""
from __future__ import annotations

from pathlib import Path

from ..alignment.grid import run_name  # noqa: F401 (old import path)
from ..alignment.config import config_default, config_help
from ..validation import int_type
from ._options import add_image_cache_option, add_device_option, add_progress_option



def register(subparsers) -> None:
    p = subparsers.add_parser(
        "align", help="align a backbone with EEG (ReAlnet): one model per subject x beta x control",
        description="Fine-tune BACKBONE so that its layers predict each subject's EEG (task loss + beta * "
                    "(MSE + contrastive Spearman loss)). Each run starts from a fresh copy of the backbone and "
                    "writes OUT/sub-XX_beta-B[_nocont][_unpaired]/ with aligned.pt, history.json, config.json "
                    "and checkpoint.pt; complete runs are skipped, interrupted ones resume from their checkpoint, and a folder holding a run of other settings is refused.")
    p.add_argument("backbone", metavar="BACKBONE", help="registered backbone (cornet, cornet_tiny, resnet101, clip, "
                                                        "timm:<name>, open_clip:<name>)")
    p.add_argument("--eeg", metavar="SOURCE", default=None,
                   help="training EEG: 'synthetic' (the default when neither --eeg nor --fmri is given), "
                        "'things-eeg2:ROOT' or a THINGS-EEG2 root")
    p.add_argument("--subjects", default="1", metavar="LIST", help="subjects, e.g. 1, 1,3 or 1-10 (default 1)")
    p.add_argument("--beta", default="100", metavar="LIST", help="generation-loss weights, e.g. 1,10,100,1000 (default 100)")
    p.add_argument("--no-contrastive", action="store_true", help="control: drop the contrastive term (W/o ContLoss)")
    p.add_argument("--unpaired", action="store_true", help="control: pair each image with another image's EEG")
    # the training settings: defaults and help come from AlignConfig, the one settings object
    p.add_argument("--objective", default=config_default("objective"), metavar="NAME",
                   help=config_help("objective") + "; see 'Alignment objectives' in the README")
    p.add_argument("--epochs", type=int, default=config_default("epochs"), help=config_help("epochs"))
    p.add_argument("--batch-size", type=int, default=config_default("batch_size"), help=config_help("batch_size"))
    p.add_argument("--lr", type=float, default=config_default("lr"), help=config_help("lr"))
    p.add_argument("--seed", type=int, default=config_default("seed"), help=config_help("seed"))
    p.add_argument("--val-fraction", type=float, default=config_default("val_fraction"),
                   help=config_help("val_fraction"))
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="layers feeding the head (default: the backbone's)")
    p.add_argument("--head-pooling", default=config_default("head_pooling"), help=config_help("head_pooling"))
    wg = p.add_mutually_exclusive_group()
    wg.add_argument("--weights", metavar="PATH", help="local weights file for the backbone")
    wg.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                    help="start from random weights (no download needed)")
    p.add_argument("--out", metavar="DIR", help="output folder (default brainalign-results/align-BACKBONE)")
    p.add_argument("--resume", action="store_true",
                   help="continue interrupted runs (the default now; kept so older scripts work)")
    p.add_argument("--fmri", metavar="SOURCE", help="train on fMRI, e.g. 'shen:PATH' (any fMRI source); with --eeg "
                                                    "too, a joint alignment: both datasets, one head each")
    p.add_argument("--target-weights", metavar="W", default=None,
                   help="joint alignment (--eeg and --fmri): weight of each dataset's loss, e.g. eeg=1,fmri=0.5 "
                        "(default 1 each)")
    p.add_argument("--fmri-images", metavar="DIR", help="folder of the fMRI stimulus images (Shen's release has none)")
    p.add_argument("--controls", metavar="LIST", help="runs per subject x beta: none (aligned), nocont, unpaired, "
                                                      "nocont_unpaired, e.g. none,unpaired (overrides the two flags)")
    p.add_argument("--jobs", type=int_type("--jobs", minimum=1), default=1,
                   help="runs at once on this machine, each pinned to a GPU or cores/jobs threads (default 1)")
    p.add_argument("--launcher", choices=("local", "slurm"), default="local",
                   help="slurm: one Slurm job per run (a job array) through submitit")
    p.add_argument("--slurm-partition", metavar="P", help="Slurm partition (--launcher slurm)")
    p.add_argument("--gpus-per-run", type=int_type("--gpus-per-run", minimum=0), default=1,
                   help="GPUs per Slurm job (default 1)")
    p.add_argument("--timeout-min", type=int_type("--timeout-min", minimum=1), default=240,
                   help="Slurm time limit per run in minutes (default 240); preempted/timed-out jobs requeue "
                        "and resume from their checkpoint")
    add_device_option(p)
    add_image_cache_option(p)
    p.add_argument("--amp", nargs="?", choices=("bf16", "fp16", "auto"), const="auto", default=None,
                   help="mixed precision: bf16 (CUDA, or CPU where supported) or fp16 (with loss scaling); "
                        "auto (or a bare --amp): bf16 where the device supports it, else fp16")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format (faster convolutions on GPUs)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")
    p.add_argument("--images-on-device", action="store_true",
                   help="keep the whole decoded image set on the device (CUDA: no host work per step)")
    p.add_argument("--format", choices=("pt", "safetensors"), default="pt", help="aligned model file format")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..alignment.grid import run_grid
    from ..errors import ConfigError

    from ..models.registry import get_backbone_spec

    spec = get_backbone_spec(args.backbone)
    out = Path(args.out) if args.out else Path("brainalign-results") / f"align-{spec.name}"
    controls = list(args.controls.split(",")) if args.controls else \
        [{(True, False): "none", (False, False): "nocont", (True, True): "unpaired",
          (False, True): "nocont_unpaired"}[(not args.no_contrastive, args.unpaired)]]
    fmri_options = {"images": args.fmri_images} if args.fmri_images else {}
    targets = None
    if args.fmri is not None and args.eeg is not None:  # joint: both datasets, one head each
        source, modality, source_options = None, None, {}
        targets = {"eeg": args.eeg, "fmri": (args.fmri, fmri_options)}
    elif args.fmri is not None:
        source, modality, source_options = args.fmri, "fmri", fmri_options
    else:
        source, modality, source_options = args.eeg or "synthetic", "eeg", {}
    if args.target_weights is not None and targets is None:
        raise ConfigError("--target-weights weighs the datasets of a joint alignment: give both --eeg and --fmri")
    run_grid(args.backbone, args.subjects, args.beta, controls, out=out, source=source, modality=modality,
             source_options=source_options, pretrained=args.pretrained, weights=args.weights,
             executor=_executor(args, out), format=args.format, targets=targets, **align_options(args))
    return 0


def align_options(args) -> dict:
    """The ``align()`` keywords the command line sets (everything but the grid itself), with the
    training settings checked at once by building the AlignConfig they describe."""
    from ..alignment.config import AlignConfig, config_field_names
    from ..alignment.targets import check_weights_setting

    options = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                val_fraction=args.val_fraction, layers=args.layers, head_pooling=args.head_pooling,
                device=args.device, amp=args.amp, progress=args.progress, channels_last=args.channels_last,
                compile=args.compile, images_on_device=args.images_on_device,
                **({"objective": args.objective} if getattr(args, "objective", None) is not None else {}),
                **({"target_weights": check_weights_setting(args.target_weights)}
                   if getattr(args, "target_weights", None) else {}),
                **({"image_cache": args.image_cache} if getattr(args, "image_cache", None) is not None else {}))
    AlignConfig(**{k: v for k, v in options.items() if k in config_field_names()})  # bad values: exit 2 before any run
    return options


def _executor(args, out: Path):
    from ..alignment.executors import InProcess, LocalParallel, Submitit

    if args.launcher == "slurm":
        return Submitit(partition=args.slurm_partition, gpus_per_run=args.gpus_per_run,
                        timeout_min=args.timeout_min, folder=out / "slurm-logs")
    return LocalParallel(args.jobs, device=args.device) if args.jobs > 1 else InProcess()
