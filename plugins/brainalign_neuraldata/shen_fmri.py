"""Loader for the Shen et al. 2019 fMRI data (Kamitani lab BData HDF5 files, via bdpy).

Needs the optional extra: ``pip install brainalign[fmri]`` (bdpy, h5py). A file such as
``sub-01_perceptionNaturalImageTest_original_VC.h5`` has one row per trial; voxel columns
carry ROI masks in the metadata (``ROI_V1``, ``ROI_V2``, ``ROI_V3``, ``ROI_V4`` or
``ROI_hV4``, ``ROI_LOC``, ...) and a stimulus column ('stimulus_name', 'Label' or
'image_index'; see ``bdpy.BData(path).show_metadata()``). The images are not distributed
with the fMRI data: pass the folder (or a mapping) of your copies.

Registered as the ``shen-fmri`` source (alias ``shen``: ``shen:PATH``) by this plugin;
``brainalign.data.load_shen_fmri`` is the same function.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from brainalign.data.dataset import NeuralDataset
from brainalign.data.images import ImageSet
from brainalign.data.matching import match_images
from brainalign.errors import DataError

from .files import count_range, plural

DEFAULT_ROIS = ("V1", "V2", "V3", "V4", "LOC")
LABEL_COLUMNS = ("stimulus_name", "Label", "image_index")
H5_SUFFIXES = (".h5", ".hdf5")
_ROI_ALIASES = {"V4": ("ROI_V4", "ROI_hV4"), "HV4": ("ROI_hV4", "ROI_V4")}

__all__ = ["load_shen_fmri", "shen_summary", "format_shen_summary", "describe", "DEFAULT_ROIS"]


def _import_bdpy():
    try:
        import bdpy  # noqa: F401
        from bdpy import BData  # noqa: F401
    except ImportError as exc:
        raise ImportError("reading or writing Shen 2019 BData files needs bdpy: pip install brainalign[fmri]") from exc
    return bdpy


def load_shen_fmri(path, *, rois=DEFAULT_ROIS, images=None, average_repetitions: bool = True,
                   image_size: int | None = 224, subject=None, label_column: str | None = None) -> NeuralDataset:
    """Load ROI responses from one Shen-2019 BData file as one dataset.

    Args:
        path: the ``.h5`` BData file.
        rois: ROI names as in the file with or without the 'ROI_' prefix ('V4' also matches
            'ROI_hV4' when 'ROI_V4' is missing).
        images: a folder of image files named after the stimulus ids ('<id>.<ext>'), or a
            mapping {stimulus id: image path}. Float ImageNet ids (1518878.005958) become
            file names such as 'n01518878_5958' whatever the column; integer ids (e.g.
            'image_index') need files named '<id>.<ext>' or a mapping: they are never
            matched to a folder by sorted order.
        average_repetitions: average the trials of each stimulus; when False the trials are
            also kept in ``.repetitions`` (needs the same number of trials per stimulus).
        image_size: images are resized to this on load.
        subject: stored on the dataset; default: parsed from a 'sub-XX' file name.
        label_column: the stimulus column; default: the first of 'stimulus_name', 'Label',
            'image_index' present in the file.

    Returns:
        NeuralDataset, modality 'fmri': responses (n_stimuli, n_voxels over all ROIs) in the
        order of first presentation, with channel descriptors 'roi' (the name asked for) and
        'voxel' (the file's column index: voxels in overlapping masks appear once per ROI);
        repetitions (n_stimuli, n_repetitions, n_voxels) or None. ``select_channels(roi="V1")``
        or ``iter_rois()`` give single ROIs.
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
    paths = match_images(stim_ids, images, source=f"{path.name} (column '{column}')")
    counts = np.bincount(inverse, minlength=len(order))
    if not average_repetitions and counts.min() != counts.max():
        raise DataError(f"{path}: stimuli have between {counts.min()} and {counts.max()} trials; keeping "
                        "repetitions needs equal counts: use average_repetitions=True")
    if subject is None:
        m = re.search(r"sub-?(\d+)", path.name)
        subject = int(m.group(1)) if m else None
    x, roi_names, voxels = _roi_voxels(bd, path, rois, keys)
    sums = np.zeros((len(order), x.shape[1]))
    np.add.at(sums, inverse, x)
    reps = None
    if not average_repetitions:
        reps = np.zeros((len(order), int(counts[0]), x.shape[1]))
        seen = np.zeros(len(order), dtype=int)
        for row, k in enumerate(inverse):  # trials in file order within each stimulus
            reps[k, seen[k]] = x[row]
            seen[k] += 1
    return NeuralDataset(images=ImageSet.from_paths(paths, size=image_size, check=True),
                         responses=sums / counts[:, None], repetitions=reps, modality="fmri", subject=subject,
                         concepts=np.array([_concept_of(s) for s in stim_ids]), stimulus_ids=stim_ids,
                         channel_descriptors={"roi": roi_names, "voxel": voxels},
                         meta=dict(source="shen-fmri", file=str(path), roi_keys=dict(zip(rois, keys)),
                                   label_column=column, n_trials=int(counts.sum())))


def _roi_voxels(bd, path: Path, rois: list, keys: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trials x voxels of all ROIs, ROI name per voxel, file column index per voxel)."""
    parts, names, voxels = [], [], []
    for roi, key in zip(rois, keys):
        x = np.asarray(bd.select(key), dtype=np.float64)
        if x.shape[1] == 0:
            raise DataError(f"{path}: ROI '{key}' selects no voxels (its mask is all zeros); choose another ROI")
        bad = ~np.isfinite(x)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{path}: ROI '{key}' contains {int(bad.sum())} NaN/Inf voxel values (first at trial "
                            f"{r}, voxel {c}); drop those voxels or trials before loading")
        mask = np.nan_to_num(np.asarray(bd.get_metadata(key), dtype=float), nan=0.0) == 1
        parts.append(x)
        names += [str(roi)] * x.shape[1]  # the name asked for ('V4' even where the file says ROI_hV4)
        voxels.append(np.flatnonzero(mask) if mask.sum() == x.shape[1] else np.arange(x.shape[1]))
    return np.concatenate(parts, axis=1), np.asarray(names), np.concatenate(voxels)


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
    lines = [f"Shen fMRI file {s['file']}: {plural(s['n_trials'], 'trial')} x {plural(s['n_columns'], 'column')}"]
    if "label_column" in s:
        each = count_range(*s["repetitions"], "trial")
        lines.append(f"  stimuli: {s['n_stimuli']} (column '{s['label_column']}', {each} each; "
                     f"e.g. {', '.join(s['example_ids'])})")
    else:
        lines.append(f"  stimuli: {s['label_error']}")
    lines.append("  ROIs: " + (", ".join(f"{k} ({plural(v, 'voxel')})" for k, v in s["rois"].items()) or "none"))
    found = [r for r in DEFAULT_ROIS if any(k in s["rois"] for k in (f"ROI_{r}", *_ROI_ALIASES.get(r, ())))]
    lines.append(f"  a default load (shen:FILE, load_shen_fmri) gives one dataset with ROIs "
                 f"{', '.join(found) or 'none'} (a 'roi' channel descriptor), repetitions averaged per stimulus")
    return "\n".join(lines)


def describe(location, subject, split: str | None = None, label_column: str | None = None) -> str:
    """``brainalign data shen PATH``: trials, stimuli, ROIs of the subject's file."""
    from .files import subject_file

    if not location:
        raise DataError("shen-fmri needs a file or folder: 'shen:PATH'")
    path = subject_file(location, subject, split or "test", H5_SUFFIXES, "Shen fMRI")
    return format_shen_summary(shen_summary(path, label_column=label_column))


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
    if _imagenet_ids(values):
        return np.array([_imagenet_id(v) for v in values]), column  # e.g. 1518878.005958 -> n01518878_5958
    return np.array([_number_str(v) for v in values]), column


def _imagenet_ids(values: np.ndarray) -> bool:
    """Are these ImageNet ids stored as floats, <synset offset>.<image number / 1e6>, in any column?"""
    return bool(((values > 1e5) & (values < 1e8)).all() and not np.all(np.mod(values, 1.0) == 0))


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


# --- the 'shen-fmri' source --------------------------------------------------------------------
def _load(location, subject, split="test", **kw) -> NeuralDataset:
    from .files import subject_file

    if not location:
        raise DataError("shen-fmri needs a file or folder: 'shen:PATH'")
    path = subject_file(location, subject, split, H5_SUFFIXES, "Shen fMRI")
    if kw.get("images") is None and (path.parent / "images").is_dir():
        kw["images"] = path.parent / "images"  # the layout 'brainalign synth' writes
    kw.setdefault("subject", subject)
    return load_shen_fmri(path, **kw)


def _detect(path: Path) -> bool:
    from .files import has_files

    return path.suffix.lower() in H5_SUFFIXES if path.is_file() else has_files(path, H5_SUFFIXES)


def _subjects(location) -> list[int]:
    from .files import folder_subjects

    return folder_subjects(location, H5_SUFFIXES) if location else []


def specs() -> list:
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("shen-fmri", _load, "Shen et al. 2019 fMRI BData files (shen:PATH; extra 'fmri')",
                        modality="fmri", aliases=("shen",), detect=_detect, subjects=_subjects, describe=describe)]
