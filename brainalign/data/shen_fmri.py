"""Loader for the Shen et al. 2019 fMRI data (Kamitani lab BData HDF5 files, via bdpy).

Needs the optional extra: ``pip install brainalign[fmri]`` (bdpy, h5py). A file such as
``sub-01_perceptionNaturalImageTest_original_VC.h5`` has one row per trial; voxel columns
carry ROI masks in the metadata (``ROI_V1``, ``ROI_V2``, ``ROI_V3``, ``ROI_V4`` or
``ROI_hV4``, ``ROI_LOC``, ...) and a stimulus column ('stimulus_name', 'Label' or
'image_index'; see ``bdpy.BData(path).show_metadata()``). The images are not distributed
with the fMRI data: pass the folder (or a mapping) of your copies.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import NeuralDataset
from .images import ImageSet

DEFAULT_ROIS = ("V1", "V2", "V3", "V4", "LOC")
LABEL_COLUMNS = ("stimulus_name", "Label", "image_index")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_ROI_ALIASES = {"V4": ("ROI_V4", "ROI_hV4"), "HV4": ("ROI_hV4", "ROI_V4")}

__all__ = ["load_shen_fmri", "shen_summary", "format_shen_summary", "DEFAULT_ROIS"]


def _import_bdpy():
    try:
        import bdpy  # noqa: F401
        from bdpy import BData  # noqa: F401
    except ImportError as exc:
        raise ImportError("reading or writing Shen 2019 BData files needs bdpy: pip install brainalign[fmri]") from exc
    return bdpy


def load_shen_fmri(path, *, rois=DEFAULT_ROIS, images=None, average_repetitions: bool = True,
                   image_size: int | None = 224, subject=None, label_column: str | None = None
                   ) -> dict[str, NeuralDataset]:
    """Load ROI responses from one Shen-2019 BData file.

    Args:
        path: the ``.h5`` BData file.
        rois: ROI names as in the file with or without the 'ROI_' prefix ('V4' also matches
            'ROI_hV4' when 'ROI_V4' is missing).
        images: a folder of image files, or a mapping {stimulus id: image path}. Stimuli are
            matched to files by full name, then by stem (name without suffix), then (for
            integer ids only, e.g. 'image_index') by position in the sorted folder listing
            (0-based if an id 0 exists, else 1-based).
        average_repetitions: average the trials of each stimulus; when False the trials are
            also kept in ``.repetitions`` (needs the same number of trials per stimulus).
        image_size: images are resized to this on load.
        subject: stored on the datasets; default: parsed from a 'sub-XX' file name.
        label_column: the stimulus column; default: the first of 'stimulus_name', 'Label',
            'image_index' present in the file.

    Returns:
        {roi: NeuralDataset} with modality 'fmri', responses (n_stimuli, n_voxels) in the
        order of first presentation, repetitions (n_stimuli, n_repetitions, n_voxels) or None.
    """
    bd, path = _open(path)
    rois = [rois] if isinstance(rois, str) else list(rois)
    if not rois:
        raise DataError("empty ROI selection: pass ROI names such as ('V1', 'V2', 'V3', 'V4', 'LOC')")
    keys = [_roi_key(bd, path, r) for r in rois]
    labels, column = _stimulus_labels(bd, path, label_column)
    order, inverse = _first_appearance(labels)
    stim_ids = np.array([labels[i] for i in order])
    if images is None:
        raise DataError(f"{path.name}: pass images= (a folder of the stimulus images or a mapping "
                        "{stimulus id: path}); the Shen 2019 images are not distributed with the fMRI files")
    paths = _match_images(stim_ids, images, path, column)
    counts = np.bincount(inverse, minlength=len(order))
    if subject is None:
        m = re.search(r"sub-?(\d+)", path.name)
        subject = int(m.group(1)) if m else None
    image_set = ImageSet.from_paths(paths, size=image_size, check=True)
    concepts = np.array([_concept_of(s) for s in stim_ids])
    out = {}
    for roi, key in zip(rois, keys):
        x = np.asarray(bd.select(key), dtype=np.float64)
        if x.shape[1] == 0:
            raise DataError(f"{path}: ROI '{key}' selects no voxels (its mask is all zeros); choose another ROI")
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{path}: ROI '{key}' contains {int(bad.sum())} NaN/Inf voxel values (first at trial "
                            f"{r}, voxel {c}); drop those voxels or trials before loading")
        sums = np.zeros((len(order), x.shape[1]))
        np.add.at(sums, inverse, x)
        mean = sums / counts[:, None]
        reps = None
        if not average_repetitions:
            if counts.min() != counts.max():
                raise DataError(f"{path}: stimuli have between {counts.min()} and {counts.max()} trials; keeping "
                                "repetitions needs equal counts: use average_repetitions=True")
            reps = np.zeros((len(order), int(counts[0]), x.shape[1]))
            seen = np.zeros(len(order), dtype=int)
            for row, k in enumerate(inverse):  # trials in file order within each stimulus
                reps[k, seen[k]] = x[row]
                seen[k] += 1
        out[roi] = NeuralDataset(images=image_set, responses=mean, repetitions=reps, modality="fmri",
                                 subject=subject, concepts=concepts, roi=key.replace("ROI_", ""),
                                 stimulus_ids=stim_ids,
                                 meta=dict(source="shen-fmri", file=str(path), roi_key=key, label_column=column,
                                           n_trials=int(counts.sum())))
    return out


def shen_summary(path, label_column: str | None = None) -> dict:
    """Trials, voxels, ROIs (with voxel counts), stimulus column and repetitions of a BData file."""
    bd, path = _open(path)
    keys = list(bd.metadata.key)
    rois = {}
    for k in keys:
        if k.startswith("ROI_"):
            mask = np.asarray(bd.get_metadata(k), dtype=float)
            rois[k] = int(np.nansum(mask == 1))
    info = dict(file=str(path), n_trials=int(bd.dataset.shape[0]), n_columns=int(bd.dataset.shape[1]), rois=rois,
                metadata_keys=keys)
    try:
        labels, column = _stimulus_labels(bd, path, label_column)
        _, inverse = _first_appearance(labels)
        counts = np.bincount(inverse)
        info.update(label_column=column, n_stimuli=int(len(counts)),
                    repetitions=(int(counts.min()), int(counts.max())), example_ids=[str(x) for x in labels[:3]])
    except DataError as exc:
        info.update(label_error=str(exc))
    return info


def format_shen_summary(s: dict) -> str:
    lines = [f"Shen fMRI file {s['file']}: {s['n_trials']} trials x {s['n_columns']} columns"]
    if "label_column" in s:
        lo, hi = s["repetitions"]
        lines.append(f"  stimuli: {s['n_stimuli']} (column '{s['label_column']}', {lo if lo == hi else f'{lo}-{hi}'} "
                     f"trials each; e.g. {', '.join(s['example_ids'])})")
    else:
        lines.append(f"  stimuli: {s['label_error']}")
    lines.append("  ROIs: " + (", ".join(f"{k} ({v} voxels)" for k, v in s["rois"].items()) or "none"))
    return "\n".join(lines)


# --- internals ---------------------------------------------------------------------------
def _open(path):
    _import_bdpy()
    from bdpy import BData

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"BData file {path} not found: pass the path of a Shen 2019 .h5 file "
                        "(e.g. sub-01_perceptionNaturalImageTest_original_VC.h5)")
    try:
        bd = BData(str(path))
    except Exception as exc:  # h5py/bdpy raise OSError, KeyError, ValueError on foreign files
        raise DataError(f"cannot read {path} as a BData HDF5 file ({type(exc).__name__}: {exc}); "
                        "pass a Kamitani-lab BData .h5 file") from exc
    if bd.dataset.ndim != 2 or bd.dataset.shape[0] == 0:
        raise DataError(f"{path} holds no trials (dataset shape {bd.dataset.shape})")
    return bd, path


def _roi_key(bd, path: Path, roi: str) -> str:
    keys = list(bd.metadata.key)
    name = str(roi)
    bare = name[4:] if name.startswith("ROI_") else name
    candidates = (name,) if name.startswith("ROI_") else (f"ROI_{bare}",)
    candidates += _ROI_ALIASES.get(bare.upper(), ())
    for c in candidates:
        if c in keys:
            return c
    have = [k for k in keys if k.startswith("ROI_")]
    raise DataError(f"ROI {roi!r} not found in {path}; ROIs in the file: {', '.join(have) or 'none'} "
                    "(pass names with or without the 'ROI_' prefix)")


def _stimulus_labels(bd, path: Path, label_column: str | None) -> tuple[np.ndarray, str]:
    keys = list(bd.metadata.key)
    if label_column is not None:
        if label_column not in keys:
            raise DataError(f"label column {label_column!r} not in {path}; metadata keys: {', '.join(keys)}")
        column = label_column
    else:
        found = [c for c in LABEL_COLUMNS if c in keys]
        if not found:
            raise DataError(f"{path} has no stimulus column ({', '.join(LABEL_COLUMNS)}); metadata keys: "
                            f"{', '.join(keys)}. Pass label_column=...")
        column = found[0]
    values = np.asarray(bd.select(column), dtype=float)
    if values.ndim != 2 or values.shape[1] != 1:
        raise DataError(f"{path}: stimulus column {column!r} must be one column, got shape {values.shape}")
    values = values[:, 0]
    if not np.isfinite(values).all():
        raise DataError(f"{path}: stimulus column {column!r} has NaN entries; every trial needs a stimulus id")
    vmap = None
    if column in set(bd.get_vmap_keys()):
        vmap = bd.get_vmap(column)
    if vmap:
        try:
            return np.array([str(vmap[v]) for v in values]), column
        except KeyError as exc:
            raise DataError(f"{path}: stimulus value {exc} of column {column!r} is missing from its vmap") from exc
    if column == "Label" and (values > 1e5).all():
        return np.array([_imagenet_id(v) for v in values]), column  # e.g. 1518878.005958 -> n01518878_5958
    return np.array([_number_str(v) for v in values]), column


def _imagenet_id(v: float) -> str:
    wnid = int(v)
    num = int(round((v - wnid) * 1e6))
    return f"n{wnid:08d}_{num}"


def _number_str(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _concept_of(stim: str) -> str:
    m = re.match(r"^(n\d{8})_", stim)  # ImageNet ids: the synset is the concept
    return m.group(1) if m else stim


def _first_appearance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index of each unique label in order of appearance, (n_trials,) group index)."""
    uniq, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return np.sort(first), rank[inv]


def _match_images(stim_ids: np.ndarray, images, path: Path, column: str) -> list[Path]:
    if isinstance(images, dict):
        lookup = {str(k): Path(v) for k, v in images.items()}
        for k, v in images.items():  # numeric keys given as ints match '12'
            if isinstance(k, (int, np.integer)):
                lookup[str(int(k))] = Path(v)
        missing = [s for s in stim_ids if s not in lookup]
        if missing:
            raise DataError(f"the image mapping lacks {len(missing)} stimulus id(s) of {path.name}, e.g. "
                            f"{', '.join(missing[:3])}; add them (ids come from column '{column}')")
        return [lookup[s] for s in stim_ids]
    folder = Path(images).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found: pass a folder of the stimulus images or a mapping")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"image folder {folder} has no image files ({', '.join(IMAGE_SUFFIXES)})")
    by_name = {p.name: p for p in files}
    by_stem = {p.stem: p for p in files}
    out, missing = [], []
    for s in stim_ids:
        p = by_name.get(s) or by_stem.get(s)
        out.append(p)
        if p is None:
            missing.append(s)
    if missing and all(re.fullmatch(r"\d+", s) for s in stim_ids):
        ids = [int(s) for s in stim_ids]
        base = 0 if min(ids) == 0 else 1
        if max(ids) - base < len(files):
            return [files[i - base] for i in ids]
        raise DataError(f"stimulus indices of {path.name} go up to {max(ids)} but {folder} holds only "
                        f"{len(files)} images; the folder must hold every stimulus image")
    if missing:
        raise DataError(f"no image in {folder} for {len(missing)} stimulus id(s) of {path.name}, e.g. "
                        f"{', '.join(missing[:3])}; name the files '<id>.<ext>' (ids from column '{column}') "
                        "or pass a mapping {id: path}")
    return out
