"""``brainalign backbones``: the backbones installed plugins provide."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "backbones", help="list available backbones (names, aliases, plugin, default layers)",
        description="List the backbones the installed plugins provide. Any timm model also works as "
                    "timm:<name> and any open_clip model as open_clip:<name>[@<tag>].")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..models.registry import available_backbones

    specs = available_backbones()
    rows = [("NAME", "ALIASES", "PLUGIN", "OUTPUT", "INPUT", "DEFAULT LAYERS")]
    for name in sorted(specs):
        s = specs[name]
        labels, layers = s.labels(), s.layers
        shown = ", ".join(lab if lab == lay else f"{lab}={lay}" for lab, lay in zip(labels, layers))
        rows.append((s.name, ", ".join(s.aliases) or "-", s.plugin or "-", s.output,
                     str(s.preprocessing.size), shown))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    print("\nAlso: timm:<model> (any timm model, e.g. timm:convnext_tiny) and open_clip:<model>[@<tag>] "
          "(any open_clip image tower, e.g. open_clip:ViT-B-32).\nShow a backbone's modules and output "
          "shapes with 'brainalign layers NAME'.")
    return 0
