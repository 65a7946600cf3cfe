"""``AlignedModel``: a backbone aligned with neural data, as one ``nn.Module``.

    aligned = brainalign.align(model, layers, eeg=dataset)     # -> AlignedModel
    aligned.to("cuda")                                         # backbone and head(s) move together
    aligned.predict(images)                                    # (n, n_targets) generated responses
    aligned.save("aligned.pt");  AlignedModel.load("aligned.pt")
    aligned.save_pretrained("my-model")                        # model.safetensors + config.json + README.md

Its submodules are ``backbone`` and ``heads`` (one encoder head per neural target), so
``state_dict()``, ``.to()``, ``.train()`` and ``.eval()`` cover everything. Calling it runs
the backbone (logits or embedding), and layer taps (``LayerTap``, ``extract_features``)
read the backbone's own layer names ('V1', 'IT', ...), so it drops in wherever the bare
backbone was used.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from collections.abc import Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .checkpoint import DEFAULT_HEAD, AlignedParts, save_aligned_file
from .head import EncoderHead


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=3)


class AlignedModel(nn.Module):
    """A backbone aligned with neural data, its encoder head(s), config and training record.

    Args:
        backbone: the aligned network (same class, forward and layer names as the start model).
        head: the trained :class:`EncoderHead`, or ``{target name: head}`` for several targets.
        history: one dict per epoch (training means, ``val_spearman``, ...).
        config: JSON-able settings, layers, data description, versions and fingerprint.
        best_epoch: 1-based epoch whose weights the model holds.
        out_dir: the run folder it was trained in, or None.
        layers: the tapped backbone layers (default: ``config["layers"]``).

    Attributes:
        backbone, heads (``nn.ModuleDict``), layers, config, history, best_epoch, out_dir.
        ``model`` is the backbone (the name :func:`align` results always had); ``head`` the
        only head.
    """

    #: LayerTap / spec_of look through to this attribute, so layer names stay the backbone's
    tap_root_attr = "backbone"

    def __init__(self, backbone: nn.Module | None = None, head: nn.Module | Mapping[str, nn.Module] | None = None,
                 history: list | None = None, config: dict | None = None, best_epoch: int | None = None,
                 out_dir: str | Path | None = None, layers: list | None = None, *, model: nn.Module | None = None):
        super().__init__()
        if model is not None:  # the keyword of the former AlignResult dataclass
            if backbone is not None:
                raise ConfigError("pass the backbone once (backbone=..., or model=... as before), not both")
            backbone = model
        if not isinstance(backbone, nn.Module):
            raise ConfigError(f"AlignedModel needs the aligned backbone (an nn.Module), got {type(backbone).__name__}")
        heads = head if isinstance(head, Mapping) else {DEFAULT_HEAD: head}
        if not heads or not all(isinstance(h, nn.Module) for h in heads.values()):
            raise ConfigError("AlignedModel needs its trained head (an EncoderHead) or {target name: head}")
        self.backbone = backbone
        self.heads = nn.ModuleDict(dict(heads))
        self.config = dict(config or {})
        self.history = list(history or [])
        self.best_epoch = best_epoch if best_epoch is not None else self.config.get("best_epoch")
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.layers = list(layers if layers is not None else self.config.get("layers") or [])

    # -- the backbone's face -------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The backbone's output (logits or embedding) for preprocessed images."""
        return self.backbone(*args, **kwargs)

    @property
    def model(self) -> nn.Module:
        """The aligned backbone (same as :attr:`backbone`)."""
        return self.backbone

    @property
    def head(self) -> nn.Module:
        """The encoder head of a single-target alignment (several targets: use ``heads[name]``)."""
        if len(self.heads) != 1:
            raise ConfigError(f"this model has {len(self.heads)} heads ({', '.join(self.heads)}): "
                              "use aligned.heads[name], or aligned.predict(images, target=name)")
        return next(iter(self.heads.values()))

    @property
    def brainalign_head(self) -> nn.Module:
        _deprecated("load_aligned(...).brainalign_head", "aligned.head (load_aligned returns an AlignedModel)")
        return self.head

    @property
    def brainalign_config(self) -> dict:
        _deprecated("load_aligned(...).brainalign_config", "aligned.config (load_aligned returns an AlignedModel)")
        return self.config

    @property
    def spec(self):
        """The backbone's BackboneSpec (None for custom modules)."""
        from ..models.registry import spec_of

        return spec_of(self.backbone)

    # -- generated responses -------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images, batch_size: int = 64, target: str | None = None) -> torch.Tensor:
        """Generated neural responses for (n, 3, H, W) images in [0, 1] -> (n, n_targets) on the CPU.

        ``target`` names the head when the model has several (default: the only one).
        """
        head = self.head if target is None else self._head_named(target)
        return predict_responses(self.backbone, head, self.layers, images, self.config, batch_size)

    def _head_named(self, name: str) -> nn.Module:
        if name not in self.heads:
            raise ConfigError(f"no head named {name!r}: this model has {', '.join(self.heads)}")
        return self.heads[name]

    # -- files ---------------------------------------------------------------------------
    def parts(self) -> AlignedParts:
        """Everything a file stores: weights, head configs, config and history."""
        cfg = dict(self.config)
        if self.best_epoch is not None:
            cfg.setdefault("best_epoch", self.best_epoch)
        cfg.setdefault("layers", self.layers)
        return AlignedParts(backbone=self.backbone.state_dict(),
                            heads={k: h.state_dict() for k, h in self.heads.items()},
                            head_configs={k: _head_config(h, k) for k, h in self.heads.items()},
                            config=cfg, history=self.history)

    def save(self, path: str | Path) -> Path:
        """Save weights + head(s) + config + history (``.pt``, or ``.safetensors``), atomically."""
        return save_aligned_file(path, self.parts())

    def save_pretrained(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write a hub-style folder: ``model.safetensors`` + ``config.json`` + ``README.md``.

        The folder appears complete or not at all; an existing non-empty folder is refused
        unless ``overwrite=True``. See :func:`brainalign.alignment.hub.save_pretrained`.
        """
        from .hub import save_pretrained

        return save_pretrained(self.parts(), directory, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None, device=None) -> "AlignedModel":
        """Load a file from :meth:`save`, a run folder, a :meth:`save_pretrained` folder or
        ``hf-hub:owner/name[@revision]``; see :func:`load_aligned`."""
        return load_aligned(path, model=model, device=device)

    from_pretrained = load

    def extra_repr(self) -> str:
        return f"layers={self.layers}, heads={list(self.heads)}, best_epoch={self.best_epoch}"


def _head_config(head: nn.Module, name: str) -> dict:
    if not hasattr(head, "config"):
        raise ConfigError(f"head {name!r} ({type(head).__name__}) cannot be saved: it has no config(); "
                          "use an EncoderHead")
    return head.config()


# --- saving / loading ------------------------------------------------------------------
def save_aligned(result: AlignedModel | nn.Module, path: str | Path, *, head: nn.Module | None = None,
                 config: dict | None = None) -> Path:
    """Save an aligned model: backbone weights + head weights + JSON config (+ sha256).

    ``path`` ending in ``.safetensors`` writes safetensors (config in its metadata); anything
    else a torch file that loads with ``torch.load(weights_only=True)``. Pass an
    :class:`AlignedModel`, or a backbone together with ``head=`` and ``config=``.
    """
    if not isinstance(result, AlignedModel):
        if head is None or config is None:
            raise ConfigError("save_aligned needs an AlignedModel, or a backbone with head= and config=")
        result = AlignedModel(result, head, config=config)
    return result.save(path)


def load_aligned(path: str | Path, model: nn.Module | None = None, device=None) -> AlignedModel:
    """Load an aligned model as an :class:`AlignedModel` (in eval mode, on ``device``).

    ``path``: a file written by :meth:`AlignedModel.save` (any brainalign version), a run
    folder of ``align(out_dir=...)`` / ``brainalign align``, a :meth:`~AlignedModel.save_pretrained`
    folder, or ``hf-hub:owner/name[@revision]`` (needs ``pip install brainalign[hub]`` and a
    network, or the Hugging Face cache).

    With ``model=None`` the backbone is rebuilt from the registry by the stored name
    (``pretrained=False``, then the saved weights); pass ``model`` (loaded into in place)
    for a custom, unregistered module.

    Raises CheckpointError for missing, corrupted or truncated files, weights of another
    architecture, or a config.json that does not describe the weights.
    """
    from ..device import resolve_device
    from ..models.registry import attach_spec, load_backbone, spec_of
    from . import hub

    dev = resolve_device(device)
    parts, where = hub.read_aligned(path)
    config = parts.config
    if model is None:
        if not config.get("spec_name"):
            raise CheckpointError(f"{where} holds a custom model ({config.get('model_class')}) that the registry "
                                  "cannot rebuild: pass model=<an instance of that class>")
        model = load_backbone(config["spec_name"], pretrained=False, device="cpu")
    elif isinstance(model, AlignedModel):
        model = model.backbone
    resize_linears_to(model, parts.backbone)
    try:
        model.load_state_dict(parts.backbone)
    except RuntimeError as exc:
        raise CheckpointError(f"{where} holds weights of {config.get('backbone')!r} that do not fit the "
                              f"{type(model).__name__} given ({str(exc).splitlines()[0]}); pass the matching "
                              "model") from exc
    heads = {}
    for name, sd in parts.heads.items():
        if name not in parts.head_configs:
            raise CheckpointError(f"{where} is corrupted: head {name!r} has no stored config; save it again")
        heads[name] = EncoderHead.from_config(parts.head_configs[name])
        try:
            heads[name].load_state_dict(sd)
        except RuntimeError as exc:
            raise CheckpointError(f"{where} is corrupted: head {name!r} does not match its config "
                                  f"({str(exc).splitlines()[0]}); save it again") from exc
    if spec_of(model) is None and config.get("spec_name"):
        from ..models.registry import get_backbone_spec

        attach_spec(model, get_backbone_spec(config["spec_name"]))
    aligned = AlignedModel(model, heads, history=parts.history, config=config,
                           best_epoch=config.get("best_epoch"), layers=config.get("layers"))
    return aligned.to(dev).eval()


def resize_linears_to(model: nn.Module, state_dict: dict) -> None:
    """Replace Linear layers whose saved weights have another shape (e.g. a classifier resized
    to the synthetic concepts by :func:`~brainalign.alignment.classifier.train_classifier`)."""
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, nn.Linear):
            continue
        w = state_dict.get(f"{name}.weight")
        if w is None or tuple(w.shape) == tuple(mod.weight.shape):
            continue
        new = nn.Linear(w.shape[1], w.shape[0], bias=f"{name}.bias" in state_dict)
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)


@torch.no_grad()
def predict_responses(model: nn.Module, head: nn.Module, layers, images, config: dict,
                      batch_size: int = 64) -> torch.Tensor:
    """Generated responses: (n, 3, H, W) images in [0, 1] -> (n, n_targets) on the CPU."""
    from ..data.images import ImageSet
    from ..models.spec import Preprocessing
    from ..taps import LayerTap

    images = images if isinstance(images, ImageSet) else ImageSet.from_array(images)
    pp = config.get("preprocessing")
    prep = Preprocessing.from_dict(pp) if isinstance(pp, dict) else None
    if isinstance(pp, str):
        warnings.warn("a custom preprocessing callable cannot be restored from the config; images are "
                      "passed unchanged", stacklevel=2)
    dev = next(model.parameters()).device
    was, hwas = model.training, head.training
    model.eval(), head.eval()
    outs = []
    try:
        tap = LayerTap(model, layers, detach=True)
        for s in range(0, len(images), batch_size):
            x = images.load(list(range(s, min(len(images), s + batch_size)))).to(dev)
            tap.run(prep(x) if prep is not None else x)
            outs.append(head(tap.outputs).float().cpu())
    finally:
        model.train(was), head.train(hwas)
    return torch.cat(outs)
