"""Analyses: one protocol for everything ``compare`` (and robustness, variability) computes.

An analysis is an object with a ``name``, ``supports(data) -> bool`` (can it run on this
data?) and ``run(context) -> AnalysisResult`` (tidy rows, figures, a markdown section, a
JSON section, a terminal summary). Plugins provide analyses through the
``brainalign_analyses`` hook, exactly like the first-party ones
(``plugins/brainalign_analyses``); ``compare`` runs every registered analysis that supports
the data it was given::

    from brainalign.analyses import Analysis, AnalysisResult

    class MeanRDM(Analysis):
        name = "mean-rdm"
        def supports(self, data):            # data: {subject: dataset} of one source
            return all(hasattr(d, "responses") for d in data.values())
        def run(self, context):              # context.models: model RDMs, context.data: the data
            rows = [...]
            return AnalysisResult(self.name, rows=rows, markdown="## Mean RDM\\n...")

A new analysis is one module (an :class:`Analysis` subclass) plus its test; see
``examples/plugin_analysis/`` for an installable one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, suggest

__all__ = ["Analysis", "AnalysisSpec", "AnalysisResult", "AnalysisContext", "ModelRDMSet",
           "available_analyses", "get_analysis", "analyses_for"]


@dataclass
class AnalysisResult:
    """What an analysis returns.

    Attributes:
        name: the analysis' name.
        key: its section in ``results.json`` (default: ``name``).
        rows: tidy rows (dicts with the columns analysis, model, layer, subject, time_ms,
            roi, measure, value; other keys are kept in JSON, not in ``results.csv``).
        figures: {name: PNG path} written into the output folder.
        markdown: the report section (starting with a ``##`` heading).
        summary: a compact plain-text table for the terminal.
        json: the ``results.json`` section (numpy arrays are fine).
        value: the analysis' own result object (e.g. an EEGResult), for Python callers.
    """

    name: str
    key: str | None = None
    rows: list[dict] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    markdown: str = ""
    summary: str = ""
    json: dict = field(default_factory=dict)
    value: Any = None

    def __post_init__(self):
        if not self.key:
            self.key = self.name


class Analysis:
    """Base class of analyses (subclass it and fill ``name``, ``supports`` and ``run``).

    Attributes:
        name: unique name (``brainalign plugins`` lists it; results.json section by default).
        title: one line for listings.
        key: results.json section (default: name).
    """

    name: str = ""
    title: str = ""
    key: str | None = None

    def supports(self, data) -> bool:
        """Can this analysis run on ``data`` ({subject: dataset} of one source)?"""
        raise NotImplementedError(f"{type(self).__name__} must define supports(data)")

    def stimuli(self, data) -> dict:
        """{subject: {fingerprint: images}}: the images whose model RDMs :meth:`run` reads.

        Default: each subject's dataset images. ``compare`` extracts every model's RDMs on
        these (one model loaded at a time) before any analysis runs.
        """
        out = {}
        for s, d in data.items():
            images = getattr(d, "images", d)
            out[s] = {images.fingerprint(): images}
        return out

    def run(self, context: "AnalysisContext") -> AnalysisResult:
        raise NotImplementedError(f"{type(self).__name__} must define run(context)")

    def missing(self) -> list[str]:
        """What a subclass left undefined; a plugin returning such an analysis is refused when its
        hook is read (PluginError naming the plugin and what is missing), not when compare runs it."""
        undefined = [m for m in ("supports", "run") if getattr(type(self), m) is getattr(Analysis, m)]
        return ([] if self.name else ["name"]) + undefined

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


AnalysisSpec = Analysis  # the name the hook specification uses


from .context import AnalysisContext, ModelRDMSet  # noqa: E402  (needs Analysis defined first)


def available_analyses(*, refresh: bool = False) -> list[Analysis]:
    """Every analysis registered through the ``brainalign_analyses`` hook, in registration order."""
    from ..plugin_manager import hook_results

    return [a for _, a in hook_results("brainalign_analyses", Analysis, refresh=refresh)]


def get_analysis(name: str) -> Analysis:
    """The registered analysis called ``name``; ConfigError naming the known ones otherwise."""
    found = available_analyses()
    for a in found:
        if a.name == name:
            return a
    known = [a.name for a in found]
    raise ConfigError(f"no analysis called {name!r}.{suggest(name, known)} Known: {', '.join(known) or 'none'}")


def analyses_for(data, names=None) -> list[Analysis]:
    """The registered analyses that support ``data`` ({subject: dataset}); ``names`` restricts them."""
    chosen = [get_analysis(n) for n in names] if names else available_analyses()
    out = []
    for a in chosen:
        try:
            ok = bool(a.supports(data))
        except Exception as exc:  # one broken analysis must not stop the others
            import warnings

            warnings.warn(f"analysis {a.name!r}: supports() failed and it is skipped ({type(exc).__name__}: {exc})",
                          stacklevel=2)
            ok = False
        if ok:
            out.append(a)
    return out
