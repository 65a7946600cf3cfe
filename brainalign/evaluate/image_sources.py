"""Image SOURCE strings for robustness and variability: synthetic images or image folders."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


@dataclass
class LabelledImages:
    """images: ImageSet (n images); class_names: (n,) folder/concept name per image or None;
    class_labels: (n,) ground-truth class index per image in a label space of n_label_classes
    classes (the synthetic brain's coarse classes), or None."""

    images: object
    class_names: np.ndarray | None
    source: str
    synthetic: bool = False
    class_labels: np.ndarray | None = None
    n_label_classes: int | None = None


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def load_image_source(source: str | None, *, split: str = "test", image_size: int = 224,
                      max_images: int | None = None, seed: int = 0) -> LabelledImages:
    """A registered data source's ``split`` images ('synthetic[:SEED]', 'things-eeg2:ROOT' ...:
    through the data registry, with their concepts as class names), a folder of images, or a
    folder of class subfolders (ImageFolder layout: ``root/<class>/<image>``).

    ``max_images`` keeps a seeded random subset (in the original order).
    """
    from ..data.images import ImageSet

    dataset = _dataset_images(source, split)
    if dataset is not None:
        names = None if dataset.concepts is None else np.asarray(dataset.concepts).astype(str)
        from .data_sources import is_synthetic_data

        out = LabelledImages(dataset.images, names, source or "synthetic", synthetic=is_synthetic_data(dataset))
        out.class_labels, out.n_label_classes = _synthetic_classes(dataset, split)
    else:
        root = Path(source).expanduser()
        if not root.exists():
            raise DataError(f"image source {source!r} not found: give 'synthetic', a folder of images, or a folder "
                            "of class subfolders (root/<class>/<image>.jpg)")
        if not root.is_dir():
            raise DataError(f"image source {source} is a file: give a folder of images or of class subfolders")
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and _image_files(p))
        if subdirs:
            files, names = [], []
            for d in subdirs:
                fs = _image_files(d)
                files += fs
                names += [d.name] * len(fs)
            out = LabelledImages(ImageSet.from_paths(files, size=image_size), np.asarray(names), str(root))
        else:
            files = _image_files(root)
            if not files:
                raise DataError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in {root} or its subfolders")
            out = LabelledImages(ImageSet.from_paths(files, size=image_size), None, str(root))
    n = len(out.images)
    if max_images is not None and max_images < n:
        if max_images < 1:
            raise ConfigError(f"--max-images must be >= 1, got {max_images}")
        keep = np.sort(np.random.default_rng(seed).permutation(n)[:max_images])
        out.images = out.images.subset(keep)
        out.class_names = None if out.class_names is None else out.class_names[keep]
        out.class_labels = None if out.class_labels is None else out.class_labels[keep]
    return out


def _synthetic_classes(dataset, split: str):
    """(class index per image, number of classes) of a synthetic-brain dataset, else (None, None)."""
    meta = getattr(dataset, "meta", None) or {}
    if meta.get("source") != "synthetic" or "seed" not in meta:
        return None, None
    from ..data.synthetic import cached_brain

    brain = cached_brain(int(meta["seed"]))
    labels = brain.labels(split)
    if len(labels) != len(dataset.images):  # not this brain's images: no ground truth to give
        return None, None
    return np.asarray(labels), len(brain.class_names())


def _dataset_images(source, split: str):
    """The first subject's ``split`` dataset of a registered data source, or None for a folder."""
    from ..data.registry import available_datasets, parse_source

    source = "synthetic" if source is None else source
    text = str(source).strip()
    names = {n for spec in available_datasets() for n in spec.names}
    if text.partition(":")[0] not in names or Path(text).expanduser().exists():
        return None
    spec, location = parse_source(text, first=True)
    subject = (spec.available_subjects(location) or [1])[0]
    return spec.loader(location, subject, split)


def folder_labels(class_names: np.ndarray, n_classes: int) -> np.ndarray:
    """Class folder names -> model output indices.

    Integer folder names are used as indices; WordNet ids (n01440764 ...) map to ImageNet-1k
    indices (timm's ImageNetInfo) for 1000-way models; otherwise the sorted folder names
    are indices 0..k-1, which must then cover the model's n_classes exactly.
    """
    uniq = sorted(set(class_names.tolist()))
    if all(re.fullmatch(r"\d+", u) for u in uniq):
        labels = class_names.astype(int)
    elif all(re.fullmatch(r"n\d{8}", u) for u in uniq) and n_classes == 1000:
        from timm.data import ImageNetInfo

        index = {w: i for i, w in enumerate(ImageNetInfo().label_names())}
        unknown = [u for u in uniq if u not in index]
        if unknown:
            raise DataError(f"folder(s) {unknown[:3]} are not ImageNet-1k WordNet ids")
        labels = np.array([index[c] for c in class_names])
    else:
        if len(uniq) != n_classes:
            raise ConfigError(f"the image folder has {len(uniq)} class folders but the model has {n_classes} "
                              "outputs, so folder names cannot be mapped to its classes: name the folders by "
                              "class index (0, 1, ...) or ImageNet WordNet id, or use --labels model (labels = "
                              "the reference model's own clean predictions, not ground truth)")
        index = {u: i for i, u in enumerate(uniq)}
        labels = np.array([index[c] for c in class_names])
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ConfigError(f"folder labels range {labels.min()}..{labels.max()} outside the model's {n_classes} classes")
    return labels
