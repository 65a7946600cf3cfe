"""``brainalign compare``: models vs EEG and fMRI, with figures and a report.

    outcome = run_compare(["cornet", "runs/sub-{subject:02d}_beta-100"], eeg="things-eeg2:/data/things",
                          subjects=[1, 2], out="reports/cornet")
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..data.image_cache import accepts_image_cache
from ..errors import ConfigError, DataError
from ..io import default_cache_dir, ensure_dir, prepare_output_dir
from ..validation import check_int, check_seed
from . import data_sources as ds
from .model_sources import ModelEntry, resolve_entries
from .results import EEGResult, FMRIResult


@dataclass
class CompareOutcome:
    out: Path
    eeg: EEGResult | None
    fmri: FMRIResult | None
    paths: dict = field(default_factory=dict)
    table: str = ""


def check_models_vs_data(entries: Sequence[ModelEntry], subjects: Sequence) -> None:
    """Refuse comparisons that do not make sense for the data given.

    * a personalised model aligned to subject A used as subject B's model;
    * an aligned model trained on the very split it is evaluated on (the test set).
    """
    for e in entries:
        for s in subjects:
            if e.personal is None and e.shared.origin != "aligned":
                continue
            src = e.for_subject(s)
            data = src.config.get("data", {}) if src.config else {}
            trained_on = data.get("subject")
            if e.personal is not None and trained_on not in (None, "None") and str(trained_on) != str(s):
                raise ConfigError(f"personalised model {src.path} was aligned to subject {trained_on} but is used "
                                  f"as subject {s}'s model: check the {{subject}} pattern in {e.label!r}")
            meta = data.get("meta") or {}
            if meta.get("split") == "test":
                raise DataError(f"model {src.label!r} was aligned on a *test* split ({meta.get('source')}): "
                                "evaluating it on test data would leak; align on the training split")


@accepts_image_cache  # image_cache=None|folder|False for every image file read
def run_compare(models: Sequence[str], *, eeg: str | None = None, fmri: str | None = None,
                fmri_images=None, subjects: Sequence | None = None, layers: Sequence[str] | None = None, out=None,
                overwrite: bool = False, pretrained: bool = True, weights=None, device=None, batch_size: int = 32,
                cache_dir=None, n_permutations: int = 1000, seed: int = 0, progress: bool = True,
                log=print, argv=None) -> CompareOutcome:
    """Load data and models from strings, compare, write the report (see module docstring)."""
    if not models:
        raise ConfigError("give at least one MODEL (e.g. 'cornet' or a path to an aligned model)")
    check_int("n_permutations", n_permutations, minimum=1, fix="the cluster test needs permutations (1000 is usual)")
    check_seed(seed)
    check_int("batch_size", batch_size, minimum=1)
    if weights is not None and len(models) > 1:
        raise ConfigError("--weights applies to a single backbone: compare one MODEL with --weights, or save "
                          "the models as aligned files")
    synthetic = eeg is None and fmri is None
    if synthetic:
        eeg = fmri = "synthetic"
        log("No --eeg/--fmri given: using the built-in synthetic brain (procedural images, simulated EEG and "
            "fMRI); see 'brainalign synth'.")
    out_dir = prepare_output_dir(out, overwrite=overwrite, command="compare")  # refuse early, before any work
    if cache_dir is not None:
        ensure_dir(cache_dir, "--cache-dir")
    syn = next((s for s in (eeg, fmri) if s and ds.is_synthetic(s)), None)
    brain = ds.synthetic_brain(syn) if syn else None  # one brain shared by EEG and fMRI
    subjects = list(subjects) if subjects else None
    eeg_data = fmri_data = None
    t0 = time.time()
    if eeg:
        log(f"Loading EEG from {eeg} ...")
        eeg_data = ds.load_eeg_subjects(eeg, subjects, brain=brain)
    if fmri:
        log(f"Loading fMRI from {fmri} ...")
        fmri_data = ds.load_fmri_subjects(fmri, subjects, brain=brain, images=fmri_images)
    all_subjects = list(eeg_data or fmri_data)
    log(f"Loading models: {', '.join(models)}")
    entries = resolve_entries(models, all_subjects, pretrained=pretrained, weights=weights, layers=layers,
                              device=device)
    check_models_vs_data(entries, all_subjects)
    meta = {"eeg_source": eeg, "fmri_source": fmri, "synthetic": syn is not None,
            "subjects": all_subjects, "model_args": list(models), "pretrained": pretrained,
            "models": [e.describe() for e in entries], "seed": seed}
    outcome = compare_data(entries, eeg_data, fmri_data, out=out_dir, meta=meta, device=device,
                           batch_size=batch_size, cache_dir=cache_dir, n_permutations=n_permutations, seed=seed,
                           progress=progress, log=log, argv=argv)
    log(f"Done in {time.time() - t0:.0f} s.")
    return outcome


def compare_data(entries: list[ModelEntry], eeg_data: dict | None, fmri_data: dict | None, *, out: Path,
                 meta: dict, device=None, batch_size: int = 32, cache_dir=None, n_permutations: int = 1000,
                 seed: int = 0, progress: bool = True, log=print, argv=None,
                 title: str = "brainalign compare") -> CompareOutcome:
    """Run the EEG and/or fMRI comparisons on loaded data and write figures + report into ``out``."""
    from . import figures
    from .eeg import compare_eeg
    from .fmri import compare_fmri
    from ..io import provenance
    from .report import terminal_summary, write_compare_report

    if eeg_data is None and fmri_data is None:
        raise DataError("no neural data to compare with: give --eeg and/or --fmri")
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    eeg_res = fmri_res = None
    figs = {}
    if eeg_data:
        log("EEG: time-resolved RSA")
        eeg_res = compare_eeg(entries, eeg_data, cache_dir=cache_dir, batch_size=batch_size, device=device,
                              n_permutations=n_permutations, seed=seed, progress=progress, log=log)
        figs["eeg_timecourses"] = figures.plot_eeg_timecourses(eeg_res, out / "eeg_timecourses.png")
        figs["eeg_best_layer"] = figures.plot_eeg_best_layer(eeg_res, out / "eeg_best_layer.png")
    if fmri_data:
        log("fMRI: RSA per ROI")
        fmri_res = compare_fmri(entries, fmri_data, batch_size=batch_size, device=device, progress=progress, log=log)
        figs["fmri_rois"] = figures.plot_fmri_bars(fmri_res, out / "fmri_rois.png")
    meta = {**meta, "provenance": provenance(argv)}
    paths = write_compare_report(out, eeg=eeg_res, fmri=fmri_res, meta=meta, figures=figs, title=title)
    paths.update(figs)
    table = terminal_summary(eeg_res, fmri_res)
    return CompareOutcome(out=out, eeg=eeg_res, fmri=fmri_res, paths=paths, table=table)
