"""Alignment objectives: what pulls a backbone towards the neural data.

An objective sees one training batch (:class:`ObjectiveBatch`: the tapped layers'
activations, the model output, the head's prediction and the neural targets) and returns
named loss terms ``{name: scalar tensor}``. The trainer sums every term (times the
objective's weight, times ``beta``), adds the task loss and logs each term per step and per
epoch under its name, without knowing the names in advance.

Objectives are found through the ``brainalign_objectives`` plugin hook (the first-party
``realnet``, ``rsa`` and ``cka`` are registered by ``plugins/brainalign_objectives`` exactly
like a third party's) and chosen by name::

    align(model, eeg=ds, objective="realnet")            # default: ReAlnet encoding head
    align(model, eeg=ds, objective="realnet+rsa")        # sum of both
    align(model, eeg=ds, objective={"realnet": 1, "rsa": 0.5})   # weighted
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, runtime_checkable

import torch

from ...errors import ConfigError, suggest

DEFAULT_OBJECTIVE = "realnet"


@dataclass
class ObjectiveBatch:
    """One training batch as an objective sees it.

    activations: {layer: (b, *shape)} the tapped layers of this forward pass (with gradients).
    output: (b, C) the backbone's logits or embedding.
    prediction: (b, n_targets) the encoder head's generated responses (float32).
    targets: (b, n_targets) the real neural responses of the batch's images.
    """

    activations: Mapping[str, torch.Tensor]
    output: torch.Tensor
    prediction: torch.Tensor
    targets: torch.Tensor


@runtime_checkable
class Objective(Protocol):
    """``terms``: the names the objective may return (a term it skips is logged as None);
    ``min_batch``: the fewest images per batch its terms are defined for; ``uses_head``: whether
    its terms read ``prediction`` (if none does, the trainer fits the head as a read-out on
    detached layers, so validation still scores it)."""

    terms: tuple[str, ...]
    min_batch: int
    uses_head: bool

    def __call__(self, batch: ObjectiveBatch) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class ObjectiveSpec:
    """What a plugin returns from ``brainalign_objectives()``.

    name: the name users select (``objective="name"``, ``--objective name``).
    factory: ``factory(settings) -> Objective``; ``settings`` holds align()'s settings
        (``contrastive``, ``rank_temperature``, ...), so an objective can read the ones it uses.
    description: one line for listings and errors.
    """

    name: str
    factory: Callable[[Mapping], Objective]
    description: str = ""


def available_objectives(refresh: bool = False) -> dict[str, ObjectiveSpec]:
    """{name: ObjectiveSpec} of every registered objective (first registration of a name wins)."""
    from ...plugin_manager import hook_results

    out: dict[str, ObjectiveSpec] = {}
    for _plugin, spec in hook_results("brainalign_objectives", ObjectiveSpec, refresh=refresh):
        out.setdefault(spec.name, spec)
    return out


def get_objective_spec(name: str) -> ObjectiveSpec:
    specs = available_objectives()
    if name not in specs:
        raise ConfigError(f"unknown objective {name!r}.{suggest(name, list(specs))} Available: "
                          f"{', '.join(sorted(specs)) or 'none'} (install a plugin for others)")
    return specs[name]


_TERM = re.compile(r"^\s*(?:(?P<w>[0-9.eE+-]+)\s*\*\s*)?(?P<name>[A-Za-z_][\w:.-]*)\s*$")


def parse_objective(objective) -> tuple[tuple[str, float], ...]:
    """Normalise an objective selection to ((name, weight), ...).

    Accepts 'realnet', 'realnet+rsa', 'realnet+0.5*rsa', a list of names or (name, weight)
    pairs, or a {name: weight} mapping. Names are checked against the registry.
    """
    from ...validation import check_float

    if isinstance(objective, str):
        parts = []
        for piece in objective.split("+"):
            m = _TERM.match(piece)
            if m is None:
                raise ConfigError(f"cannot read objective {objective!r}: write names joined by '+', each "
                                  "optionally weighted, e.g. 'realnet+0.5*rsa'")
            parts.append((m["name"], float(m["w"]) if m["w"] else 1.0))
    elif isinstance(objective, Mapping):
        parts = list(objective.items())
    elif isinstance(objective, (list, tuple)):
        parts = [(p, 1.0) if isinstance(p, str) else tuple(p) for p in objective]
    else:
        raise ConfigError(f"objective must be a name, 'a+b', a list or a {{name: weight}} dict, got "
                          f"{type(objective).__name__}")
    if not parts:
        raise ConfigError("objective is empty: give at least one name, e.g. 'realnet'")
    out = []
    for name, weight in parts:
        get_objective_spec(name)
        out.append((name, check_float(f"weight of objective {name!r}", weight, minimum=0)))
    if len({n for n, _ in out}) != len(out):
        raise ConfigError(f"objective {objective!r} names an objective twice: give each once (with a weight)")
    return tuple(out)


def objective_label(parsed: tuple[tuple[str, float], ...]) -> str:
    """The canonical text of a parsed selection: 'realnet', 'realnet+0.5*rsa' (parses back to it)."""
    return "+".join(name if w == 1.0 else f"{w:g}*{name}" for name, w in parsed)


class CombinedObjective:
    """Several weighted objectives as one: terms keep their names (prefixed by the objective's
    name when more than one objective is combined and names would collide)."""

    def __init__(self, parts: list[tuple[str, float, Objective]]):
        self.parts = parts
        names = [t for _, _, obj in parts for t in obj.terms]
        self._prefix = len(set(names)) != len(names)
        self.terms = tuple(self._key(n, t) for n, _, obj in parts for t in obj.terms)
        self.min_batch = max(obj.min_batch for _, _, obj in parts)
        self.uses_head = any(obj.uses_head for _, _, obj in parts)

    def _key(self, name: str, term: str) -> str:
        return f"{name}/{term}" if self._prefix else term

    def weighted(self, batch: ObjectiveBatch) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """-> ({term: value}, sum of weight * value over every term, None if no term)."""
        terms, total = {}, None
        for name, weight, obj in self.parts:
            got = obj(batch)
            unknown = set(got) - set(obj.terms)
            if unknown:
                raise ConfigError(f"objective {name!r} returned terms {sorted(unknown)} that it does not declare "
                                  f"in .terms {obj.terms}: fix the objective")
            for term, value in got.items():
                terms[self._key(name, term)] = value
            part = sum(got.values())  # starts from int 0: 0 + t == t exactly
            if got:
                part = part if weight == 1.0 else weight * part
                total = part if total is None else total + part
        return terms, total


def build_objective(objective, settings: Mapping) -> CombinedObjective:
    """The objective selected by ``objective`` (see :func:`parse_objective`), built with ``settings``."""
    parsed = parse_objective(objective)
    parts = []
    for name, weight in parsed:
        obj = get_objective_spec(name).factory(settings)
        if not isinstance(obj, Objective):
            raise ConfigError(f"objective {name!r}'s factory returned {type(obj).__name__}, which lacks "
                              "terms/min_batch/__call__: fix the plugin")
        parts.append((name, weight, obj))
    return CombinedObjective(parts)


__all__ = ["Objective", "ObjectiveBatch", "ObjectiveSpec", "CombinedObjective", "DEFAULT_OBJECTIVE",
           "available_objectives", "build_objective", "get_objective_spec", "objective_label", "parse_objective"]
