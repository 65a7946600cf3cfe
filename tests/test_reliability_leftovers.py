"""Issue 13 classes 1 and 5: a failed command leaves nothing behind (no new folder, no temporary
or half-written file), a full disk while writing a checkpoint is one line, and a write the disk
cannot hold is refused before it starts (through the CLI and the API)."""
from __future__ import annotations

import errno
import shutil
from collections import namedtuple

import numpy as np
import pytest

from brainalign import io as bio
from brainalign.cli import main
from brainalign.errors import OutputError

Usage = namedtuple("Usage", "total used free")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_new_empty_folders_are_removed_on_failure_and_kept_otherwise(tmp_path):
    old = tmp_path / "old"
    (old / "empty_before").mkdir(parents=True)
    with pytest.raises(ValueError):
        with bio.new_folders_removed_on_failure(old, tmp_path / "new" / "deep" / "out", None):
            (old / "made" / "inner").mkdir(parents=True)
            (old / "kept").mkdir()
            (old / "kept" / "checkpoint.pt").write_bytes(b"x")  # a file to resume from stays
            (tmp_path / "new" / "deep" / "out" / "sub").mkdir(parents=True)
            raise ValueError("a later step failed")
    assert sorted(p.name for p in old.iterdir()) == ["empty_before", "kept"]
    assert not (tmp_path / "new").exists()  # the missing parents it made are gone too
    with bio.new_folders_removed_on_failure(tmp_path / "ok"):
        (tmp_path / "ok").mkdir()
    assert (tmp_path / "ok").is_dir()  # success keeps everything


@pytest.mark.parametrize("argv,needle", [
    (["variability", "cornet_tiny", "cornet_tiny", "--images", "{two}"], "at least 3 images"),
    (["compare", "cornet_tiny", "--cache-dir", "{file}"], "--cache-dir"),
])
def test_cli_failure_after_the_output_folder_was_made_leaves_no_folder(tmp_path, capsys, argv, needle):
    from PIL import Image

    two = tmp_path / "two"
    two.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(two / f"{i}.png")
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "results" / "run"
    argv = [a.format(two=two, file=tmp_path / "file") for a in argv]
    assert main([*argv, "--no-pretrained", "--no-progress", "--out", str(out)]) == 2
    assert needle in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "results").exists()


def test_cli_default_results_folder_is_not_left_by_a_failure(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    assert main(["compare", "cornet_tiny", "--no-pretrained", "--no-progress", "--cache-dir", "file"]) == 2
    assert "--cache-dir" in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


ALIGN = ["align", "cornet_tiny", "--no-pretrained", "--epochs", "1", "--batch-size", "8", "--head-pooling", "avg",
         "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("failure", ["oserror", "torch"])
def test_disk_full_while_writing_a_checkpoint_is_one_line_and_leaves_nothing_unreadable(
        tmp_path, capsys, monkeypatch, tiny_source, failure):
    import torch

    from brainalign.alignment import checkpoint as ckmod

    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        if "checkpoint" in str(getattr(f, "name", f)):
            f.write(b"partial")
            if failure == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device")
            raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ckmod.torch, "save", full_disk)
    out = tmp_path / "runs"
    assert main([*ALIGN, "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "checkpoint.pt" in line and "disk" in line and "full" in line
    run = out / "sub-01_beta-100"
    leftovers = [p.name for p in run.iterdir()]
    assert not any(n.endswith(".tmp") or n in ("checkpoint.pt", "aligned.pt") for n in leftovers), leftovers
    assert not (out / ".brainalign.lock").exists() and not (run / ".brainalign.lock").exists()
    monkeypatch.setattr(ckmod.torch, "save", real_save)  # space freed: the same command now completes
    assert main([*ALIGN, "--out", str(out)]) == 0
    assert (run / "aligned.pt").is_file()


def test_synth_refuses_a_write_larger_than_the_free_disk_space(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 10**5, 10**5))
    argv = ["synth", "--subjects", "50", "--concepts", "2", "--test-concepts", "2", "--images-per-concept", "1",
            "--test-images-per-concept", "1", "--image-size", "16", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert "50 subjects" in line and "GB of disk space" in line and "fewer subjects" in line
    assert not (tmp_path / "s").exists()
    monkeypatch.setattr(bio, "ensure_dir", lambda p, o=None: (_ for _ in ()).throw(
        OutputError(f"cannot write {p}: the file system is read-only; choose a writable folder with {o}")))
    assert main(argv) == 2  # a read-only location is named as such, not as a lack of space
    assert "read-only" in _one_line(capsys.readouterr().err)


def test_free_space_check_reads_the_nearest_existing_folder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(shutil, "disk_usage", lambda p: seen.append(p) or Usage(100, 90, 10))
    bio.check_free_space(tmp_path / "a" / "b", 10, "x", "y")  # exactly fits
    with pytest.raises(OutputError, match="x needs about .* GB of disk space, but .* GB free: use less, or choose "
                                          "a folder on a larger disk with --out"):
        bio.check_free_space(tmp_path / "a" / "b", 11, "x", "use less", option="--out")
    assert seen[-1] == tmp_path.absolute()


def test_api_entry_points_leave_no_folder_when_they_fail(tmp_path, monkeypatch):
    """The same guarantee through the API: run_compare, run_variability, run_grid, align."""
    from brainalign.alignment import align, run_grid
    from brainalign.errors import BrainAlignError
    from brainalign.evaluate.compare import run_compare
    from brainalign.evaluate.variability import run_variability

    from align_helpers import TinyNet, tiny_dataset

    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cache"):
        run_compare(["cornet_tiny"], pretrained=False, cache_dir=tmp_path / "file", out=tmp_path / "a" / "cmp",
                    progress=False, log=lambda *a: None)
    with pytest.raises(OutputError, match="cache"):  # the default results folder is not left either
        run_compare(["cornet_tiny"], pretrained=False, cache_dir=tmp_path / "file", progress=False,
                    log=lambda *a: None)
    from PIL import Image

    (tmp_path / "two").mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(tmp_path / "two" / f"{i}.png")
    with pytest.raises(BrainAlignError, match="at least 3 images"):
        run_variability(["cornet_tiny", "cornet_tiny"], images=str(tmp_path / "two"), pretrained=False,
                        out=tmp_path / "var", progress=False, log=lambda *a: None)
    with pytest.raises(BrainAlignError, match="lr must be > 0"):
        run_grid(TinyNet(), [1], [10], out=tmp_path / "grid", source={1: tiny_dataset()}, lr=-1.0, epochs=1, layers=["block1"],
                 device="cpu", progress=False, log=lambda *a: None)
    with pytest.raises(BrainAlignError, match="nope"):
        align(TinyNet(), eeg=tiny_dataset(), layers=["nope"], epochs=1, device="cpu", progress=False,
              out_dir=tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "two"]


def test_full_disk_while_saving_a_figure_leaves_no_truncated_image(tmp_path, monkeypatch):
    import matplotlib.figure

    from brainalign.evaluate import figures

    def full(self, fh, *a, **k):
        fh.write(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")  # as PIL's close() raises it: no file name

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    plt = figures._plt()
    with pytest.raises(OutputError, match=r"cannot write .*fig\.png: the disk is full"):
        figures._save(plt.figure(), tmp_path / "out" / "fig.png")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_cli_os_error_without_a_file_name_names_the_output_folder(tmp_path, capsys, monkeypatch):
    import brainalign.cli.export as export

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "run", full)
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "shared")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (f"brainalign: error: cannot write under {tmp_path / 'shared'}: the disk is full; free some "
                    "space or choose a folder on another disk")


def test_a_full_disk_inside_a_folder_being_made_names_the_folder_not_its_temporary_twin(tmp_path):
    def full(fh):
        fh.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError) as info:
        with bio.atomic_directory(tmp_path / "export", option="OUT_DIR") as tmp:
            bio.atomic_write(tmp / "model.safetensors", full)
    assert str(info.value).startswith(f"cannot write {tmp_path / 'export' / 'model.safetensors'}: the disk is full")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_on_a_read_only_file_system_is_called_read_only(tmp_path, monkeypatch):
    import os

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly())
    with pytest.raises(OutputError, match="the file system is read-only; choose a writable folder with --out"):
        bio.ensure_dir(tmp_path, "--out")
    monkeypatch.setattr(os, "statvfs", lambda p: type("RW", (), {"f_flag": 0})())
    with pytest.raises(OutputError, match="permission denied; choose a folder you can write to with --out"):
        bio.ensure_dir(tmp_path, "--out")


def test_an_output_path_through_a_link_to_a_missing_mount_is_one_line(tmp_path, capsys):
    import os

    os.symlink(tmp_path / "unplugged_drive", tmp_path / "mnt")
    assert main(["compare", "cornet_tiny", "--no-pretrained", "--no-progress", "--out", str(tmp_path / "mnt" / "o")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'mnt'} links to {tmp_path / 'unplugged_drive'}, which does not exist" in line
    assert "--out" in line and sorted(p.name for p in tmp_path.iterdir()) == ["mnt"]
