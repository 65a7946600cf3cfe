"""Decoded-image cache: same pixels as decoding, reuse, staleness, corruption, concurrent
builders, bad cache folders, a full disk, 16-bit images."""
from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import brainalign.data.images as images_mod
from brainalign.data import image_cache
from brainalign.data.images import ImageSet, decode_image
from brainalign.errors import OutputError
from test_cli_robustness import image_folder  # noqa: F401  (fixture: 2 class folders x 3 PNGs)

SIZE = 16


def _write_images(folder, n=6, seed=0, ext="jpg"):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"im{i}.{ext}"
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _entries(root):
    return sorted(d for d in root.iterdir() if d.is_dir()) if root.exists() else []


@pytest.fixture
def counted_decode(monkeypatch):
    """Counts decode_image calls (ImageSets built after this fixture use the counter)."""
    calls = []

    def decode(path, size):
        calls.append(path)
        return decode_image(path, size)

    monkeypatch.setattr(images_mod, "decode_image", decode)
    return calls


def test_cached_pixels_equal_decoding_and_subsets_share_one_entry(tmp_path, counted_decode):
    paths = _write_images(tmp_path / "imgs")
    root = tmp_path / "cache"
    s = ImageSet.from_paths(paths, size=SIZE, cache=root)
    want = np.stack([decode_image(p, SIZE) for p in paths])
    got = s.load_uint8([3, 0, 5]).numpy()
    np.testing.assert_array_equal(got, want[[3, 0, 5]])
    torch.testing.assert_close(s.load([1, 2]), torch.from_numpy(want[[1, 2]]).float() / 255, rtol=0, atol=0)
    sub = s.subset([4, 1])
    np.testing.assert_array_equal(sub.load_uint8().numpy(), want[[4, 1]])
    np.testing.assert_array_equal(sub.subset([1]).load_uint8().numpy(), want[[1]])
    assert len(_entries(root)) == 1 and len(counted_decode) == len(paths)  # decoded once, at build
    # another ImageSet (another process, run or subject) reuses the entry without decoding
    again = ImageSet.from_paths(paths, size=SIZE, cache=root)
    np.testing.assert_array_equal(again.load_uint8().numpy(), want)
    assert len(counted_decode) == len(paths)
    assert (root / _entries(root)[0].name / "meta.json").is_file()


def test_subset_taken_before_the_first_load_decodes_only_its_images(tmp_path, counted_decode):
    paths = _write_images(tmp_path / "imgs", n=6)
    root = tmp_path / "cache"
    few = ImageSet.from_paths(paths, size=SIZE, cache=root).subset([4, 1])  # e.g. --max-images
    np.testing.assert_array_equal(few.load_uint8().numpy(), np.stack([decode_image(paths[i], SIZE) for i in (4, 1)]))
    assert len(counted_decode) == 2 and len(_entries(root)) == 1
    assert json.loads((_entries(root)[0] / "meta.json").read_text())["n_images"] == 2


def test_uncached_and_native_size_sets_decode_every_time(tmp_path, counted_decode):
    paths = _write_images(tmp_path / "imgs", n=3)
    off = ImageSet.from_paths(paths, size=SIZE, cache=False)
    off.load([0, 1]), off.load([0])
    assert len(counted_decode) == 3
    with image_cache.use_image_cache(False):
        ImageSet.from_paths(paths, size=SIZE).load([2])
    assert len(counted_decode) == 4
    native = ImageSet.from_paths(paths[:1], size=None, cache=tmp_path / "c")
    assert native.load([0]).shape == (1, 3, 20, 24) and not (tmp_path / "c").exists()


def test_stale_files_and_other_sizes_never_served(tmp_path):
    paths = _write_images(tmp_path / "imgs", n=3)
    root = tmp_path / "cache"
    first = ImageSet.from_paths(paths, size=SIZE, cache=root).load_uint8().numpy()
    other = ImageSet.from_paths(paths, size=SIZE + 2, cache=root).load_uint8()
    assert other.shape[-1] == SIZE + 2 and len(_entries(root)) == 2
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(paths[1])  # the file changes
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fresh = ImageSet.from_paths(paths, size=SIZE, cache=root).load_uint8().numpy()
    assert fresh[1].max() == 0 and not np.array_equal(fresh[1], first[1])
    np.testing.assert_array_equal(fresh[0], first[0])


def _only_entry(root):
    (entry,) = _entries(root)
    return entry / "images.npy"


@pytest.mark.parametrize("damage", ["truncate", "flip_sampled_keep_mtime", "flip_unsampled", "meta_garbage",
                                    "meta_missing"])
def test_damaged_entry_is_detected_and_rebuilt(tmp_path, damage, counted_decode, monkeypatch):
    monkeypatch.setattr(image_cache, "_BLOCK", 8)  # small sampled blocks, so a byte can fall between them
    paths = _write_images(tmp_path / "imgs", n=5)
    root = tmp_path / "cache"
    want = ImageSet.from_paths(paths, size=SIZE, cache=root).load_uint8().numpy()
    data = _only_entry(root)
    meta = data.parent / "meta.json"
    st = data.stat()
    raw = bytearray(data.read_bytes())
    if damage == "truncate":
        data.write_bytes(raw[:-100])
    elif damage == "flip_sampled_keep_mtime":  # the last block is always sampled
        raw[-5] ^= 0xFF
        data.write_bytes(raw)
        os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif damage == "flip_unsampled":  # between sampled blocks: the changed mtime forces a full check
        header_len = len(raw) - int(np.prod((5, 3, SIZE, SIZE)))
        step = (len(raw) - header_len) // image_cache._SAMPLE_BLOCKS
        raw[header_len + 10 * step + step // 2] ^= 0xFF
        data.write_bytes(raw)
        os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif damage == "meta_garbage":
        meta.write_text("{not json")
    else:
        meta.unlink()
    n_before = len(counted_decode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ImageSet.from_paths(paths, size=SIZE, cache=root).load_uint8().numpy()
    np.testing.assert_array_equal(got, want)
    assert len(counted_decode) == n_before + len(paths)  # rebuilt, not used
    if damage != "meta_missing":  # an unfinished build is silently redone
        assert any("rebuilding" in str(w.message) for w in caught)
    assert image_cache.open_cached(data.parent, data.parent.name, want.shape) is not None


def test_cache_folder_that_is_a_file_or_read_only_is_one_line_error(tmp_path):
    paths = _write_images(tmp_path / "imgs", n=2)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="--image-cache") as ei:
        ImageSet.from_paths(paths, size=SIZE, cache=blocker).load([0])
    assert "\n" not in str(ei.value)
    with pytest.raises(OutputError, match="--image-cache"):
        with image_cache.use_image_cache(blocker / "sub"):
            pass
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="--image-cache"):
                ImageSet.from_paths(paths, size=SIZE, cache=ro).load([0])
        finally:
            ro.chmod(0o700)


def test_unusable_default_folder_warns_and_decodes(tmp_path, monkeypatch):
    paths = _write_images(tmp_path / "imgs", n=2)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    monkeypatch.setenv("BRAINALIGN_IMAGE_CACHE", "")
    monkeypatch.setenv("BRAINALIGN_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="--no-image-cache"):
        x = ImageSet.from_paths(paths, size=SIZE).load([1])
    np.testing.assert_array_equal((x[0] * 255).round().byte().numpy(), decode_image(paths[1], SIZE))


def test_disk_full_is_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    paths = _write_images(tmp_path / "imgs", n=3)
    root = tmp_path / "cache"

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OutputError, match="disk is full.*--image-cache"):
        ImageSet.from_paths(paths, size=SIZE, cache=root).load([0])
    leftovers = [p.name for p in root.rglob("*") if p.is_file()]
    assert leftovers == []  # no half-written array, no metadata, lock released


def test_partial_file_of_a_killed_builder_is_removed_by_the_next_build(tmp_path):
    paths = _write_images(tmp_path / "imgs", n=2)
    root = tmp_path / "cache"
    entry = root / image_cache.cache_key(paths, SIZE)
    entry.mkdir(parents=True)
    (entry / ".images.npy.abc123.tmp").write_bytes(b"\0" * 1000)  # SIGKILL mid-build leaves this
    (entry / ".brainalign.lock").write_text('{"pid": 999999999, "host": "%s"}' % __import__("socket").gethostname())
    ImageSet.from_paths(paths, size=SIZE, cache=root).load([0])  # dead owner's lock taken over
    assert sorted(p.name for p in entry.iterdir()) == ["images.npy", "meta.json"]


def _build_in_child(paths, root, queue):
    import time

    import brainalign.data.images as im

    real = im.decode_image
    n = []

    def slow(path, size):
        n.append(1)
        time.sleep(0.05)
        return real(path, size)

    im.decode_image = slow
    arr = im.ImageSet.from_paths(paths, size=SIZE, cache=root).load_uint8().numpy()
    queue.put((len(n), arr.tobytes()))


def test_two_processes_one_builds_the_other_waits_and_reads(tmp_path):
    paths = _write_images(tmp_path / "imgs", n=8)
    root = tmp_path / "cache"
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(paths, root, q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    want = np.stack([decode_image(p, SIZE) for p in paths]).tobytes()
    assert all(r[1] == want for r in results)
    assert sorted(r[0] for r in results) == [0, len(paths)]  # one decoded, the other only read
    assert len(_entries(root)) == 1 and not list(root.rglob(".brainalign.lock"))


def test_to_device_and_pickle_give_the_same_images(tmp_path):
    import pickle

    paths = _write_images(tmp_path / "imgs", n=4)
    s = ImageSet.from_paths(paths, size=SIZE, cache=tmp_path / "cache")
    ref = s.load()
    resident = s.to_device("cpu")
    assert resident._resident.dtype == torch.uint8
    torch.testing.assert_close(resident.load([2, 0]), ref[[2, 0]], rtol=0, atol=0)
    torch.testing.assert_close(resident.subset([3, 1]).load(), ref[[3, 1]], rtol=0, atol=0)
    assert resident.fingerprint() == s.fingerprint()
    torch.testing.assert_close(pickle.loads(pickle.dumps(s.subset([1, 2]))).load(), ref[[1, 2]], rtol=0, atol=0)
    batches = list(s.batches([np.array([0, 1]), np.array([3])]))
    torch.testing.assert_close(batches[1][1], ref[[3]], rtol=0, atol=0)
    t = ImageSet.from_array(ref)
    torch.testing.assert_close(t.to_device("cpu").load([1]), ref[[1]], rtol=0, atol=0)
    np.testing.assert_array_equal(t.load_uint8([0]).numpy(), s.load_uint8([0]).numpy())


@pytest.mark.parametrize("mode,ext", [("I;16", "png"), ("I;16B", "tif"), ("I;16", "tif")])
def test_16bit_images_are_scaled_not_clipped(tmp_path, mode, ext):
    rng = np.random.default_rng(1)
    gray8 = rng.integers(0, 256, (24, 20), dtype=np.uint8)
    a16 = gray8.astype(np.uint16) * 257
    raw = a16.astype(">u2" if mode.endswith("B") else "<u2").tobytes()
    im = Image.frombuffer(mode, (20, 24), raw, "raw", mode, 0, 1)
    p16, p8 = tmp_path / f"g16.{ext}", tmp_path / "g8.png"
    im.save(p16)
    Image.fromarray(gray8).save(p8)
    assert Image.open(p16).mode.startswith("I")
    x16 = ImageSet.from_paths([p16], size=None, cache=False).load()
    x8 = ImageSet.from_paths([p8], size=None, cache=False).load()
    assert float((x16 - x8).abs().max()) < 1 / 255 + 1e-6
    assert float(x16.max()) < 1.0 or float(x8.max()) == 1.0  # not all white
    # and through the cache at a size, like the 8-bit original
    y16 = ImageSet.from_paths([p16], size=SIZE, cache=tmp_path / "c").load()
    y8 = ImageSet.from_paths([p8], size=SIZE, cache=tmp_path / "c").load()
    assert float((y16 - y8).abs().max()) < 1 / 255 + 1e-6


def test_cli_image_cache_options(image_folder, tmp_path, capsys):
    from brainalign.cli import main

    images = image_folder
    base = ["robustness", "cornet_tiny", "--no-pretrained", "--images", str(images), "--eps", "0", "--no-progress"]
    cache = tmp_path / "icache"
    assert main([*base, "--image-cache", str(cache), "--out", str(tmp_path / "a")]) == 0
    assert len(_entries(cache)) == 1 and (_entries(cache)[0] / "meta.json").is_file()
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
    assert main([*base, "--image-cache", str(cache), "--out", str(tmp_path / "b")]) == 0
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before  # reused, not rebuilt
    off = tmp_path / "unused"
    assert main([*base, "--no-image-cache", "--out", str(tmp_path / "c")]) == 0
    assert not off.exists()
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    capsys.readouterr()
    assert main([*base, "--image-cache", str(blocker), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "--image-cache" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_features_and_align_read_through_the_cache(tmp_path, counted_decode):
    from brainalign import align, extract_features, load_backbone

    paths = _write_images(tmp_path / "imgs", n=6, ext="png")
    model = load_backbone("cornet_tiny", pretrained=False)
    imgs = ImageSet.from_paths(paths, size=32, cache=False)
    cache = tmp_path / "c"
    ref = extract_features(model, imgs, ["V1"], pooling="avg", progress=False, batch_size=4)
    n0 = len(counted_decode)
    got = extract_features(model, imgs, ["V1"], pooling="avg", progress=False, batch_size=4, image_cache=cache)
    np.testing.assert_allclose(got[list(got)[0]], ref[list(ref)[0]], rtol=1e-5, atol=1e-6)
    assert len(counted_decode) == n0 + len(paths) and len(_entries(cache)) == 1
    responses = np.random.default_rng(0).normal(size=(len(paths), 5))
    align(model, ["V1"], data=(imgs, responses), epochs=2, batch_size=3, val_fraction=0, progress=False,
          image_cache=cache, device="cpu")
    assert len(counted_decode) == n0 + len(paths)  # 2 epochs + teacher targets: no decoding at all


def test_align_with_images_on_device_gives_identical_results(tmp_path):
    from brainalign import align, load_backbone

    paths = _write_images(tmp_path / "imgs", n=6, ext="png")
    imgs = ImageSet.from_paths(paths, size=32, cache=tmp_path / "c")
    responses = np.random.default_rng(0).normal(size=(len(paths), 5))
    model = load_backbone("cornet_tiny", pretrained=False)
    kw = dict(epochs=1, batch_size=3, val_fraction=0, progress=False, device="cpu", seed=1)
    a = align(model, ["V1"], data=(imgs, responses), **kw)
    b = align(model, ["V1"], data=(imgs, responses), images_on_device=True, **kw)
    assert a.history[0]["total"] == b.history[0]["total"]
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k


def test_build_image_cache_builds_now_and_returns_a_cached_set(tmp_path, counted_decode):
    paths = _write_images(tmp_path / "imgs", n=3)
    built = image_cache.build_image_cache(ImageSet.from_paths(paths, size=None), size=SIZE, folder=tmp_path / "c",
                                          progress=False)
    assert len(counted_decode) == 3 and len(_entries(tmp_path / "c")) == 1
    np.testing.assert_array_equal(built.subset([2]).load_uint8().numpy()[0], decode_image(paths[2], SIZE))
    assert len(counted_decode) == 3
    with pytest.raises(Exception, match="image files"):
        image_cache.build_image_cache(ImageSet.from_array(np.zeros((1, 3, 4, 4), np.float32)))


def test_48bit_rgb_png_decodes_like_its_8bit_original(tmp_path):
    """PIL opens 16-bit-per-channel RGB PNGs as 8-bit RGB; the result matches the original."""
    import struct
    import zlib

    rng = np.random.default_rng(2)
    a8 = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    rows = b"".join(b"\x00" + (a8[y].astype(np.uint16) * 257).astype(">u2").tobytes() for y in range(12))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    p = tmp_path / "rgb48.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 10, 12, 16, 2, 0, 0, 0))
                  + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    got = decode_image(p, None)
    assert int(np.abs(got.transpose(1, 2, 0).astype(int) - a8).max()) <= 1


def test_evaluation_api_takes_image_cache(image_folder, tmp_path):
    import inspect

    from brainalign.evaluate.compare import run_compare
    from brainalign.evaluate.robustness_run import run_robustness
    from brainalign.evaluate.variability import run_variability

    for fn in (run_compare, run_robustness, run_variability):
        assert inspect.signature(fn).parameters["image_cache"].default is None
    cache = tmp_path / "vc"
    run_variability(["cornet_tiny", "cornet_tiny"], images=str(image_folder), pretrained=False, progress=False,
                    out=tmp_path / "o", image_cache=cache, log=lambda *a: None)
    assert len(_entries(cache)) == 1
