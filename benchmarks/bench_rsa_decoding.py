"""Decoding RDM speed: brainalign's vectorised LDA engine vs the scikit-learn SVM reference
and NeuroRA's ``eegRDM_bydecoding``, on 200 conditions x 80 repetitions x 17 channels x
20 time points (THINGS-EEG2 test-set size).

The baselines fit one classifier per pair, so they run on a subset of conditions and their
time is scaled by the number of pairs (and permutations); every number is measured in
this run. Usage: python benchmarks/bench_rsa_decoding.py [--quick]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import resource
import time
import tracemalloc

import numpy as np

from brainalign.rsa import decoding_rdm

SETTINGS = dict(n_pseudo=5, n_folds=4)


def make_trials(n_cond, n_rep=80, n_chan=17, n_times=20, seed=0):
    rng = np.random.default_rng(seed)
    pattern = rng.normal(size=(n_cond, n_chan)) * 0.3
    x = rng.normal(size=(n_cond, n_rep, n_chan, n_times)).astype(np.float32)
    x[..., 5:] += pattern[:, None, :, None].astype(np.float32)
    return x


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peak_mib(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller baseline subsets (~1 min)")
    ap.add_argument("--permutations", type=int, default=10, help="pseudo-trial permutations (brainalign)")
    args = ap.parse_args(argv)
    n_perm = args.permutations
    full_pairs = 200 * 199 / 2

    x = make_trials(200)
    t_lda, r = timed(lambda: decoding_rdm(x, n_permutations=n_perm, seed=0, **SETTINGS))
    mem = peak_mib(lambda: decoding_rdm(x, n_permutations=1, seed=0, **SETTINGS))
    print(f"brainalign lda  200x80x17x20, {n_perm} permutations: {t_lda:7.2f} s  "
          f"(peak traced memory of one permutation {mem:.0f} MiB; input {x.nbytes / 2**20:.0f} MiB)")
    print(f"  mean accuracy before/after onset: {r.vectors[:5].mean():.3f} / {r.vectors[5:].mean():.3f}")

    # scikit-learn SVM per pair, same pseudo-trials and folds, 1 permutation, subset of conditions
    n_sub = 6 if args.quick else 10
    xs = x[:n_sub]
    pairs = n_sub * (n_sub - 1) / 2
    t_svm, _ = timed(lambda: decoding_rdm(xs, engine="svm", n_permutations=1, seed=0, **SETTINGS))
    t_lda_sub, _ = timed(lambda: decoding_rdm(xs, engine="lda", n_permutations=1, seed=0, **SETTINGS))
    svm_full = t_svm * full_pairs / pairs * n_perm
    print(f"sklearn SVC(linear) per pair: {t_svm:.2f} s for {n_sub} conditions, 1 permutation "
          f"-> {svm_full:8.0f} s scaled to 200 conditions, {n_perm} permutations")
    print(f"  same subset with brainalign lda: {t_lda_sub:.3f} s "
          f"(ratio on the subset {t_svm / t_lda_sub:.0f}x)")

    # NeuroRA: EEG_data [n_cons, n_subs, n_trials, n_chls, n_ts]; one window per sample
    try:
        from neurora.rdm_cal import eegRDM_bydecoding
    except ImportError:
        eegRDM_bydecoding = None
        print("NeuroRA not installed (pip install neurora): skipped")
    if eegRDM_bydecoding is not None:
        n_nr = 3 if args.quick else 4
        nr_repeats = 1
        data = x[:n_nr, None]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            t_nr, _ = timed(lambda: eegRDM_bydecoding(data, time_win=1, time_step=1, navg=5,
                                                      nfolds=4, nrepeats=nr_repeats))
        nr_pairs = n_nr * (n_nr - 1) / 2
        nr_full = t_nr * full_pairs / nr_pairs * n_perm / nr_repeats
        print(f"NeuroRA eegRDM_bydecoding: {t_nr:.2f} s for {n_nr} conditions, {nr_repeats} repeat "
              f"-> {nr_full:8.0f} s ({nr_full / 3600:.1f} h) scaled to 200 conditions, {n_perm} repeats")
    print()
    print(f"speed-up vs sklearn SVM reference: {svm_full / t_lda:8.0f}x")
    if eegRDM_bydecoding is not None:
        print(f"speed-up vs NeuroRA:               {nr_full / t_lda:8.0f}x")
    print(f"target (< 10 s): {'met' if t_lda < 10 else 'NOT met'} ({t_lda:.2f} s); "
          f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
