"""Peak RSS of ``compare`` with several backbones: models loaded one at a time (today) vs all
loaded up front (the old path), each in a fresh process, on the same data.

    python benchmarks/bench_compare_memory.py [--n-images 200] [--subjects 3] [--models cornet resnet101 clip]

Data: N random 224 px images and one precomputed RDM per subject (rsatoolbox HDF5 with a
'subject' descriptor), so the figures measure the model side of compare (loading, feature
extraction, RDMs), which is what grows with the backbones. Random weights (offline).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_data(root: Path, n_images: int, n_subjects: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np
    from PIL import Image
    from rsatoolbox.rdm import RDMs

    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(images / f"im{i:04d}.png")
    x = rng.normal(size=(n_subjects, n_images, 20))
    mats = np.stack([1 - np.corrcoef(xi) for xi in x])
    iu = np.triu_indices(n_images, 1)
    RDMs(mats[:, iu[0], iu[1]], rdm_descriptors={"subject": list(range(1, n_subjects + 1))}).save(
        str(root / "rdms.hdf5"), file_type="hdf5", overwrite=True)
    return root / "rdms.hdf5", images


def run_mode(mode: str, models: list[str], rdms: Path, images: Path, out: Path, batch_size: int) -> dict:
    from brainalign.evaluate import compare as cmp
    from brainalign.evaluate import data_sources as ds

    kw = dict(out=out, overwrite=True, batch_size=batch_size, progress=False, log=lambda *a: None)
    t0 = time.perf_counter()
    if mode == "lazy":
        o = cmp.run_compare(models, rdms=f"rdm:{rdms}", rdm_images=str(images), pretrained=False, **kw)
    else:  # the old path: every model resolved (loaded) before any features
        from brainalign.io import prepare_output_dir

        data = ds.load_rdm_subjects(f"rdm:{rdms}", None, images=str(images))
        entries = cmp.resolve_entries(models, list(data), pretrained=False)
        o = cmp.compare_data(entries, None, None, rdm_data=data, meta={}, out=prepare_output_dir(out, overwrite=True,
                             command="compare"), batch_size=batch_size, progress=False, log=lambda *a: None)
    return {"mode": mode, "seconds": round(time.perf_counter() - t0, 1), "stages": o.stages,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["cornet", "resnet101", "clip"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--modes", nargs="+", default=["lazy", "eager"])
    p.add_argument("--_child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._child:
        mode, root = a._child.split(",", 1)
        root = Path(root)
        print(json.dumps(run_mode(mode, a.models, root / "rdms.hdf5", root / "images", root / f"out-{mode}",
                                  a.batch_size)))
        return
    root = Path(tempfile.mkdtemp(prefix="bench_compare_memory_"))
    make_data(root, a.n_images, a.subjects)
    print(f"{a.n_images} images x {a.subjects} subjects, models {' '.join(a.models)} (random weights), "
          f"batch {a.batch_size}")
    for mode in a.modes:  # each in a fresh process: ru_maxrss is a per-process peak
        cmd = [sys.executable, __file__, "--models", *a.models, "--batch-size", str(a.batch_size),
               "--_child", f"{mode},{root}"]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        label = "one model at a time" if mode == "lazy" else "all models up front (old path)"
        print(f"{label:32s} peak RSS {res['peak_rss_mib']:8.1f} MiB  {res['seconds']:7.1f} s  stages {res['stages']}")


if __name__ == "__main__":
    main()
