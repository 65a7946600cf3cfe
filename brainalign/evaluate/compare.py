"""``brainalign compare``: models vs neural data (EEG, MEG, fMRI, precomputed RDMs), figures and a report.

The analyses come from the registry (:mod:`brainalign.analyses`): every registered analysis
that supports the data given runs on it.

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
from ..io import default_cache_dir, ensure_dir, prepare_output_dir, removes_new_folders_on_failure
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
    results: dict = field(default_factory=dict)  # analysis name -> AnalysisResult
    stages: dict = field(default_factory=dict)  # stage -> wall seconds


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


def precheck_model(text: str, subjects: Sequence | None) -> None:
    """Fail fast on a MODEL that cannot load (unknown name, missing file) without loading it:
    models load one at a time after the data, so a typo must not wait for the EEG decoding."""
    import os

    from ..models.registry import get_backbone_spec
    from .model_sources import _is_dynamic, find_aligned_file, looks_like_path

    text = str(text).strip()
    if "{subject" in text:
        for s in subjects or []:
            try:
                find_aligned_file(text.format(subject=s))
            except (KeyError, IndexError, ValueError):
                return  # resolve_model_group names the template error
    elif "@" in text and not os.path.exists(text) and looks_like_path(text.split("@", 1)[1]):
        get_backbone_spec(text.split("@", 1)[0])
    elif looks_like_path(text) and not _is_dynamic(text):
        find_aligned_file(text)
    elif text:
        get_backbone_spec(text)


@accepts_image_cache  # image_cache=None|folder|False for every image file read
@removes_new_folders_on_failure("out", "cache_dir")  # a failed run leaves no empty folder
def run_compare(models: Sequence[str], *, eeg: str | None = None, fmri: str | None = None,
                fmri_images=None, eeg_images=None, rdms: str | None = None, rdm_images=None,
                subjects: Sequence | None = None, layers: Sequence[str] | None = None, out=None,
                overwrite: bool = False, pretrained: bool = True, weights=None, device=None, batch_size: int = 32,
                cache_dir=None, n_permutations: int = 1000, seed: int = 0, analyses: Sequence[str] | None = None,
                progress: bool = True, log=print, argv=None) -> CompareOutcome:
    """Load data and models from strings, compare, write the report (see module docstring).

    ``eeg`` / ``fmri`` / ``rdms`` are data sources (``rdms``: precomputed RDMs, 'rdm:PATH');
    ``*_images`` the stimulus folders of sources that need them (MNE epochs, Shen fMRI, RDM
    files). Every registered analysis that supports a source's data runs on it (``analyses``:
    only these names). Models are loaded one at a time when their features are due.
    """
    from ..progress import Stages

    if not models:
        raise ConfigError("give at least one MODEL (e.g. 'cornet' or a path to an aligned model)")
    check_int("n_permutations", n_permutations, minimum=1, fix="the cluster test needs permutations (1000 is usual)")
    check_seed(seed)
    check_int("batch_size", batch_size, minimum=1)
    if weights is not None and len(models) > 1:
        raise ConfigError("--weights applies to a single backbone: compare one MODEL with --weights, or save "
                          "the models as aligned files")
    if eeg is None and fmri is None and rdms is None:
        eeg = fmri = "synthetic"
        log("No --eeg/--fmri given: using the built-in synthetic brain (procedural images, simulated EEG and "
            "fMRI); see 'brainalign synth'.")
    out_dir = prepare_output_dir(out, overwrite=overwrite, command="compare")  # refuse early, before any work
    if cache_dir is not None:
        ensure_dir(cache_dir, "--cache-dir")
    if analyses:
        from ..analyses import get_analysis

        for name in analyses:
            get_analysis(name)  # unknown names fail before any work
    subjects = list(subjects) if subjects else None
    for text in models:
        precheck_model(text, subjects)
    stages = Stages(log_fn=log)
    t0 = time.time()
    data = {}
    with stages("load"):
        for role, source, loader in (("eeg", eeg, lambda s: ds.load_eeg_subjects(s, subjects, images=eeg_images)),
                                     ("fmri", fmri, lambda s: ds.load_fmri_subjects(s, subjects, images=fmri_images)),
                                     ("rdms", rdms, lambda s: ds.load_rdm_subjects(s, subjects, images=rdm_images))):
            if source:
                log(f"Loading {role if role != 'rdms' else 'precomputed RDMs'} from {source} ...")
                data[role] = loader(source)
    all_subjects = list(next(iter(data.values())))
    for text in models:
        if "{subject" in text and not subjects:
            precheck_model(text, all_subjects)

    def load(text):
        return resolve_entries([text], all_subjects, pretrained=pretrained, weights=weights, layers=layers,
                               device=device)[0]

    meta = {"eeg_source": eeg, "fmri_source": fmri, "rdm_source": rdms,
            "synthetic": any(ds.is_synthetic_data(d) for d in data.values()),
            "subjects": all_subjects, "model_args": list(models), "pretrained": pretrained, "seed": seed}
    outcome = compare_data(list(models), data.get("eeg"), data.get("fmri"), rdm_data=data.get("rdms"), out=out_dir,
                           meta=meta, device=device, batch_size=batch_size, cache_dir=cache_dir,
                           n_permutations=n_permutations, seed=seed, analyses=analyses, progress=progress, log=log,
                           argv=argv, load=load, check=lambda e: check_models_vs_data([e], all_subjects),
                           stages=stages)
    log(f"Done in {time.time() - t0:.0f} s ({stages.summary()}).")
    return outcome


ROLES = ("eeg", "fmri", "rdms")


def plan_analyses(data: dict, names: Sequence[str] | None = None) -> list[tuple[str, object]]:
    """[(role, analysis)] for every loaded role's data ({role: {subject: dataset}})."""
    from ..analyses import analyses_for

    plan = []
    for role, d in data.items():
        found = analyses_for(d, names)
        if not found and not names:
            first = d[next(iter(d))]
            raise DataError(f"no registered analysis supports the {role} data ({first!r}): EEG/MEG needs raw "
                            "repetitions and a time axis, fMRI (n_images, n_voxels) responses, precomputed RDMs "
                            "the 'rdm:PATH' source; see 'brainalign plugins' for installed analyses")
        plan += [(role, a) for a in found]
    if not plan:
        raise DataError(f"none of the analyses {', '.join(names)} supports the data given "
                        f"({', '.join(data)}): drop the analysis names or give data they support")
    return plan


def compare_data(entries: list, eeg_data: dict | None, fmri_data: dict | None, *, out: Path,
                 meta: dict, rdm_data: dict | None = None, device=None, batch_size: int = 32, cache_dir=None,
                 n_permutations: int = 1000, seed: int = 0, analyses: Sequence[str] | None = None,
                 progress: bool = True, log=print, argv=None, title: str = "brainalign compare", load=None,
                 check=None, stages=None) -> CompareOutcome:
    """Run the analyses the loaded data supports and write figures + report into ``out``.

    Args:
        entries: ModelEntry objects, or MODEL strings loaded one at a time by ``load(text)``.
        eeg_data, fmri_data, rdm_data: {subject: dataset} per role (None: not given).
        check: ``check(entry)`` on each model before its features (e.g. :func:`check_models_vs_data`).
        stages: a Stages timer (load, decoding RDMs, features, RSA, statistics, figures), stored
            in results.json under 'stages'.
    """
    from ..analyses.context import AnalysisContext, merge_stimuli, model_rdm_sets
    from ..io import provenance
    from ..progress import Stages
    from .report import write_compare_report

    data = {role: d for role, d in zip(ROLES, (eeg_data, fmri_data, rdm_data)) if d}
    if not data:
        raise DataError("no neural data to compare with: give --eeg, --fmri and/or --rdms")
    stages = stages or Stages(log_fn=log)
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    plan = plan_analyses(data, analyses)
    stimuli = merge_stimuli([a.stimuli(data[role]) for role, a in plan])
    models = model_rdm_sets(entries, stimuli, load=load, check=check, batch_size=batch_size, device=device,
                            progress=progress, stages=stages, log=log)
    results, keys = [], set()
    sources = {"eeg": meta.get("eeg_source"), "fmri": meta.get("fmri_source"), "rdms": meta.get("rdm_source")}
    for role, a in plan:
        ctx = AnalysisContext(data=data[role], models=models, out=out, source=sources.get(role), role=role,
                              cache_dir=cache_dir, n_permutations=n_permutations, seed=seed, progress=progress,
                              log=log, stages=stages)
        res = a.run(ctx)
        if res.key in keys:  # one analysis on two roles, or two analyses sharing a key
            res.key = f"{res.key}-{role}"
        keys.add(res.key)
        results.append(res)
    meta = {**meta, "models": [m.description for m in models], "analyses": [a.name for _, a in plan],
            "provenance": provenance(argv)}
    paths = write_compare_report(out, results, meta, stages=stages.times, title=title)
    for res in results:
        paths.update(res.figures)
    by_key = {res.key: res for res in results}
    table = "\n\n".join(res.summary for res in results if res.summary)
    return CompareOutcome(out=out, eeg=getattr(by_key.get("eeg"), "value", None),
                          fmri=getattr(by_key.get("fmri"), "value", None), paths=paths, table=table,
                          results={res.name: res for res in results}, stages=dict(stages.times))
