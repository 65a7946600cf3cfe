"""Corruption: damaged checkpoints, saved models and caches are detected and reported, never used;
caches are keyed by content and settings, so a changed input or setting never serves a stale RDM."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from brainalign.alignment import load_aligned, save_aligned
from brainalign.alignment.head import EncoderHead
from brainalign.data.user import from_arrays
from brainalign.errors import CheckpointError
from brainalign import io as cache_mod
from brainalign.evaluate.eeg import decoding_settings, subject_decoding_rdms

from align_helpers import TinyNet


# --- saved aligned models ---------------------------------------------------------------------

def _saved(tmp_path, suffix):
    torch.manual_seed(0)
    model, head = TinyNet(), EncoderHead({"block1": (8, 8, 8)}, n_targets=5, hidden=4)
    config = {"format": "brainalign-align/1", "backbone": "TinyNet", "spec_name": None, "layers": ["block1"],
              "head": head.config(), "preprocessing": None}
    path = save_aligned(model, tmp_path / f"aligned{suffix}", head=head, config=config)
    return path, model


def _flip(raw: bytes, needle: bytes, delta: int = 0) -> bytes:
    at = raw.find(needle)
    assert at >= 0, "needle not found"
    out = bytearray(raw)
    out[at + delta] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_saved_model_round_trip_then_every_damage_is_refused(tmp_path, suffix):
    path, model = _saved(tmp_path, suffix)
    loaded = load_aligned(path, model=TinyNet(seed=5))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    raw = path.read_bytes()
    for cut in (0, 7, len(raw) // 2, len(raw) - 3):  # truncations
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="aligned"):
            load_aligned(path, model=TinyNet())
    # one flipped bit inside a weight tensor: the container parses, the sha256 does not match
    weight = model.fc.weight.detach().contiguous().numpy().tobytes()
    path.write_bytes(_flip(raw, weight, delta=5))
    with pytest.raises(CheckpointError, match="sha256"):
        load_aligned(path, model=TinyNet())


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_damaged_config_of_a_saved_model_is_refused(tmp_path, suffix):
    path, _ = _saved(tmp_path, suffix)
    raw = path.read_bytes()
    # the config is JSON text (escaped once more inside the safetensors header)
    needle = b'"layers": ["block1"]' if suffix == ".pt" else b'\\"layers\\": [\\"block1'
    o_of_block1 = needle.index(b"block1") + 2
    for delta in (0, o_of_block1):  # breaks the JSON / silently renames the layer to 'blnck1'
        path.write_bytes(_flip(raw, needle, delta))
        with pytest.raises(CheckpointError):
            load_aligned(path, model=TinyNet())


# --- the decoding-RDM cache -----------------------------------------------------------------------

def _eeg(seed=0, n=6):
    rng = np.random.default_rng(seed)
    reps = rng.standard_normal((n, 4, 3, 5)).astype(np.float32)
    reps += np.arange(n, dtype=np.float32)[:, None, None, None] * 0.5  # decodable images
    return from_arrays(torch.rand(n, 3, 8, 8), repetitions=reps, times=np.arange(5) / 100.0)


def _entries(cache_dir):
    return sorted((cache_dir / "decoding_rdms").glob("*.npz"))


def test_decoding_cache_hit_is_identical_and_keyed_by_content_and_settings(tmp_path):
    ds = _eeg()
    fresh, times, hit = subject_decoding_rdms(ds, cache_dir=tmp_path)
    assert not hit and len(_entries(tmp_path)) == 1
    again, times2, hit = subject_decoding_rdms(ds, cache_dir=tmp_path)
    assert hit and np.array_equal(fresh, again) and np.array_equal(times, times2)
    # a changed input (one value of one trial) and a changed setting each get their own entry
    changed = _eeg()
    changed.repetitions[0, 0, 0, 0] += 1.0
    changed_rdms, _, hit = subject_decoding_rdms(changed, cache_dir=tmp_path)
    assert not hit and len(_entries(tmp_path)) == 2
    assert np.array_equal(changed_rdms, subject_decoding_rdms(changed, cache_dir=None)[0])
    other = decoding_settings(4, seed=1)
    seeded, _, hit = subject_decoding_rdms(ds, cache_dir=tmp_path, settings=other)
    assert not hit and len(_entries(tmp_path)) == 3 and not np.array_equal(seeded, fresh)
    # other time stamps are another key too (they are stored with the RDMs)
    shifted = _eeg()
    shifted.times = shifted.times + 0.5
    assert not subject_decoding_rdms(shifted, cache_dir=tmp_path)[2]


@pytest.mark.parametrize("damage", ["truncate", "flip_payload", "garbage", "empty", "drop_hash"])
def test_damaged_decoding_cache_entry_is_reported_and_recomputed(tmp_path, damage):
    ds = _eeg()
    fresh = subject_decoding_rdms(ds, cache_dir=tmp_path)[0]
    entry, = _entries(tmp_path)
    raw = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip_payload":
        entry.write_bytes(_flip(raw, fresh.tobytes(order="A")[:16], delta=3))  # as np.save stores it
    elif damage == "garbage":
        entry.write_bytes(b"\x00" * len(raw))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # a valid .npz without the stored hash
        np.savez(entry.with_suffix(""), rdms=fresh, times=np.arange(5) / 100.0)
    with pytest.warns(UserWarning, match=str(entry.name)):
        rdms, _, hit = subject_decoding_rdms(ds, cache_dir=tmp_path)
    assert not hit and np.array_equal(rdms, fresh)
    with warnings.catch_warnings():  # the recomputed entry replaced the damaged one
        warnings.simplefilter("error")
        assert subject_decoding_rdms(ds, cache_dir=tmp_path)[2]


def test_cache_entry_under_the_wrong_key_is_not_served(tmp_path):
    a, b = _eeg(seed=0), _eeg(seed=1)
    rdms_a = subject_decoding_rdms(a, cache_dir=tmp_path)[0]
    before = set(_entries(tmp_path))
    rdms_b = subject_decoding_rdms(b, cache_dir=tmp_path)[0]
    entry_a, = before
    entry_b, = set(_entries(tmp_path)) - before
    shutil.copyfile(entry_a, entry_b)  # e.g. a cache folder restored or merged by hand
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served, _, _ = subject_decoding_rdms(b, cache_dir=tmp_path)
    assert not np.array_equal(rdms_a, rdms_b)
    assert np.array_equal(served, rdms_b)


def test_content_key_covers_shape_dtype_bytes_and_settings():
    x = np.arange(12, dtype=np.float32)
    keys = {cache_mod.content_key(x), cache_mod.content_key(x.reshape(3, 4)), cache_mod.content_key(x.astype(np.float64)),
            cache_mod.content_key(x + np.float32(1e-6)), cache_mod.content_key(x, settings={"seed": 1}),
            cache_mod.content_key(x, settings={"seed": 2})}
    assert len(keys) == 6
    assert cache_mod.content_key(x, settings={"a": 1, "b": 2}) == cache_mod.content_key(x.copy(), settings={"b": 2, "a": 1})


# --- the teacher-target cache of a run folder -------------------------------------------------------

def test_damaged_teacher_cache_is_not_used(tmp_path):
    from brainalign.alignment.teacher import cached_teacher_targets

    targets = torch.arange(200, dtype=torch.int64) % 7
    cache = tmp_path / "teacher_train.npz"
    calls = []

    def compute():
        calls.append(1)
        return targets.clone()

    assert torch.equal(cached_teacher_targets(cache, "key", compute), targets) and len(calls) == 1
    cache.write_bytes(_flip(cache.read_bytes(), targets[100:104].numpy().tobytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = cached_teacher_targets(cache, "key", compute)
    assert torch.equal(got, targets)  # recomputed (or refused), never the flipped labels


def test_truncated_teacher_cache_is_recomputed(tmp_path):
    from brainalign.alignment.teacher import cached_teacher_targets

    targets = torch.arange(50, dtype=torch.int64)
    cache = tmp_path / "teacher_train.npz"
    cached_teacher_targets(cache, "key", lambda: targets)
    cache.write_bytes(cache.read_bytes()[:100])
    assert torch.equal(cached_teacher_targets(cache, "key", lambda: targets + 0), targets)
    # another key (other data, weights or settings) never serves the stored targets
    assert torch.equal(cached_teacher_targets(cache, "other", lambda: targets * 2), targets * 2)
