"""Plugin discovery through the 'brainalign' entry-point group, as a third party would use it."""
from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import brainalign
from brainalign.cli import main
from brainalign.plugin_manager import get_plugin_manager, list_plugins

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_example"


def _on_sys_path(path: Path, modules: tuple[str, ...]):
    """Put ``path`` first on sys.path and refresh the plugin manager; undo both afterwards."""
    sys.path.insert(0, str(path))
    get_plugin_manager(refresh=True)
    try:
        yield path
    finally:
        sys.path.remove(str(path))
        for name in modules:
            sys.modules.pop(name, None)
        get_plugin_manager(refresh=True)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install examples/plugin_example into a private folder (no network, no build isolation)."""
    root = tmp_path_factory.mktemp("example_plugin")
    src, target = root / "src", root / "site"
    shutil.copytree(EXAMPLE, src)  # build in a copy: the repository stays clean
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(target), str(src)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    yield from _on_sys_path(target, ("brainalign_tinynet",))


def test_first_party_plugins_use_the_public_entry_point_group():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="brainalign")}
    assert {"cornet": "brainalign_cornet", "timm": "brainalign_timm", "open_clip": "brainalign_openclip"}.items() \
        <= eps.items()
    pm = get_plugin_manager()
    assert {"cornet", "timm", "open_clip"} <= {name for name, _ in pm.list_name_plugin()}


def test_example_plugin_is_discovered_and_its_backbone_used(installed_example):
    spec = brainalign.get_backbone_spec("tiny-net")  # alias, found through the entry point
    assert spec.name == "tinynet" and spec.plugin == "tinynet"
    model = brainalign.load_backbone("tinynet", pretrained=False, device="cpu")
    assert type(model).__module__ == "brainalign_tinynet"
    assert Path(sys.modules["brainalign_tinynet"].__file__).is_relative_to(installed_example)
    feats = brainalign.extract_features(model, torch.rand(5, 3, 40, 40), ["early", "late"], pooling="avg",
                                        batch_size=2, progress=False)
    assert feats["stage1"].shape == (5, 8) and feats["stage3"].shape == (5, 32)
    entry = next(p for p in list_plugins() if p["name"] == "tinynet")
    assert entry["backbones"] == ["tinynet"] and entry["distribution"] == "brainalign-tinynet 0.1.0"


def test_example_plugin_in_the_cli(installed_example, capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "tinynet" in out and "brainalign-tinynet" in out and "cornet" in out and "timm:<model>" in out
    assert main(["backbones"]) == 0
    assert "tinynet" in capsys.readouterr().out
    assert main(["layers", "tinynet"]) == 0
    out = capsys.readouterr().out
    assert "stage3" in out and "(32, 4, 4)" in out


def _fake_distribution(site: Path, name: str, entry_point: str, module_source: str) -> None:
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[brainalign]\n{entry_point}\n")
    module = entry_point.split("=", 1)[1].strip()
    (site / f"{module}.py").write_text(module_source)


def test_a_broken_plugin_is_skipped_with_a_warning(tmp_path):
    _fake_distribution(tmp_path, "broken-plugin", "broken = brainalign_broken_plugin",
                       "raise ImportError('needs a package that is not installed')\n")
    gen = _on_sys_path(tmp_path, ("brainalign_broken_plugin",))
    with pytest.warns(UserWarning, match=r"plugin 'broken'.*broken-plugin.*could not be loaded.*not installed"):
        next(gen)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing else complains
            assert {"cornet", "resnet101", "clip"} <= set(brainalign.available_backbones())
        assert "broken" not in {p["name"] for p in list_plugins()}
    finally:
        next(gen, None)
    assert "broken" not in {name for name, _ in get_plugin_manager().list_name_plugin()}


@pytest.mark.parametrize("source,match", [
    ("from brainalign import hookimpl\n@hookimpl\ndef brainalign_backbone():\n    return []\n",
     r"plugin 'typo'.*brainalign_backbone\(\), which is not a brainalign hook.*Did you mean: brainalign_backbones"),
    ("from brainalign import hookimpl\n@hookimpl\ndef brainalign_resolve_backbone(model_name):\n    return None\n",
     r"plugin 'typo'.*malformed.*model_name"),
])
def test_a_malformed_plugin_is_rejected_naming_the_hook(tmp_path, source, match):
    from brainalign.errors import PluginError

    _fake_distribution(tmp_path, "typo-plugin", "typo = brainalign_typo_plugin", source)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(PluginError, match=match):
            get_plugin_manager(refresh=True)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("brainalign_typo_plugin", None)
        get_plugin_manager(refresh=True)


def test_a_bad_hook_return_value_names_plugin_and_hook(tmp_path):
    from brainalign.errors import PluginError

    _fake_distribution(tmp_path, "bad-return", "badret = brainalign_badret_plugin",
                       "from brainalign import hookimpl\n@hookimpl\ndef brainalign_backbones():\n    return ['resnet']\n")
    gen = _on_sys_path(tmp_path, ("brainalign_badret_plugin",))
    next(gen)
    try:
        with pytest.raises(PluginError, match=r"plugin 'badret': brainalign_backbones\(\) returned a str.*BackboneSpec"):
            brainalign.available_backbones(refresh=False)
    finally:
        next(gen, None)


def test_plugins_lists_objectives_and_analyses_with_their_plugin(capsys):
    entries = {p["name"]: p for p in list_plugins()}
    assert entries["objectives"]["objectives"] == ["realnet", "rsa", "cka"]
    assert {"time-resolved-rsa", "roi-rsa", "rdm-rsa", "variability"} <= set(entries["analyses"]["analyses"])
    assert "synthetic (eeg)" in entries["neural_data"]["datasets"]
    assert entries["cornet"]["objectives"] == [] and entries["objectives"]["backbones"] == []
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    block = out.split("objectives  (module brainalign_objectives)")[1].split("\n\n")[0]
    assert "  objectives: realnet, rsa, cka" in block
    assert "  analyses: time-resolved-rsa, roi-rsa, rdm-rsa, variability" in out


@pytest.mark.parametrize("body,error", [
    ("    raise RuntimeError('resolver bug')\n", None),
    ("    return 'resnet' if name == 'oddnet' else None\n", r"plugin 'oddres': brainalign_resolve_backbone\(\) "
                                                          r"returned a str.*BackboneSpec"),
])
def test_a_resolver_plugin_is_held_to_the_same_rules_as_list_hooks(tmp_path, body, error):
    from brainalign.errors import BackboneError, PluginError

    _fake_distribution(tmp_path, "odd-resolver", "oddres = brainalign_oddres_plugin",
                       f"from brainalign import hookimpl\n@hookimpl\ndef brainalign_resolve_backbone(name):\n{body}")
    gen = _on_sys_path(tmp_path, ("brainalign_oddres_plugin",))
    next(gen)
    try:
        if error is None:  # a crashing resolver is skipped with a warning naming it; the others still answer
            with pytest.warns(UserWarning, match=r"plugin 'oddres': brainalign_resolve_backbone\(\) failed.*resolver bug"):
                with pytest.raises(BackboneError, match="unknown backbone 'oddnet'"):
                    brainalign.get_backbone_spec("oddnet")
        else:
            with pytest.raises(PluginError, match=error):
                brainalign.get_backbone_spec("oddnet")
    finally:
        next(gen, None)
