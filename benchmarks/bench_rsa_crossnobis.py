"""Time-resolved crossnobis RDMs: brainalign's ``crossnobis_rdm`` (all pairs and time points of
a fold in one batched product) vs rsatoolbox ``calc_rdm(method='crossnobis')`` called per time
point with the same noise precision, leave-one-repetition-out, measured in the same run.

Default: 100 conditions x 20 repetitions x 17 channels x 50 time points; rsatoolbox runs on
--ref-times time points and is scaled to all (its cost is the same at every time point).

Usage: python benchmarks/bench_rsa_crossnobis.py [--quick]
"""
from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
import warnings

import numpy as np

from brainalign.rsa import crossnobis_rdm


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conditions", type=int, default=100)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--channels", type=int, default=17)
    ap.add_argument("--times", type=int, default=50)
    ap.add_argument("--ref-times", type=int, default=3, help="time points rsatoolbox computes")
    ap.add_argument("--quick", action="store_true", help="40 conditions x 10 repetitions x 20 times")
    args = ap.parse_args(argv)
    if args.quick:
        args.conditions, args.reps, args.times = 40, 10, 20
    import rsatoolbox

    c, r, e, t = args.conditions, args.reps, args.channels, args.times
    rng = np.random.default_rng(0)
    trials = rng.normal(size=(c, 1, e, t)) + rng.normal(size=(c, r, e, t))
    a = rng.normal(size=(t, e, e))
    precision = a @ np.swapaxes(a, 1, 2) / e + np.eye(e)   # one precision per time point

    crossnobis_rdm(trials[:3, :3, :, :2], noise=precision[:2])  # warm-up: BLAS/threadpool discovery
    t0 = time.perf_counter()
    ours = crossnobis_rdm(trials, noise=precision)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    crossnobis_rdm(trials)  # noise='shrinkage': precision estimated per fold and time point
    t_shrink = time.perf_counter() - t0
    tracemalloc.start()
    crossnobis_rdm(trials)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"brainalign crossnobis_rdm {c}x{r}x{e}x{t}: given precision {t_ours:.2f} s; "
          f"shrinkage per fold {t_shrink:.2f} s (peak traced memory {peak:.0f} MiB; "
          f"input {trials.nbytes / 2**20:.0f} MiB)")

    n_ref = min(args.ref_times, t)
    obs = {"cond": np.repeat(np.arange(c), r), "rep": np.tile(np.arange(r), c)}
    err = 0.0
    t0 = time.perf_counter()
    for ti in range(n_ref):
        ds = rsatoolbox.data.Dataset(trials[:, :, :, ti].reshape(c * r, e), obs_descriptors=obs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="cond",
                                          cv_descriptor="rep", noise=precision[ti])
        err = max(err, float(np.abs(ref.dissimilarities[0] - ours.vectors[ti]).max()))
    t_ref = (time.perf_counter() - t0) * t / n_ref
    print(f"rsatoolbox calc_rdm crossnobis: {t_ref / t * n_ref:.2f} s for {n_ref} time points -> "
          f"{t_ref:.1f} s for all {t}")
    print()
    print(f"max |difference| to rsatoolbox: {err:.1e}")
    ratio = t_ref / t_ours
    print(f"speed-up (same precision): {ratio:.0f}x (target >= 10x: {'met' if ratio >= 10 else 'NOT met'}); "
          f"with per-fold shrinkage estimation: {t_ref / t_shrink:.0f}x")
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
