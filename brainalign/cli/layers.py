"""``brainalign layers BACKBONE``: the module tree with each module's output shape."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "layers", help="print a backbone's module tree with output shapes (CPU, no weights needed)",
        description="Build BACKBONE with random weights on the CPU, run one dummy image through it and "
                    "print every module with its output shape (without the batch dimension). "
                    "Default brain-mapped layers are marked with '*'. Use the printed names as layers=[...].")
    p.add_argument("backbone", help="backbone name or alias (see 'brainalign backbones'), or timm:<name> / "
                                    "open_clip:<name>")
    p.add_argument("--size", type=int, default=None,
                   help="side of the square dummy image (default: the backbone's input size)")
    p.add_argument("--depth", type=int, default=None,
                   help="show modules up to this nesting depth only (1 = top level; default: all)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..errors import BackboneError, ConfigError
    from ..models.registry import load_backbone
    from ..taps import module_output_shapes

    if args.size is not None and args.size < 8:
        raise ConfigError(f"--size must be >= 8 pixels, got {args.size}")
    if args.depth is not None and args.depth < 1:
        raise ConfigError(f"--depth must be >= 1, got {args.depth}")
    model = load_backbone(args.backbone, pretrained=False, device="cpu")
    from ..models.registry import spec_of

    spec = spec_of(model)
    size = args.size or spec.preprocessing.size
    x = torch.zeros(1, 3, size, size)
    try:
        shapes = module_output_shapes(model, x)
    except RuntimeError as exc:
        raise BackboneError(f"{spec.name} cannot run a {size}x{size} image ({exc}); try --size "
                            f"{spec.preprocessing.size}") from exc
    defaults = dict(zip(spec.layers, spec.labels()))
    modules = dict(model.named_modules())
    rows = []
    for name, (shape, calls) in shapes.items():
        depth = name.count(".") + 1
        if args.depth is not None and depth > args.depth:
            continue
        shown = "-" if shape is None else str(tuple(shape[1:])) if len(shape) > 1 else str(tuple(shape))
        if calls == 0:
            containers = (torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.ParameterList)
            shown = "(container)" if isinstance(modules[name], containers) else "(not called)"
        elif calls > 1:
            shown += f"  x{calls} calls (last shown)"
        mark = ""
        if name in defaults:
            mark = "* " + (defaults[name] if defaults[name] != name else "")
        rows.append(("  " * (depth - 1) + name, shown, mark.rstrip()))
    width = max(len(r[0]) for r in rows) + 2
    swidth = max(len(r[1]) for r in rows) + 2
    print(f"{spec.name}: output shapes for one 3x{size}x{size} image (batch dimension omitted); "
          "* = default layer")
    for r in rows:
        print(f"{r[0].ljust(width)}{r[1].ljust(swidth)}{r[2]}".rstrip())
    return 0
