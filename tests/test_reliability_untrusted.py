"""Untrusted files: nothing loaded from a data, weights, checkpoint, cache or config file can run code.

A static scan of every source file keeps future code from regressing (torch.load without
weights_only=True, np.load(allow_pickle=...) outside the THINGS-EEG2 loader, pickle/marshal/
yaml/eval/exec, dynamic imports outside the lazy-import tables, plugins from anything but
entry points). Runtime tests feed files whose unpickling would create a marker file to every
loader and check that each refuses them (or recomputes) and the marker never appears.
"""
from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [ROOT / "brainalign", ROOT / "plugins", ROOT / "examples"]
# the only module that may unpickle: THINGS-EEG2's release format *is* pickled dicts, and it
# reads only files under the root the user names
PICKLE_NPY_ALLOWED = {"plugins/brainalign_neuraldata/things_eeg2.py"}
# lazy-import tables whose module names are constants of the package itself
IMPORT_MODULE_ALLOWED = {"brainalign/__init__.py", "brainalign/data/__init__.py", "brainalign/cli/__init__.py"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "yaml", "joblib", "cloudpickle", "runpy"}


def _sources():
    for base in SCANNED:
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=rel)


def _dotted(node) -> str:
    """'a.b.c' for a chain of names; '' when the chain starts elsewhere (e.g. model.to(d).eval)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def scan(sources) -> list[str]:
    """Every unsafe call or import as 'file:line: what'."""
    problems = []
    for rel, tree in sources:
        # names bound to numpy / torch / pickle-like modules in this file (import numpy as np ...)
        aliases = {"np": "numpy", "numpy": "numpy", "torch": "torch"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name.split(".")[0]] = a.name
                    if a.name.split(".")[0] in FORBIDDEN_MODULES:
                        problems.append(f"{rel}:{node.lineno}: import {a.name}")
            elif isinstance(node, ast.ImportFrom):
                mod = (node.module or "").split(".")[0]
                if mod in FORBIDDEN_MODULES:
                    problems.append(f"{rel}:{node.lineno}: from {node.module} import ...")
                for a in node.names:
                    if (node.module, a.name) in {("torch", "load"), ("numpy", "load"), ("importlib", "import_module")}:
                        problems.append(f"{rel}:{node.lineno}: from {node.module} import {a.name} (call it "
                                        "qualified so the scan can check its arguments)")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            head, _, tail = name.partition(".")
            full = f"{aliases.get(head, head)}.{tail}" if tail else name
            where = f"{rel}:{node.lineno}"
            if isinstance(node.func, ast.Name) and name in FORBIDDEN_CALLS:  # builtins, not .eval()
                problems.append(f"{where}: {name}()")
            elif full in ("torch.load", "torch.jit.load") or name.endswith("jit.load"):
                if full != "torch.load" or not _is_true(_kw(node, "weights_only")):
                    problems.append(f"{where}: {name}() without weights_only=True")
            elif full == "numpy.load":
                ap = _kw(node, "allow_pickle")
                if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False) \
                        and rel not in PICKLE_NPY_ALLOWED:
                    problems.append(f"{where}: np.load(allow_pickle=...) outside {sorted(PICKLE_NPY_ALLOWED)}")
            elif full in ("importlib.import_module", "importlib.util.spec_from_file_location",
                          "importlib.machinery.SourceFileLoader"):
                if rel not in IMPORT_MODULE_ALLOWED:
                    problems.append(f"{where}: {name}() (plugins come from entry points only)")
            elif full in ("os.system", "os.popen") or (full.startswith("subprocess.") and _is_true(_kw(node, "shell"))):
                problems.append(f"{where}: {name}() runs a shell command")
            elif full in ("sys.path.insert", "sys.path.append") and not rel.startswith("examples/"):
                problems.append(f"{where}: {name}() (imports must not depend on data paths)")
    return problems


def test_source_tree_has_no_unsafe_loading_or_code_execution():
    problems = scan(_sources())
    assert not problems, "unsafe calls:\n" + "\n".join(problems)


@pytest.mark.parametrize("snippet,finding", [
    ("import torch\ntorch.load('x.pt')", "without weights_only=True"),
    ("import torch\ntorch.load('x.pt', weights_only=False)", "without weights_only=True"),
    ("import torch as T\nT.load(p, map_location='cpu')", "without weights_only=True"),
    ("from torch import load\nload(p)", "call it qualified"),
    ("import torch\ntorch.jit.load('m.pt')", "jit.load"),
    ("import numpy\nnumpy.load(f, allow_pickle=True)", "allow_pickle"),
    ("import numpy as xp\nxp.load(f, allow_pickle=flag)", "allow_pickle"),
    ("import pickle\npickle.loads(b)", "import pickle"),
    ("import yaml\nyaml.load(s)", "import yaml"),
    ("eval(text)", "eval()"),
    ("exec(code)", "exec()"),
    ("import importlib\nimportlib.import_module(name)", "entry points only"),
    ("import os\nos.system(cmd)", "shell command"),
    ("import subprocess\nsubprocess.run(cmd, shell=True)", "shell command"),
    ("import sys\nsys.path.insert(0, folder)", "sys.path"),
])
def test_scanner_catches_each_unsafe_pattern(snippet, finding):
    problems = scan([("brainalign/new_module.py", ast.parse(snippet))])
    assert len(problems) >= 1 and any(finding in p for p in problems), problems


def test_scanner_accepts_the_safe_forms():
    ok = ("import torch, numpy as np\ntorch.load(p, map_location='cpu', weights_only=True)\n"
          "np.load(p)\nnp.load(p, allow_pickle=False)\nmodel.eval()\n")
    assert scan([("brainalign/new_module.py", ast.parse(ok))]) == []
    assert scan([("brainalign/m.py", ast.parse("model.to(dev).eval()\nself.eval()\nx.exec()"))]) == []
    allowed = "plugins/brainalign_neuraldata/things_eeg2.py"
    assert scan([(allowed, ast.parse("import numpy as np\nnp.load(p, allow_pickle=True)"))]) == []


# --- runtime: malicious files are refused everywhere ----------------------------------------------

class Payload:
    """Unpickling calls Path.touch(marker): proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _malicious_torch_file(path: Path, marker: Path, wrap) -> Path:
    torch.save(wrap(Payload(marker)), path)
    return path


WRAPS = {
    "bare_object": lambda p: p,
    "aligned_format": lambda p: {"format": "brainalign-aligned/1", "config_json": "{}", "payload": {"model": p},
                                 "sha256": ""},
    "checkpoint_format": lambda p: {"format": "brainalign-checkpoint/1", "payload": {"rng": p}, "sha256": ""},
    "state_dict": lambda p: {"fc.weight": torch.zeros(2, 2), "fc.bias": p},
}


def _loaders():
    from brainalign.alignment import load_aligned
    from brainalign.alignment.checkpoint import CHECKPOINT_FORMAT, checked_load
    from brainalign.models.registry import load_backbone
    from brainalign.models.weights import load_state_dict_file

    return {
        "load_aligned": lambda p: load_aligned(p, model=torch.nn.Linear(2, 2)),
        "resume_checkpoint": lambda p: checked_load(p, CHECKPOINT_FORMAT),
        "weights_file": load_state_dict_file,
        "backbone_weights": lambda p: load_backbone("cornet_tiny", weights=p),
    }


@pytest.mark.parametrize("wrap", sorted(WRAPS))
@pytest.mark.parametrize("loader", ["load_aligned", "resume_checkpoint", "weights_file", "backbone_weights"])
def test_pickled_objects_in_weights_and_checkpoints_are_refused(tmp_path, loader, wrap):
    from brainalign.errors import CheckpointError

    marker = tmp_path / "code_ran"
    path = _malicious_torch_file(tmp_path / "file.pt", marker, WRAPS[wrap])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about the pickle protocol
        with pytest.raises(CheckpointError) as info:
            _loaders()[loader](path)
    msg = str(info.value)
    assert "file.pt" in msg and "\n" not in msg and "weights_only=False" not in msg, msg
    assert not marker.exists(), "loading the file ran code from it"


def test_pickled_objects_in_caches_are_never_executed(tmp_path):
    from brainalign.alignment.teacher import cached_teacher_targets
    from brainalign.io import load_arrays

    marker = tmp_path / "code_ran"
    teacher = _malicious_torch_file(tmp_path / "teacher_train.pt", marker,
                                    lambda p: {"format": "brainalign-teacher/1", "key": "k", "targets": p})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = cached_teacher_targets(teacher, "k", lambda: torch.arange(3))
    assert torch.equal(got, torch.arange(3))  # recomputed instead
    entry = tmp_path / "entry.npz"
    np.savez(entry, rdms=np.array([Payload(marker)], dtype=object), __sha256__=np.array("x"))
    with pytest.warns(UserWarning, match="entry.npz"):
        assert load_arrays(entry) is None
    assert not marker.exists()


def test_user_npy_is_read_without_pickle(tmp_path):
    from brainalign.data.user import from_folder
    from brainalign.errors import DataError
    from PIL import Image

    marker = tmp_path / "code_ran"
    (tmp_path / "imgs").mkdir()
    for i in range(2):
        Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / f"{i}.png")
    np.save(tmp_path / "resp.npy", np.array([Payload(marker), Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="resp.npy"):
        from_folder(tmp_path / "imgs", tmp_path / "resp.npy")
    assert not marker.exists()


def test_things_eeg2_unpickles_only_files_under_the_named_root(tmp_path, monkeypatch):
    """The one pickle-reading loader touches nothing outside the root it was given."""
    from brainalign.data import things_eeg2
    from brainalign.data.synthetic import SyntheticBrain

    root = tmp_path / "release"
    SyntheticBrain(n_train_concepts=2, n_test_concepts=2, train_images_per_concept=2, test_images_per_concept=2,
                   image_size=16, n_subjects=1, n_times=50, n_repetitions_train=2,
                   n_repetitions_test=2).write_things_eeg2(root)
    opened = []
    real_load = np.load

    def recording_load(file, *a, **k):
        if k.get("allow_pickle"):
            opened.append(Path(file).resolve())
        return real_load(file, *a, **k)

    monkeypatch.setattr(things_eeg2.np, "load", recording_load)
    monkeypatch.chdir(tmp_path)
    ds = things_eeg2.load_things_eeg2(root, 1, "test", image_size=16)
    assert len(ds) == 4 and opened
    assert all(p.is_relative_to(root.resolve()) for p in opened), opened
    # and the documentation says these files are trusted data
    assert "unpickled" in things_eeg2.load_things_eeg2.__doc__


def test_plugins_come_only_from_installed_entry_points(tmp_path, monkeypatch):
    """A plugin-looking module in the working directory or a data folder is never imported."""
    from brainalign import plugin_manager

    (tmp_path / "brainalign_evil.py").write_text("from pathlib import Path\nPath('code_ran').touch()\n")
    (tmp_path / "brainalign.toml").write_text("[plugins]\nevil = 'brainalign_evil'\n")
    monkeypatch.chdir(tmp_path)
    pm = plugin_manager.get_plugin_manager(refresh=True)
    try:
        import importlib.metadata as md

        registered = {name for name, _ in pm.list_name_plugin()}
        from_entry_points = {ep.name for d in md.distributions() for ep in d.entry_points if ep.group == "brainalign"}
        assert registered <= from_entry_points and "brainalign_evil" not in registered
        assert not (tmp_path / "code_ran").exists()
    finally:
        plugin_manager.get_plugin_manager(refresh=True)


def test_config_files_are_read_as_data(tmp_path):
    """Saved configs are JSON: a config holding code is only ever a string."""
    from brainalign.alignment import load_aligned, save_aligned
    from brainalign.alignment.head import EncoderHead

    head = EncoderHead({"0": (2,)}, n_targets=2, hidden=2)
    marker = tmp_path / "code_ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    config = {"backbone": code, "spec_name": None, "head": head.config(), "layers": ["0"], "preprocessing": code}
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    save_aligned(model, tmp_path / "a.pt", head=head, config=config)
    loaded = load_aligned(tmp_path / "a.pt", model=torch.nn.Sequential(torch.nn.Linear(2, 2)))
    assert loaded.config["backbone"] == code and loaded.config["preprocessing"] == code
    assert not marker.exists()
