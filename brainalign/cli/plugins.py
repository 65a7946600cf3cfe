"""``brainalign plugins``: installed plugins and what each provides."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plugins", help="list installed plugins and the backbones/datasets each provides",
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
        if p["datasets"]:
            print(f"  datasets: {', '.join(p['datasets'])}")
        if not (p["backbones"] or p["prefixes"] or p["datasets"]):
            print("  (provides nothing yet)")
    return 0
