"""Which of the paper's claims held on a run: each claim is held / did not hold / not tested, with
the statistic that decided it. Reads only the figures' statistics (``{figure key: stats}``), so
it can be checked on constructed results.

The criteria (alpha = .05, two-sided tests):
  eeg_gain        aligned > unaligned on held-out EEG: mean gain > 0, paired t-test p < alpha
                  (cluster-corrected time windows reported alongside).
  fmri_gain       fMRI up although never trained on: mean gain over ROIs > 0, p < alpha.
  eeg_fmri        a model's EEG gain predicts its fMRI gain: Pearson r > 0, p < alpha.
  unpaired        the unpaired control fails: its EEG gain is not significantly > 0 and the
                  aligned model beats it (paired p < alpha).
  no_contrastive  without the contrastive term EEG holds (gain > 0, p < alpha) but fMRI drops
                  (fMRI gain below the aligned model's, paired p < alpha).
  beta            beta trades similarity against robustness: EEG gain rises with beta and
                  accuracy under attack falls with it (Spearman trends, both p < alpha).
  variability     individual variability grows with depth: last layer > first layer, paired p < alpha.
  robustness      aligned models are more robust: baseline-aligned accuracy at the attack eps above
                  the unaligned model's, p < alpha.
"""
from __future__ import annotations

from .panel import ALPHA, fmt_p, fmt_test

CLAIMS = {
    "eeg_gain": "Aligned models are more similar to held-out EEG than the unaligned model",
    "fmri_gain": "Aligned models are more similar to fMRI (never trained on)",
    "eeg_fmri": "A model's EEG improvement goes with its fMRI improvement",
    "unpaired": "The unpaired control shows no gain",
    "no_contrastive": "Without the contrastive term the EEG gain holds but the fMRI gain drops",
    "beta": "Beta trades similarity against robustness",
    "variability": "Individual variability grows with depth",
    "robustness": "Aligned models are more robust to FGSM",
}


def _sig_pos(d: dict | None) -> bool:
    return d is not None and d["mean"] > 0 and d["p"] < ALPHA


def judge(st: dict) -> list[dict]:
    """[{'key', 'claim', 'held': True/False/None, 'statistic'}] from {figure key: stats}."""
    out = []

    def add(key, held, statistic):
        out.append({"key": key, "claim": CLAIMS[key], "held": held, "statistic": statistic})

    a = st.get("2A")
    if a:
        cl = "" if not a.get("tested") else (
            f"; significant clusters in {', '.join(a['significant_layers']) or 'no layer'}"
            + (f" (min cluster {fmt_p(a['min_cluster_p'])})" if a.get("min_cluster_p") is not None else ""))
        add("eeg_gain", _sig_pos(a["gain"]), f"gain {fmt_test(a['gain'])}, ratio {100 * a['ratio']:+.0f} %{cl}")
    b = st.get("2B")
    if b:
        add("fmri_gain", _sig_pos(b["gain"]),
            f"gain {fmt_test(b['gain'])}, {b['n_significant']}/{b['n_rois']} ROIs significant (FDR)")
    else:
        add("fmri_gain", None, "no fMRI data")
    c = st.get("2C")
    if c:
        held = c["r"] == c["r"] and c["r"] > 0 and c["p"] < ALPHA
        add("eeg_fmri", held, f"r = {c['r']:.2f}, {fmt_p(c['p'])}, n = {c['n_models']} models")
    else:
        add("eeg_fmri", None, "no fMRI data")
    f5 = st.get("5")
    if f5:
        u = f5["unpaired"]
        held = not _sig_pos(u["eeg"]) and u["eeg_vs_aligned"]["mean"] < 0 and u["eeg_vs_aligned"]["p"] < ALPHA
        add("unpaired", held, f"unpaired EEG gain {fmt_test(u['eeg'])}; unpaired - aligned "
                              f"{fmt_test(u['eeg_vs_aligned'])}")
        w = f5["w/o contrastive"]
        if "fmri" in w:
            drop = w["fmri_vs_aligned"]
            held = _sig_pos(w["eeg"]) and drop["mean"] < 0 and drop["p"] < ALPHA
            add("no_contrastive", held, f"EEG gain {fmt_test(w['eeg'])}; fMRI minus aligned {fmt_test(drop)}")
        else:
            add("no_contrastive", None, f"EEG gain {fmt_test(w['eeg'])}; no fMRI data")
    f4 = st.get("4")
    if f4:
        e, r = f4["eeg_gain"]["trend"], f4["robustness"]["trend"]
        held = e["rho"] > 0 and e["p"] < ALPHA and r["rho"] < 0 and r["p"] < ALPHA
        add("beta", held, f"EEG gain vs log beta rho = {e['rho']:+.2f} ({fmt_p(e['p'])}); accuracy at eps "
                          f"vs log beta rho = {r['rho']:+.2f} ({fmt_p(r['p'])})")
    f3 = st.get("3B")
    if f3:
        d = f3["last_minus_first"]
        add("variability", _sig_pos(d), f"{f3['layers'][-1]} - {f3['layers'][0]} {fmt_test(d)}")
    f3c = st.get("3C")
    if f3c:
        d = f3c["at_eps"]
        add("robustness", _sig_pos(d), f"baseline-aligned accuracy at eps {f3c['attack_eps']:g}, aligned - "
                                       f"unaligned {fmt_test(d)}")
    return out


def verdict_paragraph(claims: list[dict], *, synthetic: bool) -> str:
    """One paragraph: how many claims held, then each with its statistic."""
    tested = [c for c in claims if c["held"] is not None]
    held = [c for c in tested if c["held"]]
    where = "the synthetic brain" if synthetic else "the given data"
    parts = [f"On this run ({where}), {len(held)} of {len(tested)} tested claims of the paper held."]
    for c in claims:
        word = {True: "held", False: "did not hold", None: "not tested"}[c["held"]]
        parts.append(f"{c['claim']}: {word} ({c['statistic']}).")
    return " ".join(parts)
