"""Loader for the THINGS-EEG2 preprocessed release (Gifford et al. 2022).

Layout under ``root``::

    preprocessed_data/sub-01/preprocessed_eeg_training.npy   (16540 images, 4 reps, 17 ch, 100 t)
    preprocessed_data/sub-01/preprocessed_eeg_test.npy       (200 images, 80 reps, 17 ch, 100 t)
    image_set/image_metadata.npy                              (root/image_metadata.npy also accepted)
    image_set/training_images/<nnnnn_concept>/<file>.jpg
    image_set/test_images/<nnnnn_concept>/<file>.jpg

The ``.npy`` files hold **pickled** dicts ('preprocessed_eeg_data', 'ch_names', 'times';
'train_img_files', 'train_img_concepts', 'test_img_files', 'test_img_concepts'). Unpickling
can run code, so these files are loaded with ``allow_pickle=True`` only from the root the
user named: load only data you trust.

Registered as the ``things-eeg2`` source (``things-eeg2:ROOT``) by this plugin;
``brainalign.data.load_things_eeg2`` is the same function.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from brainalign.data._eeg import DEFAULT_CHANNELS, DEFAULT_TIME_WINDOW, check_split, channel_indices, check_trials, \
    select_trials, time_indices, zscore_mode, zscore_stats
from brainalign.data.dataset import NeuralDataset
from brainalign.data.images import ImageSet
from brainalign.data.subjects import subject_number
from brainalign.errors import DataError

from .files import count_range, plural

SPLITS = ("training", "test")
_EEG_KEYS = ("preprocessed_eeg_data", "ch_names", "times")
_META_PREFIX = {"training": "train", "test": "test"}
_IMAGE_FOLDER = {"training": "training_images", "test": "test_images"}

__all__ = ["load_things_eeg2", "things_eeg2_summary", "format_summary", "describe", "find_subjects", "is_root",
           "DEFAULT_CHANNELS"]


def load_things_eeg2(root, subject, split: str = "test", *, channels=DEFAULT_CHANNELS,
                     time_window=DEFAULT_TIME_WINDOW, average_repetitions: bool = True, zscore="feature",
                     image_size: int | None = 224, check_images: bool = True) -> NeuralDataset:
    """Load one subject's split of the THINGS-EEG2 preprocessed release.

    Args:
        root: folder holding ``preprocessed_data/`` and ``image_set/`` (trusted data: the
            files are unpickled).
        subject: 1, '01' or 'sub-01'.
        split: 'training' or 'test'.
        channels: channel names, selected by name from ``ch_names`` in this order
            (default: the 17 occipital/parietal channels); None keeps all.
        time_window: (start, stop) in seconds; samples with start <= t < stop are kept
            (default 0-200 ms -> 20 samples at 100 Hz); None keeps all.
        average_repetitions: average trials per image; when False the (z-scored) trials are
            also kept in ``.repetitions``.
        zscore: statistics always from the *same subject's training split* (after the
            channel/time selection), never from the test split:
            'feature' (default, True): each channel x time point z-scored with its own mean
            and std over all training images and repetitions;
            'global': ReAlnet's scaling, ONE mean and ONE std over all training values;
            None (False): raw values.
            With only the test file downloaded, a test split is z-scored with its own trials
            (logged, and recorded as ``meta['zscore_source']``); alignment needs the training file.
        image_size: images are resized to this on load (None keeps the file size).
        check_images: check up front that every image file exists and has a readable header.

    Returns:
        NeuralDataset, modality 'eeg': responses (n_images, n_channels, n_times),
        repetitions (n_images, n_repetitions, n_channels, n_times) or None; concepts from the
        metadata (e.g. '00001_aardvark'); stimulus_ids the image file names.
    """
    root = _check_root(root)
    split = check_split(split)
    mode = zscore_mode(zscore)
    sub_dir = _subject_dir(root, subject)
    data, ch_names, times, path = _read_eeg(sub_dir, split)
    src = str(path)
    ch = channel_indices(ch_names, channels, src)
    ti = time_indices(times, time_window, src)
    trials = check_trials(select_trials(data, ch, ti), src)
    del data
    source = None
    if mode is not None:
        mean, std, source = _zscore_reference(sub_dir, split, trials, mode, tuple(ch_names[i] for i in ch),
                                              tuple(float(times[i]) for i in ti))
        trials = (trials - mean) / std
    files, concepts = _read_metadata(root, split)
    if len(files) != trials.shape[0]:
        raise DataError(f"image count != response count: image_metadata.npy lists {len(files)} "
                        f"{_META_PREFIX[split]}_img_files but {src} has {trials.shape[0]} images; "
                        "the metadata and EEG files must come from the same release")
    folder = root / "image_set" / _IMAGE_FOLDER[split]
    paths = [folder / c / f for c, f in zip(concepts, files)]
    if check_images:
        _check_images(paths, folder)
    return NeuralDataset(
        images=ImageSet.from_paths(paths, size=image_size, check=False), responses=trials.mean(1),
        repetitions=None if average_repetitions else trials, modality="eeg", subject=subject_number(subject),
        concepts=np.asarray(concepts), channel_names=[str(ch_names[i]) for i in ch], times=times[ti],
        stimulus_ids=np.asarray(files),
        meta=dict(source="things-eeg2", root=str(root), file=src, split=split, zscore=mode, zscore_source=source,
                  time_window=None if time_window is None else tuple(time_window),
                  n_repetitions=int(trials.shape[1])),
    )


def _zscore_reference(sub_dir: Path, split: str, trials: np.ndarray, mode: str, channels: tuple, times: tuple):
    """(mean, std, where they came from): the training split's, or a test split's own without it."""
    if split == "training":  # the statistics come from these very trials: no second read
        return (*zscore_stats(trials, mode), "training split")
    train = sub_dir / "preprocessed_eeg_training.npy"
    if train.is_file():
        st = train.stat()
        return (*_training_stats_cached(str(train), st.st_mtime_ns, st.st_size, channels, times, mode),
                "training split")
    from brainalign.progress import log

    log(f"note: {train} is missing, so the test EEG is z-scored ({mode}) with its own trials' statistics "
        "(fine for decoding RDMs; alignment needs the training file)")
    return (*zscore_stats(trials, mode), "test split's own trials (training file missing)")


def find_subjects(root) -> list[int]:
    """Subject numbers with a ``preprocessed_data/sub-XX`` folder under ``root``."""
    d = Path(root) / "preprocessed_data"
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        if p.is_dir() and p.name.startswith("sub-") and p.name[4:].isdigit():
            out.append(int(p.name[4:]))
    return sorted(out)


def is_root(path: Path) -> bool:
    """Does ``path`` look like a THINGS-EEG2 release (a folder with preprocessed_data/)?"""
    return path.is_dir() and (path / "preprocessed_data").is_dir()


def things_eeg2_summary(root, subject, split: str | None = None, *, channels=DEFAULT_CHANNELS,
                        time_window=DEFAULT_TIME_WINDOW, zscore="feature") -> dict:
    """What one subject's files hold and what a load with these options gives.

    Returns {'root', 'subject', 'splits': {split: {file, shape, channels, tmin, tmax, sfreq,
    concepts...} or {'missing': message}}, 'load': {channels, n_times, tmin, tmax, zscore,
    zscore_source, ...}}; ``split=None`` summarises both splits.
    """
    root = _check_root(root)
    sub_dir = _subject_dir(root, subject)
    out = {"root": str(root), "subject": subject_number(subject), "splits": {}}
    header = None
    for sp in (SPLITS if split is None else (check_split(split),)):
        path = sub_dir / f"preprocessed_eeg_{sp}.npy"
        if split is None and not path.is_file():
            out["splits"][sp] = {"missing": f"{path.name} not downloaded" + (
                " (needed only to align models)" if sp == "training" else "")}
            continue
        data, ch_names, times, path = _read_eeg(sub_dir, sp)
        info = dict(file=str(path), shape=tuple(int(x) for x in data.shape), channels=list(ch_names),
                    tmin=float(times[0]), tmax=float(times[-1]),
                    sfreq=float(1.0 / np.median(np.diff(times))) if len(times) > 1 else None)
        try:
            files, concepts = _read_metadata(root, sp)
            uniq, counts = np.unique(np.asarray(concepts), return_counts=True)
            info.update(n_images_metadata=len(files), n_concepts=int(len(uniq)),
                        images_per_concept=(int(counts.min()), int(counts.max())))
        except DataError as exc:
            info.update(metadata_error=str(exc))
        out["splits"][sp] = info
        header = header or (ch_names, times, path)
    if header is None:
        raise DataError(f"no EEG file for subject {out['subject']} in {sub_dir}: download "
                        "preprocessed_eeg_test.npy (compare) and preprocessed_eeg_training.npy (align)")
    out["load"] = _load_summary(sub_dir, *header, channels=channels, time_window=time_window, zscore=zscore)
    return out


def _load_summary(sub_dir: Path, ch_names, times, path: Path, *, channels, time_window, zscore) -> dict:
    """The channels, samples and scaling a load with these options gives (errors as text)."""
    mode = zscore_mode(zscore)
    has_train = (sub_dir / "preprocessed_eeg_training.npy").is_file()
    info = dict(zscore=mode, zscore_source=None if mode is None else
                "training split" if has_train else "test split's own trials (training file missing)")
    try:
        info["channels"] = [ch_names[i] for i in channel_indices(ch_names, channels, str(path))]
    except DataError as exc:
        info["channel_error"] = str(exc)
    try:
        t = times[time_indices(times, time_window, str(path))]
        info.update(window=None if time_window is None else tuple(float(x) for x in time_window),
                    n_times=int(len(t)), tmin=float(t[0]), tmax=float(t[-1]))
    except DataError as exc:
        info["window_error"] = str(exc)
    return info


def format_summary(summary: dict) -> str:
    """Human-readable text of :func:`things_eeg2_summary`."""
    lines = [f"THINGS-EEG2 root {summary['root']}, subject {summary['subject']}"]
    for sp, s in summary["splits"].items():
        if "missing" in s:
            lines.append(f"  {sp}: {s['missing']}")
            continue
        n, r, c, t = s["shape"]
        lines.append(f"  {sp}: {plural(n, 'image')} x {plural(r, 'repetition')} x {plural(c, 'channel')} x "
                     f"{plural(t, 'time')}  ({s['file']})")
        sf = f", {s['sfreq']:.0f} Hz" if s.get("sfreq") else ""
        lines.append(f"    time {s['tmin']:.3f} .. {s['tmax']:.3f} s{sf}")
        lines.append(f"    channels in the file: {', '.join(s['channels'])}")
        if "n_concepts" in s:
            per = count_range(*s["images_per_concept"], "image")
            lines.append(f"    concepts: {s['n_concepts']} ({per} each); metadata lists "
                         f"{plural(s['n_images_metadata'], 'image')}")
        else:
            lines.append(f"    metadata: {s['metadata_error']}")
    lines += ["  a load with these options (things-eeg2:ROOT, load_things_eeg2) gives:",
              *("    " + x for x in _load_lines(summary["load"]))]
    return "\n".join(lines)


def _load_lines(load: dict) -> list[str]:
    out = []
    if "channels" in load:
        out.append(f"{plural(len(load['channels']), 'channel')}, selected by name in this order: "
                   f"{', '.join(load['channels'])}")
    else:
        out.append(f"channels: {load['channel_error']}")
    if "n_times" in load:
        win = "all samples" if load["window"] is None else \
            f"{load['window'][0] * 1000:g}-{load['window'][1] * 1000:g} ms"
        out.append(f"{win} = {plural(load['n_times'], 'sample')} ({load['tmin']:.3f} .. {load['tmax']:.3f} s)")
    else:
        out.append(f"time window: {load['window_error']}")
    what = {"feature": "z-scored per channel x time point ('feature')",
            "global": "scaled by one mean and one std ('global', as ReAlnet)"}
    out.append("no z-scoring (raw values)" if load["zscore"] is None else
               f"{what[load['zscore']]} with the statistics of the {load['zscore_source']}")
    return out


def describe(location, subject, split: str | None = None, *, zscore="feature") -> str:
    """``brainalign data things-eeg2 ROOT``: the files and what a default load (or one with ``zscore``) gives."""
    if not location:
        raise DataError("things-eeg2 needs the release folder: 'things-eeg2:ROOT'")
    return format_summary(things_eeg2_summary(location, subject, split, zscore=None if zscore == "none" else zscore))


# --- internals ---------------------------------------------------------------------------
def _check_root(root) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"THINGS-EEG2 root {root} does not exist or is not a folder: pass the folder that "
                        "holds preprocessed_data/ and image_set/")
    if not (root / "preprocessed_data").is_dir():
        raise DataError(f"{root} has no preprocessed_data/ folder: pass the THINGS-EEG2 root that holds "
                        "preprocessed_data/sub-XX/ and image_set/")
    return root


def _subject_dir(root: Path, subject) -> Path:
    n = subject_number(subject)
    d = root / "preprocessed_data" / f"sub-{n:02d}"
    if not d.is_dir():
        found = find_subjects(root)
        listing = ", ".join(f"sub-{s:02d}" for s in found) or "none"
        raise DataError(f"subject folder {d} not found; subjects found under {root / 'preprocessed_data'}: "
                        f"{listing}")
    return d


def _load_pickled_npy(path: Path, what: str):
    """np.load with allow_pickle=True: only ever called on files under the user-given root."""
    if not path.is_file():
        need = " (aligning models needs the training split; compare needs only the test file)" \
            if path.name == "preprocessed_eeg_training.npy" else ""
        raise DataError(f"{what} file {path} not found{need}: download it from the THINGS-EEG2 release "
                        "or check the root folder")
    try:
        obj = np.load(path, allow_pickle=True)
    except Exception as exc:  # truncated/corrupt files raise many types (ValueError, EOFError, UnpicklingError)
        raise DataError(f"cannot read {path}: {exc}; the file is corrupt or not a NumPy file, re-download it") from exc
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise DataError(f"{path} does not hold a pickled dict (got {type(obj).__name__}"
                        f"{' of shape ' + str(obj.shape) if hasattr(obj, 'shape') else ''}); "
                        "is it a THINGS-EEG2 preprocessed file?")
    return obj


def _read_eeg(sub_dir: Path, split: str):
    path = sub_dir / f"preprocessed_eeg_{split}.npy"
    d = _load_pickled_npy(path, f"EEG {split}")
    missing = [k for k in _EEG_KEYS if k not in d]
    if missing:
        raise DataError(f"{path} lacks key(s) {missing} (has {sorted(map(str, d))}); expected "
                        f"{list(_EEG_KEYS)} as in the THINGS-EEG2 preprocessed release")
    data = np.asarray(d["preprocessed_eeg_data"])  # NaN/Inf are checked on the selected part only
    if data.ndim != 4:
        raise DataError(f"{path}: 'preprocessed_eeg_data' must be 4-D (n_images, n_repetitions, n_channels, "
                        f"n_times), got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number):
        raise DataError(f"{path}: 'preprocessed_eeg_data' must be numeric, got dtype {data.dtype}")
    ch_names = [str(c) for c in np.asarray(d["ch_names"]).ravel()]
    times = np.asarray(d["times"], dtype=np.float64).ravel()
    if len(ch_names) != data.shape[2]:
        raise DataError(f"{path}: 'ch_names' has {len(ch_names)} names but 'preprocessed_eeg_data' has "
                        f"{data.shape[2]} channels (axis 2 of shape {data.shape})")
    if len(times) != data.shape[3]:
        raise DataError(f"{path}: 'times' has {len(times)} values but 'preprocessed_eeg_data' has "
                        f"{data.shape[3]} time points (axis 3 of shape {data.shape})")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise DataError(f"{path}: 'preprocessed_eeg_data' is empty (shape {data.shape})")
    return data, ch_names, times, path


@functools.lru_cache(maxsize=8)
def _training_stats_cached(path: str, mtime_ns: int, size: int, channels: tuple, times: tuple, mode: str):
    """Statistics of the training split over the selected channels and samples (cached per file version)."""
    sub_dir = Path(path).parent
    data, ch_names, t, p = _read_eeg(sub_dir, "training")
    ch = channel_indices(ch_names, list(channels), str(p))
    # Same samples as the selected split (match by time stamp, not index: both files share times).
    ti = np.array([int(np.argmin(np.abs(t - x))) for x in times])
    if np.max(np.abs(t[ti] - np.asarray(times))) > 1e-6:
        raise DataError(f"{p}: its 'times' do not contain the selected test time points {times[:3]}...; "
                        "training and test files must share the same time axis")
    return zscore_stats(check_trials(select_trials(data, ch, ti), str(p)), mode)


def _metadata_path(root: Path) -> Path:
    for p in (root / "image_set" / "image_metadata.npy", root / "image_metadata.npy"):
        if p.is_file():
            return p
    raise DataError(f"image_metadata.npy not found in {root / 'image_set'} or {root}: download it with "
                    "the THINGS-EEG2 image set")


def _read_metadata(root: Path, split: str) -> tuple[list[str], list[str]]:
    path = _metadata_path(root)
    meta = _load_pickled_npy(path, "image metadata")
    pre = _META_PREFIX[split]
    keys = (f"{pre}_img_files", f"{pre}_img_concepts")
    missing = [k for k in keys if k not in meta]
    if missing:
        raise DataError(f"{path} lacks key(s) {missing} (has {sorted(map(str, meta))}); expected "
                        "train_img_files, train_img_concepts, test_img_files, test_img_concepts")
    files = [str(x) for x in np.asarray(meta[keys[0]]).ravel()]
    concepts = [str(x) for x in np.asarray(meta[keys[1]]).ravel()]
    if len(files) != len(concepts):
        raise DataError(f"{path}: '{keys[0]}' has {len(files)} entries but '{keys[1]}' has {len(concepts)}; "
                        "they must list the images in the same order")
    return files, concepts


def _check_images(paths: list[Path], folder: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise DataError(f"{len(missing)} image file(s) listed in image_metadata.npy are missing: "
                        f"{', '.join(map(str, missing[:3]))}{more}; unpack the THINGS-EEG2 image set into {folder}")
    for p in paths:  # header only: cheap, catches truncated/non-image files before training starts
        try:
            with Image.open(p) as im:
                im.size  # noqa: B018
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image {p}: {exc}; replace the file (re-extract the image set)") from exc


# --- the 'things-eeg2' source ------------------------------------------------------------------
def _load(location, subject, split="test", **kw) -> NeuralDataset:
    if not location:
        raise DataError("things-eeg2 needs the release folder: 'things-eeg2:ROOT'")
    return load_things_eeg2(location, subject, split, **kw)


def _subjects(location) -> list[int]:
    return find_subjects(_check_root(location)) if location else []


def specs() -> list:
    from brainalign.data.registry import DatasetSpec

    return [DatasetSpec("things-eeg2", _load, "THINGS-EEG2 preprocessed release (things-eeg2:ROOT)", modality="eeg",
                        aliases=("things",), detect=is_root, subjects=_subjects, describe=describe)]
