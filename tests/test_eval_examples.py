"""The example scripts: reproduce_realnet's commands are valid brainalign command lines."""
from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

from brainalign.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reproduce_realnet_commands_parse(capsys, tmp_path):
    mod = _load("reproduce_realnet")
    code = mod.main(["--things", str(tmp_path / "things"), "--shen", str(tmp_path / "shen"), "--shen-images",
                     str(tmp_path / "img"), "--subjects", "1-3", "--out", str(tmp_path / "o"), "--dry-run"])
    assert code == 0
    text = capsys.readouterr().out
    cmds = [shlex.split(line[len("$ brainalign "):]) for line in text.splitlines() if line.startswith("$ brainalign ")]
    assert [c[0] for c in cmds] == ["align", "align", "compare", "compare", "variability", "robustness"]
    parser = build_parser()
    for c in cmds:
        args = parser.parse_args(c)  # every printed command is accepted by the real parser
        assert callable(args.func)
    align = parser.parse_args(cmds[0])
    assert (align.beta, align.epochs, align.lr, align.batch_size, align.seed) == ("100", 30, 2e-5, 16, 2023)
    assert "--unpaired" in cmds[1]
