"""Time-resolved RSA at THINGS-EEG2 scale: 4 layer RDMs x (10 subjects x 100 time points)
neural RDMs over 200 images (19900 pairs each), Spearman. brainalign's vectorised
``time_resolved_rsa`` (rank once, one matrix product) vs a scipy.stats.spearmanr loop.

Usage: python benchmarks/bench_rsa_compare.py [--quick]
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import stats as sps

from brainalign.rsa import time_resolved_rsa


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="time the scipy loop on fewer pairs")
    args = ap.parse_args(argv)
    n_layers, n_sub, n_t, n = 4, 10, 100, 200
    p = n * (n - 1) // 2
    rng = np.random.default_rng(0)
    model = rng.random((n_layers, p))
    # decoding accuracies are multiples of 1/n_tests: many ties, as in real data
    neural = np.round(rng.random((n_sub, n_t, p)) * 64) / 64

    t0 = time.perf_counter()
    ours = time_resolved_rsa(model, neural)
    t_ours = time.perf_counter() - t0
    tracemalloc.start()
    time_resolved_rsa(model, neural)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    n_cmp = n_layers * n_sub * n_t
    print(f"brainalign time_resolved_rsa: {n_cmp} comparisons of {p} pairs in {t_ours:.2f} s "
          f"(peak traced memory {peak:.0f} MiB; input {neural.nbytes / 2**20:.0f} MiB)")

    n_loop = 200 if args.quick else n_cmp
    flat = neural.reshape(n_sub * n_t, p)
    t0 = time.perf_counter()
    ref = []
    for k in range(n_loop):
        layer, rest = divmod(k, n_sub * n_t)
        ref.append(sps.spearmanr(model[layer], flat[rest]).statistic)
    t_loop = time.perf_counter() - t0
    t_scaled = t_loop * n_cmp / n_loop
    err = np.abs(np.array(ref) - ours.reshape(-1)[:n_loop]).max()
    print(f"scipy.stats.spearmanr loop: {t_loop:.2f} s for {n_loop} comparisons -> {t_scaled:.1f} s for all")
    print()
    print(f"max |difference| to scipy: {err:.1e}")
    print(f"speed-up: {t_scaled / t_ours:.0f}x (target >= 10x: {'met' if t_scaled / t_ours >= 10 else 'NOT met'})")


if __name__ == "__main__":
    main()
