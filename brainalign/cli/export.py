"""``brainalign export RUN OUT_DIR``: an aligned run or file as a hub-style model folder."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write an aligned model as a shareable folder (model.safetensors, config.json, README.md)",
        description="Export an aligned model for sharing or uploading to the Hugging Face Hub: RUN is a run folder "
                    "of 'brainalign align' (or align(out_dir=...)), an aligned .pt/.safetensors file, or an "
                    "exported folder. OUT_DIR gets model.safetensors (weights of backbone and encoder heads), "
                    "config.json (backbone, layers, data, subject, beta, objective, validation Spearman, history, "
                    "versions, provenance) and a README.md model card; it appears complete or not at all. "
                    "Load it with brainalign.load_aligned(OUT_DIR), or as a MODEL of 'brainalign compare'.")
    p.add_argument("run", metavar="RUN", help="run folder or aligned-model file")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (must not exist or be empty)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists and is not empty")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..alignment.hub import read_aligned, save_pretrained
    from ..errors import OutputExistsError

    out = Path(args.out_dir).expanduser()
    src = Path(args.run).expanduser()
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise OutputExistsError(f"OUT_DIR {out} is RUN itself: export into another folder")
    parts, where = read_aligned(args.run)
    save_pretrained(parts, out, overwrite=args.overwrite, option="OUT_DIR")
    cfg = parts.config
    best = cfg.get("best_epoch")
    row = parts.history[best - 1] if isinstance(best, int) and 1 <= best <= len(parts.history) else {}
    score = row.get("val_spearman")
    print(f"exported {where} -> {out} ({cfg.get('backbone')}, layers {', '.join(cfg.get('layers') or [])}"
          + (f", best epoch {best}, validation Spearman {score:.3f}" if isinstance(score, float) else "") + ")")
    print(f"load it with brainalign.load_aligned({str(out)!r})")
    return 0
