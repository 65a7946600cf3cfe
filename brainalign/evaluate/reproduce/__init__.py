"""``brainalign reproduce``: the ReAlnet paper's figure set in one command, with statistics and a verdict.

One module per job: ``settings`` (what is trained), ``data`` (synthetic brain or real sources),
``training`` (the unaligned model and per subject: aligned, unpaired, w/o contrastive, the beta
sweep), ``evaluation`` (EEG/fMRI RSA, variability, FGSM through the existing analyses), one module
per figure (``fig2`` 2A-C, ``fig3`` 3A-C, ``fig4`` beta, ``fig5`` controls), ``verdict`` (which
claims held) and ``report``.

    from brainalign.evaluate.reproduce import ReproduceSettings, run_reproduce
    outcome = run_reproduce("reproduce-out", settings=ReproduceSettings.quick())
    print(outcome.verdict)
"""
from .run import ReproduceOutcome, run_reproduce
from .settings import ReproduceSettings
from .verdict import judge, verdict_paragraph

__all__ = ["run_reproduce", "ReproduceOutcome", "ReproduceSettings", "judge", "verdict_paragraph"]
