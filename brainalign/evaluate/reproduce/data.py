"""The data of a ``reproduce`` run: training EEG, test EEG/fMRI and the images to attack.

Default: the synthetic brain (subjects 1..n_subjects have both EEG and fMRI). Real data: an EEG
source with a training split (e.g. ``things-eeg2:ROOT``) and optionally an fMRI source (e.g.
``shen:PATH``, its images via ``fmri_images``); robustness then attacks ``attack_images`` (a
folder of class subfolders gives ground-truth labels, as the paper's ImageNet images) or else
the EEG test images, scored against the unaligned model's own predictions (said in the report).
On the synthetic brain the test images' coarse classes (the classes the starting model was
trained on) are the ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from .settings import ReproduceSettings


@dataclass
class ReproduceData:
    """Per-subject datasets. ``eeg_test`` keeps raw repetitions (decoding RDMs); ``fmri_test`` may
    hold other subjects than the EEG (the paper: 10 EEG, 3 fMRI subjects) or be None."""

    description: str
    synthetic: bool
    subjects: list
    eeg_train: dict
    eeg_test: dict
    fmri_test: dict | None
    attack_images: object  # ImageSet (n, 3, H, W)
    attack_class_names: np.ndarray | None  # (n,) ground-truth class folder names, or None
    attack_source: str
    attack_labels: np.ndarray | None = None  # (n,) ground-truth class indices in the starting model's classes
    attack_n_classes: int | None = None  # the number of classes attack_labels index
    pretrain: tuple | None = None  # (ImageSet, labels) for the classifier stand-in (synthetic only)

    @property
    def test_images(self):
        """The EEG test images (variability is measured on them, as in the paper)."""
        return self.eeg_test[self.subjects[0]].images


def synthetic_data(s: ReproduceSettings) -> ReproduceData:
    from ..data_sources import synthetic_brain

    brain = synthetic_brain(f"synthetic:{s.seed}", **{**s.synthetic, "n_subjects": s.n_subjects})
    subjects = list(range(1, s.n_subjects + 1))
    images, classes = brain.images("test"), brain.labels("test")
    n_classes = len(set(brain.labels("training").tolist()))  # the starting model's classes (training.py)
    keep = _attack_subset(len(images), s)
    if classes.max() >= n_classes:  # a test class the classifier never learnt: no ground truth in its classes
        classes = None
    return ReproduceData(
        description=f"synthetic brain (seed {s.seed}, {brain.config.n_train_concepts} training / "
                    f"{brain.config.n_test_concepts} held-out test concepts, {len(images)} test images)",
        synthetic=True, subjects=subjects,
        eeg_train={k: brain.eeg(k, "training", zscore=s.zscore) for k in subjects},
        eeg_test={k: brain.eeg(k, "test", average_repetitions=False, zscore=s.zscore) for k in subjects},
        fmri_test={k: brain.fmri(k, "test") for k in subjects},
        attack_images=images.subset(keep) if keep is not None else images, attack_class_names=None,
        attack_source=f"synthetic:{s.seed} test images", pretrain=(brain.images("training"), brain.labels("training")),
        attack_labels=classes if classes is None or keep is None else classes[keep], attack_n_classes=n_classes)


def source_data(s: ReproduceSettings, eeg: str, *, fmri: str | None = None, fmri_images=None,
                attack_images: str | None = None, subjects=None) -> ReproduceData:
    """Data from source strings (e.g. 'things-eeg2:ROOT', 'shen:PATH')."""
    from ...data.registry import load_source
    from ..data_sources import default_subjects, load_fmri_subjects
    from ..image_sources import load_image_source

    subjects = list(subjects) if subjects else default_subjects(eeg, modality="eeg")[:s.n_subjects]
    if len(subjects) < 2:
        raise ConfigError(f"{eeg} gives {len(subjects)} subject(s): reproduce compares personalised models across "
                          "subjects (>= 5 for p < .05)")
    kw = {"zscore": s.zscore}
    train = {k: load_source(eeg, k, "training", modality="eeg", **kw) for k in subjects}
    test = {k: load_source(eeg, k, "test", modality="eeg", average_repetitions=False, **kw) for k in subjects}
    fmri_test = load_fmri_subjects(fmri, None, images=fmri_images) if fmri else None
    if attack_images:
        src = load_image_source(attack_images, seed=s.seed)
        images, names, where = src.images, src.class_names, src.source
    else:
        images, names, where = test[subjects[0]].images, None, f"{eeg} test images"
    keep = _attack_subset(len(images), s)
    if keep is not None:
        images, names = images.subset(keep), None if names is None else names[keep]
    return ReproduceData(description=f"{eeg}" + (f" + {fmri}" if fmri else ""), synthetic=False, subjects=subjects,
                         eeg_train=train, eeg_test=test, fmri_test=fmri_test, attack_images=images,
                         attack_class_names=names, attack_source=where)


def _attack_subset(n: int, s: ReproduceSettings):
    """Seeded subset of image indices (in order) when max_attack_images < n, else None."""
    if s.max_attack_images is None or s.max_attack_images >= n:
        return None
    return np.sort(np.random.default_rng(s.seed).permutation(n)[:s.max_attack_images])
