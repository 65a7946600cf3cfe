"""brainalign.io: atomic writes, output-path errors, run locks; brainalign.progress in log files."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from brainalign import io as bio
from brainalign.errors import OutputError, OutputExistsError, RunLockedError
from brainalign.progress import Stages, progress


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = bio.atomic_write_text(tmp_path / "a.txt", "old")

    def failing(fh):
        fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="disk is full.*--out"):
        bio.atomic_write(path, failing, option="--out")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_torch_disk_full_runtime_error_becomes_output_error(tmp_path, monkeypatch):
    import torch

    def full(obj, fh, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OutputError, match="disk may be full"):
        bio.atomic_torch_save({"x": 1}, tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("err,match", [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only"),
                                       (errno.ENOENT, "does not exist")])
def test_output_errors_name_path_reason_and_option(tmp_path, err, match):
    with pytest.raises(OutputError, match=f"cannot write .*x.*{match}.*--cache-dir"):
        with bio.output_errors(tmp_path / "x", "--cache-dir"):
            raise OSError(err, os.strerror(err), str(tmp_path / "x"))


def test_ensure_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=r"f is a file.*--image-cache"):
        bio.ensure_dir(tmp_path / "f" / "sub", "--image-cache")
    with pytest.raises(OutputExistsError, match="is a file"):
        bio.prepare_output_dir(tmp_path / "f")


def test_json_sanitises_numpy_nan_and_dataclasses(tmp_path):
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class C:
        a: float = float("nan")
        b: tuple = (1, 2)

    p = bio.write_json(tmp_path / "r.json", {"x": np.float32(0.5), "c": C(), "arr": np.arange(2)})
    assert json.loads(p.read_text()) == {"x": 0.5, "c": {"a": None, "b": [1, 2]}, "arr": [0, 1]}


def test_run_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    run = tmp_path / "run"
    with bio.RunLock(run):
        with pytest.raises(RunLockedError, match=rf"{run}.*in use by process {os.getpid()}"):
            bio.RunLock(run).acquire()
    assert not (run / bio.LOCK_NAME).exists()  # released
    # a lock left by a process that died: taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (run / bio.LOCK_NAME).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    with bio.RunLock(run) as lock:
        assert lock.held and json.loads((run / bio.LOCK_NAME).read_text())["pid"] == os.getpid()


def test_progress_prints_one_line_per_loop_when_not_a_terminal(capsys, monkeypatch):
    import brainalign.progress as bp

    monkeypatch.setenv("BRAINALIGN_PROGRESS", "lines")
    bar = progress(range(100), desc="epoch 1/3", total=100)
    items = []
    for i in bar:
        items.append(i)
        bar.set_postfix({"task": "1.000"}, mse=0.5)  # tqdm's forms: a mapping and keywords
    assert items == list(range(100))
    err = capsys.readouterr().err
    assert "\r" not in err and err.splitlines() == [err.splitlines()[0]]  # a fast loop: one line
    assert err.startswith("epoch 1/3: 100/100 (100 %)") and err.rstrip().endswith("task=1.000 mse=0.5")
    monkeypatch.setattr(bp, "LINE_EVERY_SECONDS", 0.0)  # a loop slower than the interval: a line per interval
    list(progress(range(3), desc="slow", total=3))
    assert [ln.split(" ")[1] for ln in capsys.readouterr().err.splitlines()] == ["1/3", "2/3", "3/3"]


def test_stages_record_and_log_wall_times():
    lines = []
    st = Stages(lines.append)
    with st("load"):
        pass
    with st("rsa"):
        pass
    assert list(st.times) == ["load", "rsa"] and all(v >= 0 for v in st.times.values())
    assert lines[0].strip().startswith("[time] load:")
