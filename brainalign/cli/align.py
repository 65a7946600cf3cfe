"""``brainalign align BACKBONE --eeg SOURCE``: personalised aligned models, one folder per run."""
from __future__ import annotations

from ._options import add_image_cache_option, add_device_option, add_progress_option

import json
from pathlib import Path



def register(subparsers) -> None:
    p = subparsers.add_parser(
        "align", help="align a backbone with EEG (ReAlnet): one model per subject x beta x control",
        description="Fine-tune BACKBONE so that its layers predict each subject's EEG (task loss + beta * "
                    "(MSE + contrastive Spearman loss)). Each run starts from a fresh copy of the backbone and "
                    "writes OUT/sub-XX_beta-B[_nocont][_unpaired]/ with aligned.pt, history.json, config.json "
                    "and checkpoint.pt; complete runs are skipped, interrupted ones continue with --resume.")
    p.add_argument("backbone", metavar="BACKBONE", help="registered backbone (cornet, cornet_tiny, resnet101, clip, "
                                                        "timm:<name>, open_clip:<name>)")
    p.add_argument("--eeg", metavar="SOURCE", default="synthetic",
                   help="training EEG: 'synthetic' (the default when omitted), 'things-eeg2:ROOT' or a THINGS-EEG2 root")
    p.add_argument("--subjects", default="1", metavar="LIST", help="subjects, e.g. 1, 1,3 or 1-10 (default 1)")
    p.add_argument("--beta", default="100", metavar="LIST", help="generation-loss weights, e.g. 1,10,100,1000 (default 100)")
    p.add_argument("--no-contrastive", action="store_true", help="control: drop the contrastive term (W/o ContLoss)")
    p.add_argument("--unpaired", action="store_true", help="control: pair each image with another image's EEG")
    p.add_argument("--objective", default="realnet", metavar="NAME",
                   help="alignment objective: realnet (default), rsa, cka, a plugin's, or a weighted sum such as "
                        "realnet+0.5*rsa (see 'Alignment objectives' in the README)")
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    p.add_argument("--lr", type=float, default=2e-5, help="Adam learning rate (default 2e-5)")
    p.add_argument("--seed", type=int, default=2023, help="seed (default 2023)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of training concepts held out to pick the best epoch (default 0.1)")
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="layers feeding the head (default: the backbone's)")
    p.add_argument("--head-pooling", default="flatten", help="flatten (reference), avg or adaptive<k> for big layers")
    wg = p.add_mutually_exclusive_group()
    wg.add_argument("--weights", metavar="PATH", help="local weights file for the backbone")
    wg.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                    help="start from random weights (no download needed)")
    p.add_argument("--out", metavar="DIR", help="output folder (default brainalign-results/align-BACKBONE)")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoint")
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


def run_name(subject, beta: float, contrastive: bool, unpaired: bool) -> str:
    from ..data.subjects import subject_label

    sub = subject_label(subject)
    return f"{sub}_beta-{beta:g}" + ("" if contrastive else "_nocont") + ("_unpaired" if unpaired else "")


def run(args) -> int:
    from ..alignment import align
    from ..data.registry import load_eeg_source
    from ..models.registry import get_backbone_spec, load_backbone

    from ..data.subjects import parse_numbers, parse_subjects

    subjects = parse_subjects(args.subjects)
    betas = parse_numbers(args.beta, "beta values")
    spec = get_backbone_spec(args.backbone)
    out = Path(args.out) if args.out else Path("brainalign-results") / f"align-{spec.name}"
    model = None  # loaded once, only if some run needs it; align() never modifies it
    for subject in subjects:
        data = None
        for beta in betas:
            name = run_name(subject, beta, not args.no_contrastive, args.unpaired)
            folder = out / name
            done = folder / f"aligned.{args.format}"
            if done.is_file() and (folder / "history.json").is_file():
                print(f"{name}: complete, skipped ({done})")
                continue
            if model is None:
                model = load_backbone(args.backbone, pretrained=args.pretrained, weights=args.weights, device="cpu")
            if data is None:
                data = load_eeg_source(args.eeg, subject, "training")
            res = align(model, args.layers, eeg=data, beta=beta, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, seed=args.seed, val_fraction=args.val_fraction,
                        contrastive=not args.no_contrastive, unpaired=args.unpaired, objective=args.objective,
                        head_pooling=args.head_pooling,
                        device=args.device, amp=args.amp, out_dir=folder, resume=args.resume,
                        progress=args.progress, channels_last=args.channels_last, compile=args.compile,
                        images_on_device=args.images_on_device)
            if args.format == "safetensors":
                res.save(done)
                (folder / "aligned.pt").unlink(missing_ok=True)
            row = res.history[res.best_epoch - 1] if res.best_epoch else {}
            score = row.get("val_spearman")
            print(f"{name}: best epoch {res.best_epoch}/{len(res.history)}"
                  + (f", validation Spearman {score:.3f}" if score is not None else "") + f" -> {folder}")
    if out.is_dir():  # what was asked for, so `compare` can find the grid
        (out / "runs.json").write_text(json.dumps({"backbone": spec.name, "eeg": str(args.eeg), "subjects": subjects,
                                                   "betas": betas, "contrastive": not args.no_contrastive,
                                                   "unpaired": args.unpaired}, indent=1))
    return 0
