"""Layer taps: forward hooks that collect named modules' outputs.

    with LayerTap(model, ["V1", "IT"], stop_after_last=True) as tap:
        tap.run(images)              # (n, 3, H, W) preprocessed
        tap.outputs["IT"]            # (n, 512, 7, 7)

Each tapped layer keeps its output of the latest forward pass, once (a module called
several times in one pass, e.g. inside a recurrent block, keeps its last call; tap the
block itself to get its final state). Tuple/list outputs keep their first tensor. Outputs
are batch-first: modules that run sequence-first (an open_clip transformer with
``batch_first=False``, or older open_clip versions) are transposed (L, N, D) -> (N, L, D).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from .errors import ConfigError, LayerError, suggest

# Attribute a plugin may set on a module whose outputs are (L, N, D) sequence-first.
SEQ_FIRST_ATTR = "_brainalign_seq_first"


class _StopForward(Exception):
    """Raised inside a hook to abort the forward pass after the deepest requested layer."""


def tap_root(model: nn.Module) -> nn.Module:
    """The module whose layer names are tapped: a wrapper naming one in ``tap_root_attr``
    (an AlignedModel: its backbone, so 'V1' stays 'V1'), else ``model`` itself."""
    attr = getattr(type(model), "tap_root_attr", None)
    root = getattr(model, attr, None) if isinstance(attr, str) else None
    return root if isinstance(root, nn.Module) else model


def layer_names(model: nn.Module) -> list[str]:
    """All tappable module names of ``model`` (``named_modules`` order, root excluded)."""
    return [name for name, _ in tap_root(model).named_modules() if name]


def validate_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    """Check that every name in ``layers`` is a module of ``model``; return them de-duplicated.

    Raises LayerError naming the unknown layer and the closest valid names.
    """
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise LayerError("no layers given: pass at least one module name (see 'brainalign layers BACKBONE')")
    modules = dict(tap_root(model).named_modules())
    for name in layers:
        if not isinstance(name, str):
            raise LayerError(f"layer names must be strings, got {name!r}")
        if not name or name not in modules:
            spec = _spec(model)
            choices = list(spec.labels()) + list(spec.layers) if spec else []
            choices += layer_names(model)
            hint = suggest(name, list(dict.fromkeys(choices)))
            raise LayerError(f"unknown layer {name!r} in {type(model).__name__}.{hint} "
                             "List the layers with 'brainalign layers BACKBONE' or "
                             "[n for n, _ in model.named_modules()]")
    return list(dict.fromkeys(layers))


def resolve_layers(model: nn.Module, layers: str | Iterable[str] | None = None) -> list[str]:
    """Module names to tap: ``None`` -> the backbone spec's default layers.

    Names may be module names or the spec's display labels (e.g. 'V1'..'IT', matched
    case-insensitively). Raises ConfigError for ``None`` on a model without a spec, and
    LayerError for unknown names.
    """
    if not isinstance(model, nn.Module):  # e.g. a backbone name passed where a model is expected
        raise ConfigError(f"model must be a torch nn.Module, got {type(model).__name__} {model!r:.60}; "
                          "load a registered backbone with brainalign.load_backbone(name)")
    spec = _spec(model)
    if layers is None:
        if spec is None:
            raise ConfigError(f"{type(model).__name__} was not loaded with brainalign.load_backbone, so it "
                              "has no default layers: pass layers=[...] (module names from "
                              "model.named_modules())")
        return validate_layers(model, spec.layers)
    if isinstance(layers, str):
        layers = [layers]
    modules = dict(tap_root(model).named_modules())
    labels = {}
    if spec is not None:
        labels = {lab.lower(): name for lab, name in zip(spec.labels(), spec.layers)}
    resolved = []
    for name in layers:
        if isinstance(name, str) and name not in modules and name.lower() in labels:
            name = labels[name.lower()]
        resolved.append(name)
    return validate_layers(model, resolved)


def _spec(model: nn.Module):
    from .models.registry import spec_of

    return spec_of(model)


def sequence_first_modules(model: nn.Module) -> set[str]:
    """Names of modules whose outputs are (L, N, D) rather than batch-first (N, L, D).

    Marked explicitly (``SEQ_FIRST_ATTR``) or detected: in a transformer with a
    ``resblocks`` list and ``batch_first=False`` the blocks (and everything inside them)
    run sequence-first; a transformer with ``resblocks`` and no ``batch_first`` attribute
    (open_clip < 2.2x) receives (L, N, D) itself, so it and its children are sequence-first.
    """
    out = set()
    for name, module in model.named_modules():
        if getattr(module, SEQ_FIRST_ATTR, False):
            out.update(f"{name}.{sub}" if name and sub else (name or sub)
                       for sub, _ in module.named_modules())
            continue
        blocks = getattr(module, "resblocks", None)
        if not isinstance(blocks, nn.ModuleList):
            continue
        bf = getattr(module, "batch_first", None)
        if bf is False:
            prefix = f"{name}.resblocks" if name else "resblocks"
            out.update(f"{prefix}.{sub}" if sub else prefix for sub, _ in blocks.named_modules())
        elif bf is None and _is_old_openclip_transformer(module):
            out.update(f"{name}.{sub}" if name and sub else (name or sub) for sub, _ in module.named_modules())
    out.discard("")
    return out


def _is_old_openclip_transformer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("open_clip") and type(module).__name__ == "Transformer"


def _first_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(output, dict):
        for item in output.values():
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


class LayerTap:
    """Context manager collecting the outputs of named modules of ``model``.

    Args:
        model: any ``nn.Module``.
        layers: module names (or spec labels, see :func:`resolve_layers`); validated on
            construction, before anything runs.
        detach: store ``output.detach()`` (no autograd graph kept) instead of the tensor.
        stop_after_last: make :meth:`run` abort the forward pass once every requested
            layer has produced its final output (saves the rest of the network). The
            first :meth:`run` goes through the whole network to learn the call order; later
            runs stop at the last call of the deepest layer.

    Attributes:
        outputs: dict layer -> tensor (batch-first) from the latest forward pass.
    """

    def __init__(self, model: nn.Module, layers: str | Iterable[str] | None, *, detach: bool = False,
                 stop_after_last: bool = False):
        self.model = model
        self.layers = resolve_layers(model, layers)
        self.detach = detach
        self.stop_after_last = stop_after_last
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []
        self._seq_first = sequence_first_modules(tap_root(model)) & set(self.layers)
        self._stop_at: tuple[str, int] | None = None  # (layer, call count) of the last hook call
        self._calls: dict[str, int] = {}
        self._order: list[str] = []
        self._armed = False  # True only inside run(): a plain model(x) never gets aborted

    # -- hooks -------------------------------------------------------------------------
    def _make_hook(self, name: str):
        def hook(module, inputs, output):
            t = _first_tensor(output)
            if t is None:
                return
            if name in self._seq_first and t.ndim == 3:
                t = t.transpose(0, 1)
            self.outputs[name] = t.detach() if self.detach else t
            self._calls[name] = self._calls.get(name, 0) + 1
            self._order.append(name)
            if self._armed and self._stop_at == (name, self._calls[name]):
                raise _StopForward
        return hook

    def attach(self) -> "LayerTap":
        if self._handles:
            return self
        modules = dict(tap_root(self.model).named_modules())
        try:
            for name in self.layers:
                self._handles.append(modules[name].register_forward_hook(self._make_hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> "LayerTap":
        return self.attach()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.remove()

    def clear(self) -> None:
        self.outputs = {}
        self._calls = {}
        self._order = []

    # -- running -----------------------------------------------------------------------
    def run(self, *args, **kwargs):
        """Run ``model(*args, **kwargs)`` with fresh outputs; return the model output.

        With ``stop_after_last`` the pass may end early and ``None`` is returned; use
        :attr:`outputs`. Works outside the ``with`` block too (hooks attached for the call).
        """
        attached_here = not self._handles
        if attached_here:
            self.attach()
        self.clear()
        try:
            self._armed = self.stop_after_last and self._stop_at is not None
            try:
                result = self.model(*args, **kwargs)
            except _StopForward:
                return None
            finally:
                self._armed = False
            missing = [n for n in self.layers if n not in self.outputs]
            if missing:
                raise LayerError(f"layers {missing} were not called during the forward pass of "
                                 f"{type(self.model).__name__} (unused modules); tap other layers")
            if self.stop_after_last and self._stop_at is None and self._order:
                last = self._order[-1]
                self._stop_at = (last, self._calls[last])
            return result
        finally:
            if attached_here:
                self.remove()


def module_output_shapes(model: nn.Module, *inputs) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    """Run ``model(*inputs)`` once, hooking every module: name -> (output shape, number of calls).

    Shapes are batch-first (sequence-first modules transposed) and include the batch
    dimension; the shape is the module's last call (e.g. a recurrent step's final state);
    modules not called get ``(None, 0)``. Hooks are removed afterwards, also on errors.
    """
    seq_first = sequence_first_modules(tap_root(model))
    names = layer_names(model)
    found: dict[str, tuple[tuple[int, ...] | None, int]] = {n: (None, 0) for n in names}

    def make(name):
        def hook(module, inp, out):
            t = _first_tensor(out)
            shape = None
            if t is not None:
                shape = tuple(t.transpose(0, 1).shape if name in seq_first and t.ndim == 3 else t.shape)
            found[name] = (shape, found[name][1] + 1)
        return hook

    modules = dict(tap_root(model).named_modules())
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(make(name)))
        with torch.inference_mode():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return found
