"""Peak RSS of ``compare`` with several backbones, each mode in a fresh process on the same data:

  lazy            today: models loaded one at a time; each layer's stored feature rows share a
                  64 MiB in-memory budget per model, the rest go to temporary files
  rows-in-memory  the same, with every layer's rows kept in memory (the accumulator before
                  the budget: the baseline of the rows' share of the peak)
  eager           every model loaded before any features (the older path)

    python benchmarks/bench_compare_memory.py [--n-images 200] [--subjects 3] [--models cornet resnet101 clip]
        [--modes lazy rows-in-memory eager] [--baseline-checkout DIR]

``--baseline-checkout DIR`` adds a run of 'lazy' with the brainalign of another checkout
(e.g. ``git worktree add DIR <older commit>``) on the path: the same data and script, the
older library.

Each mode reports ru_maxrss (the process peak), the peak RSS within each compare stage (load,
features, RSA, ...; VmRSS sampled every 20 ms) and the stage times, and whether its layer RDMs
equal the first mode's bit for bit.

Data: N random 224 px images and one precomputed RDM per subject (rsatoolbox HDF5 with a
'subject' descriptor), so the figures measure the model side of compare (loading, feature
extraction, RDMs), which is what grows with the backbones. With ``--eeg``: the issue's
scenario instead, a THINGS-EEG2 release layout (``--eeg-root``, written once and reused):
N test images with 80 repetitions x 17 channels x 100 samples per subject, and each
subject's training EEG (``--train-trials`` x 4 repetitions; 16,540 in the release) that the
loader z-scores with; compare then loads, z-scores and decodes the EEG (time-resolved RSA)
besides the models. Random weights (offline).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MODES = ("lazy", "rows-in-memory", "eager")


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


def make_eeg_data(root: Path, n_images: int, n_subjects: int, n_train: int, seed: int = 0) -> Path:
    """THINGS-EEG2 layout under ``root`` (reused when it holds these sizes); returns ``root``."""
    import numpy as np
    from PIL import Image

    marker, wanted = root / "bench_sizes.json", {"n_images": n_images, "subjects": n_subjects, "train": n_train}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return root
    rng = np.random.default_rng(seed)
    channels = ["Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P5", "PO7", "PO3", "POz", "PO4", "PO8", "P6",
                "P2"]
    times = np.round(-0.2 + np.arange(100) / 100.0, 2)  # -0.2 .. 0.79 s at 100 Hz, as released
    files, concepts = [], []
    for i in range(n_images):
        concept, name = f"{i + 1:05d}_thing{i}", f"thing{i}_01s.jpg"
        (root / "image_set" / "test_images" / concept).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(
            root / "image_set" / "test_images" / concept / name, quality=90)
        files.append(name)
        concepts.append(concept)
    np.save(root / "image_set" / "image_metadata.npy", {"test_img_files": files, "test_img_concepts": concepts,
            "train_img_files": [], "train_img_concepts": []}, allow_pickle=True)
    for sub in range(1, n_subjects + 1):
        d = root / "preprocessed_data" / f"sub-{sub:02d}"
        d.mkdir(parents=True, exist_ok=True)
        for split, n, reps in (("test", n_images, 80), ("training", n_train, 4)):
            eeg = rng.standard_normal((n, reps, len(channels), len(times)), dtype=np.float32)
            np.save(d / f"preprocessed_eeg_{split}.npy", {"preprocessed_eeg_data": eeg, "ch_names": channels,
                    "times": times}, allow_pickle=True)
            del eeg
    marker.write_text(json.dumps(wanted))
    return root


def _vm_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class StagePeaks:
    """Peak VmRSS (MiB) within each compare stage, sampled every ``interval`` s by a thread;
    time outside any stage counts as 'other'."""

    def __init__(self, interval: float = 0.02):
        self.peaks: dict[str, float] = {}
        self.current, self.interval, self._stop = "other", interval, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peaks[self.current] = max(self.peaks.get(self.current, 0.0), _vm_rss_mib())
            self._stop.wait(self.interval)

    def patch_stages(self):
        """Make every ``Stages`` timer label the samples with its stage name."""
        from brainalign.progress import Stages

        timed = Stages.__call__

        @contextlib.contextmanager
        def labelled(stages, name):
            before, self.current = self.current, name
            try:
                with timed(stages, name):
                    yield
            finally:
                self.current = before

        Stages.__call__ = labelled
        return self

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_mode(mode: str, models: list[str], data: dict, out: Path, batch_size: int) -> dict:
    """compare in this process; ``data``: {'rdms': ..., 'rdm_images': ...} or {'eeg': 'things-eeg2:ROOT'}."""
    from brainalign.evaluate import compare as cmp
    from brainalign.evaluate import data_sources as ds
    from brainalign.evaluate import models_rdm

    if mode == "rows-in-memory":  # the baseline: no budget, every layer's rows in memory
        models_rdm.ROWS_IN_MEMORY_BYTES = 2**50
    kw = dict(out=out, overwrite=True, batch_size=batch_size, progress=False, log=lambda *a: None)
    t0 = time.perf_counter()
    with StagePeaks().patch_stages() as peaks:
        if mode != "eager":
            o = cmp.run_compare(models, pretrained=False, cache_dir=out.parent / f"cache-{mode}", **data, **kw)
        else:  # the old path: every model resolved (loaded) before any features
            from brainalign.io import prepare_output_dir

            loaded = (ds.load_eeg_subjects(data["eeg"], None) if "eeg" in data
                      else ds.load_rdm_subjects(data["rdms"], None, images=data["rdm_images"]))
            entries = cmp.resolve_entries(models, list(loaded), pretrained=False)
            o = cmp.compare_data(entries, loaded if "eeg" in data else None, None,
                                 rdm_data=None if "eeg" in data else loaded, meta={},
                                 cache_dir=out.parent / f"cache-{mode}",
                                 out=prepare_output_dir(out, overwrite=True, command="compare"),
                                 batch_size=batch_size, progress=False, log=lambda *a: None)
    return {"mode": mode, "seconds": round(time.perf_counter() - t0, 1), "stages": o.stages,
            "stage_peak_rss_mib": {k: round(v) for k, v in peaks.peaks.items()},
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-images", type=int, default=200)
    p.add_argument("--subjects", type=int, default=3)
    p.add_argument("--models", nargs="+", default=["cornet", "resnet101", "clip"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--eeg", action="store_true", help="THINGS-EEG2 layout (EEG decoding) instead of precomputed RDMs")
    p.add_argument("--eeg-root", type=Path, default=None, help="where the --eeg dataset is written/reused")
    p.add_argument("--train-trials", type=int, default=16540, help="training EEG trials per subject (--eeg)")
    p.add_argument("--baseline-checkout", type=Path, default=None,
                   help="also run 'lazy' with the brainalign of this checkout (an older commit) on the path")
    p.add_argument("--_child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._child:
        mode, folder, data = a._child.split(",", 2)
        Path(folder).mkdir(parents=True, exist_ok=True)
        print(json.dumps(run_mode(mode, a.models, json.loads(data), Path(folder) / f"out-{mode}", a.batch_size)))
        return
    root = Path(tempfile.mkdtemp(prefix="bench_compare_memory_"))
    if a.eeg:
        eeg_root = make_eeg_data(a.eeg_root or root / "things-eeg2", a.n_images, a.subjects, a.train_trials)
        data = {"eeg": f"things-eeg2:{eeg_root}"}
    else:
        rdms, images = make_data(root, a.n_images, a.subjects)
        data = {"rdms": f"rdm:{rdms}", "rdm_images": str(images)}
    what = (f"EEG (THINGS-EEG2 layout, 80 test repetitions, {a.train_trials} training trials)" if a.eeg
            else "precomputed RDMs")
    print(f"{a.n_images} images x {a.subjects} subjects, {what}, models {' '.join(a.models)} (random weights), "
          f"batch {a.batch_size}; load average {os.getloadavg()[0]:.1f}")
    labels = {"lazy": "lazy (one model at a time, 64 MiB rows)", "rows-in-memory": "all rows in memory (baseline)",
              "eager": "all models up front (old path)"}
    peaks, first = {}, None
    runs = [(m, m, None) for m in a.modes]
    if a.baseline_checkout:
        runs.append(("baseline", "lazy", a.baseline_checkout.resolve()))
        labels["baseline"] = f"baseline: lazy with {a.baseline_checkout}"
    for name, mode, checkout in runs:  # each in a fresh process: ru_maxrss is a per-process peak
        cmd = [sys.executable, __file__, "--models", *a.models, "--batch-size", str(a.batch_size),
               "--_child", f"{mode},{root / name},{json.dumps(data)}"]
        env = dict(os.environ)
        if checkout is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(checkout), str(checkout / "plugins"), env.get("PYTHONPATH", "")])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        res = json.loads(out.strip().splitlines()[-1])
        rsa = json.loads((root / name / f"out-{mode}" / "results.json").read_text())["eeg" if a.eeg else "rdms"]
        first = first if first is not None else rsa
        peaks[name] = res["peak_rss_mib"]
        print(f"{labels[name]:42s} peak RSS {res['peak_rss_mib']:8.1f} MiB  {res['seconds']:7.1f} s  "
              f"same results as {runs[0][0]}: {rsa == first}")
        print(f"{'':42s} stage peaks (MiB) {res['stage_peak_rss_mib']}")
        print(f"{'':42s} stage times (s)   {res['stages']}")
    for name, _, _ in runs[1:]:
        print(f"peak RSS {runs[0][0]} / {name}: {peaks[runs[0][0]] / peaks[name]:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
