"""``brainalign plugins``: installed plugins and what each provides."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plugins", help="list installed plugins and the backbones, datasets, objectives and analyses each provides",
        description="List the plugins registered under the 'brainalign' entry-point group "
                    "(first-party and third-party alike) and what each provides.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..plugin_manager import list_plugins

    plugins = list_plugins()
    if not plugins:
        print("no brainalign plugins installed (reinstall brainalign: pip install -e .)")
        return 0
    for p in plugins:
        dist = f" [{p['distribution']}]" if p["distribution"] else ""
        print(f"{p['name']}  (module {p['module']}){dist}")
        if p["backbones"]:
            aliases = f"  (aliases: {', '.join(p['aliases'])})" if p["aliases"] else ""
            print(f"  backbones: {', '.join(p['backbones'])}{aliases}")
        if p["prefixes"]:
            print(f"  dynamic backbones: {', '.join(p['prefixes'])}")
        for key in ("datasets", "objectives", "analyses"):
            if p[key]:
                print(f"  {key}: {', '.join(p[key])}")
        if not any(p[key] for key in ("backbones", "prefixes", "datasets", "objectives", "analyses")):
            print("  (provides nothing yet)")
    return 0
