"""Decoded-image cache vs decoding the JPEGs, in one run.

Writes (or reuses) N random-content JPEGs at --src-size px (THINGS images are 500 px), then
measures, at the backbone size --size:

  decode    ImageSet with the cache off: every load decodes and resizes the files (one thread,
            what the training loop's prefetch thread did per epoch before the cache)
  build     the first cached load: decode every file once (threads) into the uint8 array
  cached    reads of shuffled batches from the cache (uint8, as they go to the device; and
            float32 in [0, 1] on the CPU) over --epochs epochs

    python benchmarks/bench_image_cache.py                  # 2000 images, 500 -> 224 px
    python benchmarks/bench_image_cache.py --n 16540        # the paper's training set size
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def make_jpegs(folder: Path, n: int, src: int, seed: int = 0) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (src // 8, src // 8, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        p = folder / f"img_{i:05d}.jpg"
        if not p.is_file():  # smooth content with noise: JPEG sizes like photos (~50-100 kB)
            im = Image.fromarray(np.roll(base, i, axis=0)).resize((src, src), Image.BILINEAR)
            noise = rng.integers(0, 24, (src, src, 3), dtype=np.uint8)
            Image.fromarray(np.asarray(im) // 2 + noise).save(p, quality=90)
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    ap.add_argument("--src-size", type=int, default=500, help="JPEG side in px (default 500)")
    ap.add_argument("--size", type=int, default=224, help="backbone input size (default 224)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--decode-images", type=int, default=320, help="images decoded for the decode rate")
    ap.add_argument("--epochs", type=int, default=3, help="cached epochs timed")
    ap.add_argument("--images-dir", type=Path, default=Path(tempfile.gettempdir()) / "brainalign-bench-jpegs")
    ap.add_argument("--keep-cache", action="store_true", help="keep the built cache (default: deleted)")
    a = ap.parse_args()

    from brainalign.data.images import ImageSet

    t = time.perf_counter()
    paths = make_jpegs(a.images_dir / f"{a.src_size}px", a.n, a.src_size)
    print(f"{a.n} JPEGs at {a.src_size} px ready ({time.perf_counter() - t:.1f} s; "
          f"{sum(p.stat().st_size for p in paths) / a.n / 1e3:.0f} kB each); load {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)

    plain = ImageSet.from_paths(paths, size=a.size, cache=False)
    k = min(a.decode_images, a.n)
    idx = rng.permutation(a.n)[:k]
    t = time.perf_counter()
    for s in range(0, k, a.batch):
        plain.load(idx[s:s + a.batch])
    decode_rate = k / (time.perf_counter() - t)

    root = Path(tempfile.mkdtemp(prefix="brainalign-bench-cache-"))
    try:
        cached = ImageSet.from_paths(paths, size=a.size, cache=root)
        t = time.perf_counter()
        cached.load_uint8([0])  # builds the entry
        build_s = time.perf_counter() - t
        cached = ImageSet.from_paths(paths, size=a.size, cache=root)  # a new run: open + check only
        t = time.perf_counter()
        cached.load_uint8([0])
        open_s = time.perf_counter() - t
        rates = {}
        for kind in ("uint8", "float32"):
            load = cached.load_uint8 if kind == "uint8" else cached.load
            t = time.perf_counter()
            for _ in range(a.epochs):
                perm = rng.permutation(a.n)
                for s in range(0, a.n, a.batch):
                    load(perm[s:s + a.batch])
            rates[kind] = a.epochs * a.n / (time.perf_counter() - t)
    finally:
        if not a.keep_cache:
            shutil.rmtree(root, ignore_errors=True)

    print(f"decode (cache off, 1 thread):  {decode_rate:9.0f} images/s")
    print(f"build ({a.n} images):          {a.n / build_s:9.0f} images/s ({build_s:.1f} s; "
          f"projected 16,540 images: {16540 / (a.n / build_s):.0f} s)")
    print(f"open + check of a built cache: {open_s * 1e3:9.1f} ms")
    for kind, r in rates.items():
        print(f"cached reads ({kind:7s}):       {r:9.0f} images/s = {r / decode_rate:.0f}x decoding")
    print(f"targets: cached >= 30x decoding and >= 10,000 images/s; build of 16,540 images <= 120 s; "
          f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
