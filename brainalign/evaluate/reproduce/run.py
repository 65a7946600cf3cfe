"""``run_reproduce``: data -> models -> measurements -> figures, report and verdict (one command)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...errors import ConfigError
from ...io import prepare_output_dir, removes_new_folders_on_failure
from ...progress import Stages
from .settings import ReproduceSettings


@dataclass
class ReproduceOutcome:
    out: Path
    claims: list
    verdict: str
    panels: list
    stage_times: dict
    paths: dict = field(default_factory=dict)


@removes_new_folders_on_failure("out")  # a failed run leaves no empty folder
def run_reproduce(out=None, *, settings: ReproduceSettings | None = None, eeg: str | None = None,
                  fmri: str | None = None, fmri_images=None, images: str | None = None, subjects=None,
                  overwrite: bool = False, device=None, cache_dir=None, progress: bool = True, log=print,
                  argv=None) -> ReproduceOutcome:
    """Train every model, measure it, write the paper's figures, report.md, results.json and the verdict.

    Args:
        settings: :class:`ReproduceSettings` (default: the synthetic-brain run; ``.quick()`` for tests,
            ``.with_paper_settings()`` for the paper's training choices).
        eeg / fmri / fmri_images: real data sources (e.g. 'things-eeg2:ROOT', 'shen:PATH' and the
            folder of Shen's images); None -> the synthetic brain.
        images: images to attack for robustness (a folder of class subfolders gives ground-truth labels).
        subjects: EEG subjects to use (default: the first ``settings.n_subjects``).
    """
    from ...io import provenance
    from .data import source_data, synthetic_data
    from .evaluation import evaluate
    from .fig2 import fig2a, fig2b, fig2c
    from .fig3 import fig3ab, fig3c
    from .fig4 import fig4
    from .fig5 import fig5
    from .report import write_report
    from .training import train_models
    from .verdict import judge, verdict_paragraph

    s = settings or ReproduceSettings()
    if eeg is None and (fmri is not None or fmri_images is not None):
        raise ConfigError("--fmri needs --eeg: the models are aligned to EEG (give --eeg things-eeg2:ROOT), or "
                          "drop --fmri to use the synthetic brain")
    out = prepare_output_dir(out, overwrite=overwrite, command="reproduce")
    stages = Stages(log_fn=log)
    n_runs = len(s.labels) * s.n_subjects
    log(f"brainalign reproduce: {s.n_subjects} subjects x {len(s.labels)} variants ({', '.join(s.labels)}) = "
        f"{n_runs} alignments of {s.align_epochs} epochs each")
    with stages("data"):
        data = synthetic_data(s) if eeg is None else source_data(s, eeg, fmri=fmri, fmri_images=fmri_images,
                                                                  attack_images=images, subjects=subjects)
    log(f"  data: {data.description}")
    models = train_models(s, data, device=device, progress=progress, log=log, stages=stages)
    ev = evaluate(s, data, models, device=device, cache_dir=cache_dir, progress=progress, log=log, stages=stages)
    with stages("figures + statistics"):
        panels = [fig2a(ev, out), fig2b(ev, out), fig2c(ev, out), *fig3ab(ev, out), fig3c(ev, out), fig4(ev, out),
                  fig5(ev, out)]
        panels = [p for p in panels if p is not None]
        claims = judge({p.key: p.stats for p in panels})
        paragraph = verdict_paragraph(claims, synthetic=data.synthetic)
    settings_lines = [f"- {k}: {v}" for k, v in s.to_dict().items()]
    if s.paper_settings:
        settings_lines.append("- --paper-settings: the paper's zscore='global', epochs, lr, batch size, betas and seed")
    meta = {"data": data.description, "models": f"{s.backbone}, {s.n_subjects} subjects x {len(s.labels)} variants",
            "settings": {**s.to_dict(), "subjects": list(data.subjects)}, "settings_lines": settings_lines,
            "provenance": provenance(argv)}
    paths = write_report(out, panels, claims, paragraph, meta=meta, ev=ev, stage_times=dict(stages.times))
    log(f"  total {stages.total:.0f} s: {stages.summary()}")
    return ReproduceOutcome(out=out, claims=claims, verdict=paragraph, panels=panels, stage_times=dict(stages.times),
                            paths={**paths, **{p.key: p.figure for p in panels if p.figure}})
