"""Full-scale rehearsal of the paper's experiment on this machine, measured stage by stage.

Writes (or reuses) a THINGS-EEG2-sized dataset in the real release layout, then times each
stage in its own process and reports its wall time and peak RSS (``os.wait4``'s ru_maxrss of
that process alone):

  load       load_things_eeg2 per subject (training + test split, z-scored)
  decode     decoding JPEGs at the backbone's size (the baseline of the cache)
  cache      building the decoded-image cache of every training image, then reading it back
  teacher    teacher targets of CORnet-S, per 1,000 images (the cache feeds the pass)
  align      align() steps of CORnet-S at 224 px on cached images (time per image)
  compare    ``brainalign compare cornet resnet101 clip`` on the test split of N subjects

and projects the paper's grid (10 subjects x beta 1/10/100/1000 = 40 runs x 30 epochs x
16,540 images) on this CPU and, when ``benchmarks/gpu_check.json`` (written by
``gpu_check.sh`` on a CUDA machine) is present, on that GPU.

    python benchmarks/paper_scale.py --quick              # small sizes: minutes on 2 cores
    python benchmarks/paper_scale.py --root /scratch/ps   # the full sizes (16,540 images at 500 px)

Weights are random (``--no-pretrained``): speed and memory do not depend on them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS = ["Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6",
            "P2"]
TIMES = np.round(-0.2 + np.arange(100) / 100.0, 2)  # -0.2 .. 0.79 s at 100 Hz, as released
PAPER_GRID = dict(runs=40, epochs=30, train_images=16540, batch_size=16)
STAGES = ("load", "decode", "cache", "teacher", "align", "compare")


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=None, help="dataset folder (default: a temporary folder)")
    p.add_argument("--train-images", type=int, default=16540)
    p.add_argument("--concepts", type=int, default=1654)
    p.add_argument("--test-images", type=int, default=200)
    p.add_argument("--train-reps", type=int, default=4)
    p.add_argument("--test-reps", type=int, default=80)
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--image-px", type=int, default=500, help="side of the written JPEGs (release: 500)")
    p.add_argument("--decode-images", type=int, default=1000, help="JPEGs decoded for the baseline rate")
    p.add_argument("--teacher-images", type=int, default=500)
    p.add_argument("--align-images", type=int, default=64, help="training images of the timed align() epoch")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--quick", action="store_true",
                   help="small sizes (1,000 training images in 100 concepts at 128 px, 2 subjects, 8 test reps)")
    p.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # internal: run one stage in this process
    a = p.parse_args(argv)
    if a.quick:
        a.train_images, a.concepts, a.image_px, a.subjects = 1000, 100, 128, 2
        a.test_reps, a.decode_images, a.teacher_images, a.align_images = 8, 300, 128, 32
    return a


# --- the dataset, in the release layout --------------------------------------------------------
def write_dataset(a) -> None:
    """THINGS-EEG2 layout: image_set/{training,test}_images/<concept>/<name>.jpg + image_metadata.npy,
    preprocessed_data/sub-XX/preprocessed_eeg_{training,test}.npy (pickled dicts, float32)."""
    from PIL import Image

    marker = a.root / "paper_scale_dataset.json"
    wanted = {k: getattr(a, k) for k in ("train_images", "concepts", "test_images", "train_reps", "test_reps",
                                          "subjects", "image_px")}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        print(f"reusing the dataset in {a.root}")
        return
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    meta = {}
    per_train = max(1, a.train_images // a.concepts)
    for split, short, n, per in (("training_images", "train", a.train_images, per_train),
                                 ("test_images", "test", a.test_images, 1)):
        files, concepts = [], []
        for i in range(n):
            concept = f"{i // per + 1:05d}_thing{i // per}"
            name = f"thing{i // per}_{i % per + 1:02d}{'b' if short == 'train' else 's'}.jpg"
            path = a.root / "image_set" / split / concept / name
            path.parent.mkdir(parents=True, exist_ok=True)
            # smooth random images compress like photographs (noise would not)
            small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
            small.resize((a.image_px, a.image_px), Image.BICUBIC).save(path, quality=90)
            files.append(name)
            concepts.append(concept)
        meta[f"{short}_img_files"], meta[f"{short}_img_concepts"] = files, concepts
    np.save(a.root / "image_set" / "image_metadata.npy", meta, allow_pickle=True)
    for sub in range(1, a.subjects + 1):
        d = a.root / "preprocessed_data" / f"sub-{sub:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for split, n, reps in (("training", a.train_images, a.train_reps), ("test", a.test_images, a.test_reps)):
            eeg = rng.standard_normal((n, reps, len(CHANNELS), len(TIMES)), dtype=np.float32)
            np.save(d / f"preprocessed_eeg_{split}.npy",
                    {"preprocessed_eeg_data": eeg, "ch_names": CHANNELS, "times": TIMES}, allow_pickle=True)
            del eeg
    marker.write_text(json.dumps(wanted))
    print(f"wrote the dataset to {a.root} in {time.perf_counter() - t0:.0f} s")


def _training_images(a):
    from brainalign.data.things_eeg2 import load_things_eeg2

    return load_things_eeg2(a.root, 1, "training").images


# --- stages (each runs in its own process; returns figures) ------------------------------------
def stage_load(a) -> dict:
    from brainalign.data.things_eeg2 import load_things_eeg2

    per_subject = []
    for sub in range(1, a.subjects + 1):
        t0 = time.perf_counter()
        for split in ("training", "test"):
            load_things_eeg2(a.root, sub, split)
        per_subject.append(time.perf_counter() - t0)
    return {"s_per_subject": float(np.mean(per_subject))}


def stage_decode(a) -> dict:
    from brainalign.data.images import ImageSet

    images = _training_images(a)
    n = min(a.decode_images, len(images))
    paths = ImageSet(images.paths[:n], size=224, cache=False)  # decoding itself, not a cache build
    t0 = time.perf_counter()
    for start in range(0, n, 64):
        paths.load(list(range(start, min(n, start + 64))))
    return {"images": n, "images_per_s": n / (time.perf_counter() - t0)}


def stage_cache(a) -> dict:
    from brainalign.data.image_cache import build_image_cache

    images = _training_images(a)
    folder = a.root / "image-cache"
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    cached = build_image_cache(images, size=224, folder=folder)
    build_s = time.perf_counter() - t0
    n = len(cached)
    t0 = time.perf_counter()
    for start in range(0, n, 64):
        cached.load_uint8(list(range(start, min(n, start + 64))))
    read_s = time.perf_counter() - t0
    return {"images": n, "build_images_per_s": n / build_s, "build_s": build_s, "read_images_per_s": n / read_s}


def stage_teacher(a) -> dict:
    import torch

    from brainalign.alignment.teacher import compute_teacher_targets
    from brainalign.data.image_cache import build_image_cache
    from brainalign.models.registry import load_backbone, spec_of

    torch.manual_seed(0)
    model = load_backbone("cornet", pretrained=False, device="cpu")
    images = build_image_cache(_training_images(a), size=224, folder=a.root / "image-cache")
    subset = images.subset(list(range(min(a.teacher_images, len(images)))))
    t0 = time.perf_counter()
    compute_teacher_targets(model, subset, "ce", preprocessing=spec_of(model).preprocessing,
                            device=torch.device("cpu"))
    return {"images": len(subset), "s_per_1000_images": (time.perf_counter() - t0) / len(subset) * 1000}


def stage_align(a) -> dict:
    import brainalign
    from brainalign.data.things_eeg2 import load_things_eeg2

    eeg = load_things_eeg2(a.root, 1, "training")
    eeg = eeg.subset(list(range(min(a.align_images, len(eeg)))))
    model = brainalign.load_backbone("cornet", pretrained=False, device="cpu")
    out = Path(tempfile.mkdtemp(prefix="paper-scale-align-"))
    t0 = time.perf_counter()
    brainalign.align(model, eeg=eeg, epochs=1, batch_size=16, val_fraction=0, progress=False, seed=0,
                     image_cache=a.root / "image-cache", out_dir=out / "run")
    total = time.perf_counter() - t0
    stages = json.loads((out / "run" / "stages.json").read_text())  # setup, teacher targets, training, saving
    shutil.rmtree(out, ignore_errors=True)
    # one epoch's training per image (the grid repeats it 30x); teacher targets are once per run
    return {"images": len(eeg), "s_per_image": stages["training"] / len(eeg),
            "teacher_s_per_image": stages["teacher targets"] / len(eeg), "s_total": total, "stage_s": stages}


def stage_compare(a) -> dict:
    out = Path(tempfile.mkdtemp(prefix="paper-scale-compare-"))
    cmd = [sys.executable, "-m", "brainalign", "compare", "cornet", "resnet101", "clip", "--no-pretrained",
           "--eeg", f"things-eeg2:{a.root}", "--subjects", f"1-{a.subjects}", "--out", str(out / "report"),
           "--cache-dir", str(out / "cache"), "--permutations", "200", "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    stages = json.loads((out / "report" / "results.json").read_text()).get("stages", {})
    shutil.rmtree(out, ignore_errors=True)
    return {"s_total": wall, "stage_s": stages}


# --- the driver --------------------------------------------------------------------------------
def _run_stage(a, name: str) -> dict:
    """Run one stage in a child process; its own peak RSS comes from wait4."""
    fd, result = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    argv = [sys.executable, __file__, "--stage", name, "--root", str(a.root)]
    argv += [f"--{k.replace('_', '-')}={getattr(a, k)}" for k in
             ("train_images", "concepts", "test_images", "train_reps", "test_reps", "subjects", "image_px",
              "decode_images", "teacher_images", "align_images")]
    env = {**os.environ, "PAPER_SCALE_RESULT": result}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    figures = json.loads(Path(result).read_text() or "{}") if os.waitstatus_to_exitcode(status) == 0 else {}
    os.unlink(result)
    peak_mb = usage.ru_maxrss / 1024  # KiB on Linux
    return {"ok": bool(figures), "wall_s": wall, "peak_rss_mb": peak_mb, **figures}


def project(results: dict, gpu: dict | None) -> dict:
    """Wall time of the paper's 40 x 30-epoch grid from the measured per-image step cost."""
    g = PAPER_GRID
    images = g["runs"] * g["epochs"] * g["train_images"]
    out = {}
    if results.get("align", {}).get("ok"):
        r = results["align"]
        teacher = g["runs"] * g["train_images"] * r["teacher_s_per_image"]  # once per run, cached
        out["cpu_hours"] = (images * r["s_per_image"] + teacher) / 3600
    if gpu and gpu.get("images_per_s"):
        if gpu.get("backbone") == "cornet" and gpu.get("size") == 224:
            out["gpu_hours"] = images / gpu["images_per_s"] / 3600
            out["gpu_variant"] = f"{gpu.get('device')}, {gpu.get('variant')}, {gpu.get('date')}"
        else:  # a smaller check (another backbone or size) does not project the paper's runs
            out["gpu_note"] = (f"benchmarks/gpu_check.json measured {gpu.get('backbone')} at {gpu.get('size')} px, "
                               "not CORnet-S at 224 px: no GPU projection")
    return out


def main(argv=None) -> int:
    a = _args(argv)
    if a.stage:
        figures = globals()[f"stage_{a.stage}"](a)
        Path(os.environ["PAPER_SCALE_RESULT"]).write_text(json.dumps(figures))
        return 0
    a.root = a.root or Path(tempfile.gettempdir()) / ("brainalign-paper-scale" + ("-quick" if a.quick else ""))
    a.root.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    write_dataset(a)
    results = {}
    for name in [s.strip() for s in a.stages.split(",") if s.strip()]:
        if name not in STAGES:
            print(f"unknown stage {name!r}; choose from {', '.join(STAGES)}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        results[name] = _run_stage(a, name)
        print(f"   {json.dumps(results[name])}", flush=True)
    gpu_file = Path(__file__).with_name("gpu_check.json")
    gpu = json.loads(gpu_file.read_text()) if gpu_file.is_file() else None
    _report(a, results, project(results, gpu), load)
    return 0 if all(r["ok"] for r in results.values()) else 1


def _report(a, results: dict, projection: dict, load: float) -> None:
    print(f"\npaper-scale rehearsal: {a.train_images} training images ({a.image_px} px), {a.subjects} subjects, "
          f"load average at start {load:.1f}")
    print(f"{'stage':10s} {'wall s':>8s} {'peak RSS MB':>12s}  figures")
    for name, r in results.items():
        figures = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                   if k not in ("ok", "wall_s", "peak_rss_mb")}
        print(f"{name:10s} {r['wall_s']:8.1f} {r['peak_rss_mb']:12.0f}  {'' if r['ok'] else 'FAILED '}{figures}")
    dec, cache = results.get("decode", {}), results.get("cache", {})
    if dec.get("ok") and cache.get("ok"):
        print(f"cached reads vs decoding: {cache['read_images_per_s'] / dec['images_per_s']:.0f}x "
              f"(target >= 30x; {cache['read_images_per_s']:.0f} images/s, target >= 10,000)")
        full_build = PAPER_GRID["train_images"] / cache["build_images_per_s"]
        print(f"cache build projected for 16,540 images: {full_build / 60:.1f} min (target <= 2 min)")
    if "cpu_hours" in projection:
        print(f"paper grid (40 runs x 30 epochs x 16,540 images) on this CPU: {projection['cpu_hours']:.0f} h")
    if "gpu_hours" in projection:
        print(f"paper grid on the GPU of gpu_check.json ({projection['gpu_variant']}): "
              f"{projection['gpu_hours']:.1f} h on one device")
    elif "gpu_note" in projection:
        print(projection["gpu_note"])
    else:
        print("no benchmarks/gpu_check.json: run benchmarks/gpu_check.sh on a CUDA machine for the GPU projection")


if __name__ == "__main__":
    sys.exit(main())
