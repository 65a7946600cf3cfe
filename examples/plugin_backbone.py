"""Write and register a backbone plugin, then evaluate it like any built-in backbone.

A plugin is a module with a ``@brainalign.hookimpl`` function ``brainalign_backbones()``
returning ``BackboneSpec``s, registered under the entry-point group ``brainalign`` in its
package's pyproject.toml. The complete example package is ``examples/plugin_example/``
(backbone ``tinynet``)::

    pip install ./examples/plugin_example      # registers the entry point
    brainalign backbones                        # ... lists tinynet
    brainalign compare tinynet --no-pretrained  # RSA against the synthetic brain

This script does the same from Python. If the package is not installed it registers the
plugin module in-process (``get_plugin_manager().register(module)``), which is handy in
notebooks; installation through the entry point is the normal way.

    python examples/plugin_backbone.py [--out DIR]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def ensure_tinynet() -> str:
    """'entry point' if the installed plugin provides tinynet, else register it here ('in-process')."""
    from brainalign.models.registry import available_backbones
    from brainalign.plugin_manager import get_plugin_manager

    if "tinynet" in available_backbones(refresh=True):
        return "entry point"
    sys.path.insert(0, str(Path(__file__).resolve().parent / "plugin_example"))
    import brainalign_tinynet

    get_plugin_manager().register(brainalign_tinynet, name="tinynet-example")
    return "in-process"


def main() -> None:
    ap = argparse.ArgumentParser(description="register the example plugin and compare its backbone")
    ap.add_argument("--out", default=None, help="report folder (default: brainalign-results/compare-<time>)")
    args = ap.parse_args()

    how = ensure_tinynet()
    import brainalign
    from brainalign.evaluate.compare import run_compare

    model = brainalign.load_backbone("tinynet", pretrained=False)
    spec = brainalign.models.registry.spec_of(model)
    print(f"tinynet registered ({how}); plugin {spec.plugin!r}, layers {spec.layers} ({spec.labels()})")
    outcome = run_compare(["tinynet", "cornet_tiny"], pretrained=False, subjects=[1, 2], out=args.out,
                          n_permutations=200, progress=False)
    print(outcome.table)
    print(f"report: {outcome.out / 'report.md'}")


if __name__ == "__main__":
    main()
