"""What ``brainalign reproduce`` trains and measures: the default (synthetic, < 15 min on 2 cores),
``quick`` (tests: seconds) and ``paper`` (the ReAlnet paper's training settings)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ...errors import ConfigError
from ...validation import check_int, check_seed

HEADLINE_BETA = 100.0
# per subject: the headline model, the two controls and the beta sweep (the headline model is beta 100)
VARIANTS = ("aligned", "unpaired", "w/o contrastive")
PAPER = {"zscore": "global", "align_epochs": 30, "align_lr": 2e-5, "batch_size": 16, "betas": (1.0, 10.0, 100.0, 1000.0),
         "seed": 2023}


def beta_label(beta: float) -> str:
    """The model label of a beta-sweep model ('beta=10'); beta 100 is the headline 'aligned' model."""
    return "aligned" if float(beta) == HEADLINE_BETA else f"beta={float(beta):g}"


@dataclass
class ReproduceSettings:
    """Settings of one ``reproduce`` run (every field is recorded in results.json).

    Attributes:
        n_subjects: subjects aligned (one personalised model per variant each); the cluster test
            over whole subjects needs >= 5 to reach p < .05 (2 / 2^n for a two-sided exact test).
        betas: the beta sweep; the model at beta 100 is the headline 'aligned' model.
        zscore: EEG scaling ('feature': per channel x time, 'global': one mean/std per subject as
            the paper's code, None).
        window_ms: the window of the headline EEG scores (the paper's 50-200 ms).
        eps / attack_eps: FGSM strengths (pixel units) and the one Fig. 4 reports.
        max_attack_images: images attacked per model (a seeded subset; None = all test images).
        synthetic: SyntheticConfig overrides for the default data.
    """

    seed: int = 0
    n_subjects: int = 6
    backbone: str = "cornet_tiny"
    pretrained: bool = False
    weights: str | None = None
    classifier_epochs: int = 8
    classifier_lr: float = 2e-3
    align_epochs: int = 3
    align_lr: float = 1e-3
    batch_size: int = 16
    betas: tuple = (1.0, 10.0, 100.0, 1000.0)
    zscore: str | None = "feature"
    n_permutations: int = 1000
    window_ms: tuple = (50.0, 200.0)
    eps: tuple = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06)
    attack_eps: float = 0.02
    max_attack_images: int | None = 64
    paper_settings: bool = False
    synthetic: dict = field(default_factory=lambda: {"train_images_per_concept": 8, "n_test_concepts": 16,
                                                     "test_images_per_concept": 4})

    def __post_init__(self):
        check_seed(self.seed)
        check_int("subjects", self.n_subjects, minimum=2,
                  fix="reproduce compares personalised models across subjects (>= 5 for p < .05)")
        check_int("epochs", self.align_epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=2, fix="the contrastive term needs >= 2 images a batch")
        check_int("n_permutations", self.n_permutations, minimum=1)
        self.betas = tuple(sorted({float(b) for b in self.betas}))
        if HEADLINE_BETA not in self.betas or any(not b > 0 for b in self.betas):
            raise ConfigError(f"betas must be > 0 and include {HEADLINE_BETA:g} (the headline model), got {self.betas}")
        if self.attack_eps not in self.eps:
            raise ConfigError(f"attack_eps {self.attack_eps} must be one of eps {self.eps}")
        if self.zscore not in ("feature", "global", None):
            raise ConfigError(f"zscore must be 'feature', 'global' or None, got {self.zscore!r}")

    @classmethod
    def quick(cls, **kw) -> "ReproduceSettings":
        """Tiny sizes that run every stage in seconds (tests): too small to show any effect."""
        base = dict(n_subjects=3, classifier_epochs=1, align_epochs=1, n_permutations=50, eps=(0.0, 0.02),
                    max_attack_images=8, betas=(10.0, 100.0),
                    synthetic={"n_train_concepts": 6, "train_images_per_concept": 3, "n_test_concepts": 4,
                               "test_images_per_concept": 3, "image_size": 32})
        base.update(kw)
        return cls(**base)

    def with_paper_settings(self) -> "ReproduceSettings":
        """The paper's choices (see ``PAPER``): global z-scoring, 30 epochs, lr 2e-5, batch 16, seed 2023."""
        return replace(self, paper_settings=True, **PAPER)

    @property
    def sweep_labels(self) -> list[str]:
        return [beta_label(b) for b in self.betas]

    @property
    def labels(self) -> list[str]:
        """Every trained variant's label, the headline model first."""
        return list(VARIANTS) + [lab for lab in self.sweep_labels if lab != "aligned"]

    def to_dict(self) -> dict:
        return asdict(self)
