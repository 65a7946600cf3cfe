"""``AlignConfig``: the settings of one alignment run, in one frozen object.

``align(model, eeg=ds, beta=10)`` builds one from its keywords (``align(..., config=cfg)``
takes one whole); it is checked when built (scikit-learn style: bad values fail before any
work, with the fix), saved as ``config.json["settings"]`` and rebuilt from it::

    cfg = AlignConfig(beta=10, objective="realnet+0.5*rsa")
    assert AlignConfig.from_dict(cfg.to_dict()) == cfg
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import ConfigError
from ..validation import check_float, check_int, check_seed
from .losses import DEFAULT_RANK_TEMPERATURE
from .trainer import OPTIMIZERS



def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class AlignConfig:
    """Training settings (paper defaults). ``fields(AlignConfig)[i].metadata['help']`` documents each."""

    beta: float = _f(100.0, "weight of the neural term (paper: 1, 10, 100, 1000)")
    epochs: int = _f(30, "training epochs")
    batch_size: int = _f(16, "images per step (per process under torchrun)")
    lr: float = _f(2e-5, "learning rate")
    optimizer: str = _f("adam", "adam, adamw or sgd")
    seed: int = _f(2023, "seed of the head's initialisation, shuffling and validation split")
    val_fraction: float = _f(0.1, "fraction of training concepts held out to pick the best epoch (0: last epoch)")
    task_loss: str = _f("auto", "auto, ce, kl, cosine or none")
    contrastive: bool = _f(True, "include the contrastive Spearman term of realnet")
    unpaired: bool = _f(False, "control: each image trained with another image's responses")
    head_hidden: int = _f(128, "width of each layer encoder of the head")
    head_pooling: object = _f("flatten", "flatten, avg or adaptive<k> (or {layer: pooling})")
    rank_temperature: float = _f(DEFAULT_RANK_TEMPERATURE, "soft-rank temperature (units of the row's std)")
    objective: object = _f("realnet", "realnet, rsa, cka, a plugin's, or a weighted sum such as realnet+0.5*rsa")
    amp: object = _f(None, "mixed precision: bf16, fp16, auto or None")
    train_backbone: bool = _f(True, "False: frozen backbone, head trained as a read-out")
    channels_last: bool = _f(False, "channels_last memory format")
    compile: bool = _f(False, "torch.compile the step")
    target_weights: object = _f(None, "joint alignment: {target name: weight} of each dataset's loss (default 1 each)")

    def __post_init__(self):
        from .objectives import objective_label, parse_objective

        if not (isinstance(self.epochs, int) and not isinstance(self.epochs, bool) and self.epochs >= 1):
            raise ConfigError(f"epochs must be a positive integer, got {self.epochs!r}")
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("head_hidden", self.head_hidden, minimum=1)
        check_seed(self.seed)
        check_float("lr", self.lr, minimum=0, exclusive_minimum=True)
        check_float("beta", self.beta, minimum=0)
        check_float("rank_temperature", self.rank_temperature, minimum=0, exclusive_minimum=True)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
        if not 0 <= check_float("val_fraction", self.val_fraction) < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        from .tasks import TASK_LOSSES

        if self.task_loss not in TASK_LOSSES:
            raise ConfigError(f"unknown task_loss {self.task_loss!r}: use one of {', '.join(TASK_LOSSES)}")
        if self.contrastive and self.batch_size < 2 and "realnet" in str(self.objective):
            raise ConfigError("batch_size=1 leaves the contrastive term undefined (it compares each image with "
                              "the other images of its batch): use batch_size >= 2 or contrastive=False")
        from .targets import check_weights_setting

        object.__setattr__(self, "target_weights", check_weights_setting(self.target_weights))
        # canonical objective text, so equal selections compare (and save) equal
        object.__setattr__(self, "objective", objective_label(parse_objective(self.objective)))
        for name in ("beta", "lr", "val_fraction", "rank_temperature"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("contrastive", "unpaired", "train_backbone", "channels_last", "compile"):
            object.__setattr__(self, name, bool(getattr(self, name)))

    def to_dict(self) -> dict:
        """JSON-able settings (what config.json's "settings" holds)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AlignConfig":
        """Rebuild from :meth:`to_dict` output; keys of other versions that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "AlignConfig":
        return replace(self, **changes)


def config_field_names() -> list[str]:
    return [f.name for f in fields(AlignConfig)]


def config_default(name: str):
    """The default of setting ``name`` (what the CLI's option defaults to)."""
    return AlignConfig.__dataclass_fields__[name].default


def config_help(name: str) -> str:
    """The one-line help of setting ``name`` with its default (the CLI's option help)."""
    return f"{AlignConfig.__dataclass_fields__[name].metadata['help']} (default {config_default(name)})"
