"""Neural targets of one alignment: one dataset, or several over the same images (joint).

``align(model, layers, eeg=eeg_ds, fmri=fmri_ds)`` or ``align(..., targets={"eeg": a, "fmri": b},
target_weights={"fmri": 0.5})`` trains one backbone towards several datasets at once: each
target gets its own encoder head and its own copy of the objective's terms (history columns
``eeg/mse``, ``fmri/mse``, ...), and the neural loss is ``sum(weight * objective(target))``.

The datasets are joined into one :class:`~brainalign.data.dataset.NeuralDataset` whose flat
responses are the targets side by side (n_images, n_eeg + n_fmri) with a ``target`` channel
descriptor, so splitting, shuffling and the unpaired control treat every target alike; a
:class:`Target` records each one's columns.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np

from ..errors import ConfigError, DataError

KEYWORDS = ("eeg", "fmri", "data", "targets")  # align()'s data keywords


@dataclass(frozen=True)
class Target:
    """One neural target of a joint alignment: its columns ``[start, stop)`` of the joined
    (n_images, n_targets) responses, its loss weight and what it came from."""

    name: str
    start: int
    stop: int
    weight: float = 1.0
    modality: str = "other"
    response_shape: tuple = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "response_shape": list(self.response_shape)}


def resolve_targets(eeg=None, fmri=None, data=None, targets=None) -> dict:
    """{target name: NeuralDataset} from align()'s data keywords.

    One keyword with one dataset (a NeuralDataset or an (images, responses) pair) gives one
    target; ``eeg=`` and ``fmri=`` together, or ``targets={name: dataset, ...}``, give several.
    """
    given = {k: v for k, v in dict(eeg=eeg, fmri=fmri, data=data, targets=targets).items() if v is not None}
    if not given:
        raise ConfigError("no training data: pass eeg=..., fmri=..., data=... (a NeuralDataset or an (images, "
                          "responses) pair) or targets={name: dataset, ...} for a joint alignment")
    if "targets" in given and isinstance(given["targets"], Mapping):
        if len(given) > 1:
            raise ConfigError(f"pass the datasets either as targets={{name: dataset}} or as "
                              f"{'/'.join(k for k in given if k != 'targets')}=, not both")
        named = dict(given["targets"])
        if not named:
            raise ConfigError("targets={} is empty: give at least one {name: dataset}")
        bad = [k for k in named if not isinstance(k, str) or not k or "." in k or "/" in k]
        if bad:
            raise ConfigError(f"target name {bad[0]!r} must be a non-empty string without '.' or '/', e.g. 'eeg'")
        return {k: _as_dataset(v, k) for k, v in named.items()}
    if "data" in given and len(given) > 1:
        raise ConfigError(f"data= is the one-dataset keyword: with several datasets name them as eeg=/fmri= or "
                          f"targets={{name: dataset}} (got {', '.join(sorted(given))})")
    return {k: _as_dataset(v, k) for k, v in given.items()}


def _as_dataset(value, name: str):
    from ..data.dataset import NeuralDataset
    from ..data.images import ImageSet

    if isinstance(value, NeuralDataset):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        images, responses = value
        images = images if isinstance(images, ImageSet) else ImageSet.from_array(images)
        return NeuralDataset(images=images, responses=np.asarray(responses),
                             modality=name if name in ("eeg", "fmri") else "other")
    raise ConfigError(f"{name}= must be a NeuralDataset or an (images, responses) pair, got {type(value).__name__}")


def check_target_weights(weights, names) -> dict[str, float]:
    """{name: weight} for every target (missing ones weigh 1); ConfigError for unknown names,
    negative or non-finite weights, or all weights zero."""
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(names))
    if unknown:
        from ..errors import suggest

        raise ConfigError(f"target_weights names {unknown[0]!r}, which is not a target.{suggest(unknown[0], list(names))}"
                          f" Targets: {', '.join(names)}")
    out = {n: float(weights.get(n, 1.0)) for n in names}
    if any(not math.isfinite(w) or w < 0 for w in out.values()) or not any(out.values()):
        raise ConfigError(f"target weights must be finite and >= 0, at least one > 0; got {out}")
    return out


def check_weights_setting(weights) -> dict[str, float] | None:
    """AlignConfig's ``target_weights``: None or {name: weight} (names are checked against the
    data when align() runs); 'eeg=1,fmri=0.5' text is accepted (the CLI's form)."""
    if weights is None:
        return None
    if isinstance(weights, str):
        pairs = [p.partition("=") for p in weights.replace(" ", "").split(",") if p]
        if not pairs or any(not sep or not k for k, sep, _ in pairs):
            raise ConfigError(f"cannot read target weights {weights!r}: write name=weight pairs, e.g. eeg=1,fmri=0.5")
        weights = {k: v for k, _, v in pairs}
    if not isinstance(weights, Mapping):
        raise ConfigError(f"target_weights must be a {{target name: weight}} dict, got {type(weights).__name__}")
    out = {}
    for k, v in weights.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"weight of target {k!r} must be a number, got {v!r}") from None
        if not math.isfinite(out[str(k)]) or out[str(k)] < 0:
            raise ConfigError(f"weight of target {k!r} must be finite and >= 0, got {v!r}")
    return out or None


def join_targets(named: Mapping, weights: Mapping | None = None):
    """(dataset, targets): one dataset holding every target's flat responses side by side, and
    the :class:`Target` list (empty for a single target, whose dataset passes through)."""
    from ..data.dataset import NeuralDataset, check_same_images

    items = list(named.items())
    if len(items) == 1:
        return items[0][1], []
    weights = check_target_weights(weights, [n for n, _ in items])
    first = items[0]
    for name, d in items[1:]:
        check_same_images(first, (name, d), "target", "the datasets of a joint alignment")
        if d.stimulus_ids is not None and first[1].stimulus_ids is not None and \
                not np.array_equal(d.stimulus_ids.astype(str), first[1].stimulus_ids.astype(str)):
            raise DataError(f"target {name!r} lists other stimulus ids than target {first[0]!r}: order both "
                            "datasets by the same images")
    targets, start = [], 0
    for name, d in items:
        targets.append(Target(name, start, start + d.n_targets, weights[name], d.modality, d.response_shape))
        start += d.n_targets
    base = first[1]
    joined = NeuralDataset(
        images=base.images, responses=np.concatenate([d.targets() for _, d in items], axis=1),
        modality="+".join(d.modality for _, d in items), subject=base.subject,
        meta={"targets": {n: dict(d.meta) for n, d in items}},
        image_descriptors=dict(base.image_descriptors),
        channel_descriptors={"target": np.concatenate([[n] * d.n_targets for n, d in items])})
    return joined, targets
