"""Neural datasets from your own data: arrays, an image folder + ``.npy``, or ``mne.Epochs``.

Example::

    ds = from_folder("stimuli/", "eeg.npy", channel_names=names, times=times)   # eeg.npy (n, C, T)
    ds = from_arrays(images, responses)                 # images (n, 3, H, W), responses (n, ...)
    ds = from_mne_epochs(epochs, "stimuli/")            # event names matched to '<event>.<ext>' files
    ds = load_mne_epochs("sub-01-epo.fif", "stimuli/")  # the same from a saved epochs file
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import DataError
from ._eeg import channel_indices, time_indices
from .dataset import NeuralDataset
from .images import ImageSet
from .matching import image_files, match_images

__all__ = ["from_arrays", "from_folder", "from_mne_epochs", "load_mne_epochs", "list_images"]


def _as_imageset(images, image_size: int | None) -> ImageSet:
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, Path)):
        raise DataError(f"images={images!r} is a single path: use from_folder() for a folder, or pass a list of "
                        "image paths or an array (n, 3, H, W)")
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        return ImageSet.from_paths(images, size=image_size)
    return ImageSet.from_array(images)


def from_arrays(images, responses=None, *, repetitions=None, concepts=None, channel_names=None, times=None,
                modality: str | None = None, subject=None, roi: str | None = None, stimulus_ids=None,
                image_size: int | None = 224, meta: dict | None = None, channel_descriptors=None,
                image_descriptors=None) -> NeuralDataset:
    """A dataset from in-memory data.

    Args:
        images: float/uint8 array or tensor (n, 3, H, W) or (n, H, W, 3), a list of image
            paths, or an ImageSet.
        responses: (n, n_channels, n_times) EEG, (n, n_voxels) fMRI, or any (n, ...);
            may be omitted when ``repetitions`` is given (then it is their mean).
        repetitions: (n, n_repetitions, *response_shape) raw trials, or None.
        concepts: (n,) concept label per image (keeps splits concept-disjoint); default one
            concept per image.
        channel_names, times: EEG descriptors (len n_channels, n_times; times in seconds).
        modality: any name ('eeg', 'meg', 'fmri', 'ecog', ...); default 'eeg' for 3-D
            responses, else 'other'.
        channel_descriptors, image_descriptors: further descriptors (see NeuralDataset).
    """
    if responses is None and repetitions is None:
        raise DataError("from_arrays needs responses (n, ...) or repetitions (n, n_repetitions, ...)")
    if repetitions is not None:
        repetitions = np.asarray(repetitions, dtype=np.float32)
        if repetitions.ndim < 3:
            raise DataError(f"repetitions must be (n_images, n_repetitions, ...) with at least 3 dimensions, "
                            f"got shape {repetitions.shape}")
        if responses is None:
            responses = repetitions.mean(1)
    responses = np.asarray(responses, dtype=np.float32)
    if modality is None:
        modality = "eeg" if responses.ndim == 3 else "other"
    return NeuralDataset(images=_as_imageset(images, image_size), responses=responses, repetitions=repetitions,
                         modality=modality, subject=subject, concepts=concepts, channel_names=channel_names,
                         times=times, roi=roi, stimulus_ids=stimulus_ids, meta=dict(meta or {}, source="arrays"),
                         channel_descriptors=channel_descriptors, image_descriptors=image_descriptors)


def list_images(image_dir, order: str | Sequence[str] | Path = "sorted") -> list[Path]:
    """Image files of ``image_dir``: sorted by file name, or in the order of a list of names
    or of a text file (one file name per line, relative to ``image_dir``)."""
    folder = Path(image_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder {folder} not found: pass a folder of image files")
    if isinstance(order, str) and order == "sorted":
        return image_files(folder)
    if isinstance(order, (str, Path)):
        order_file = Path(order).expanduser()
        if not order_file.is_file():
            raise DataError(f"order file {order_file} not found: pass 'sorted', a list of file names, or a text "
                            "file with one image file name per line")
        names = [ln.strip() for ln in order_file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        source = str(order_file)
    else:
        names = [str(n) for n in order]
        source = "the order list"
    if not names:
        raise DataError(f"{source} lists no images")
    paths = [folder / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) named in {source} are missing, e.g. {', '.join(missing[:3])}; "
                        f"names are relative to {folder}")
    return paths


def from_folder(image_dir, responses_npy, *, order: str | Sequence[str] | Path = "sorted",
                has_repetitions: bool | None = None, image_size: int | None = 224, **kwargs) -> NeuralDataset:
    """A dataset from a folder of images and a ``.npy`` of responses (one row per image).

    Images are matched to rows by file name order (``order='sorted'``), or by a list of
    file names / a text file with one name per line. ``responses_npy`` is a path (loaded
    with ``allow_pickle=False``) or an array. 4-D arrays are taken as EEG trials
    (n, n_repetitions, n_channels, n_times) unless ``has_repetitions=False``; with
    ``has_repetitions=True`` axis 1 is always repetitions. Other keywords go to
    :func:`from_arrays` (channel_names, times, concepts, modality, subject, ...).
    """
    paths = list_images(image_dir, order)
    if isinstance(responses_npy, (str, Path)):
        f = Path(responses_npy).expanduser()
        if not f.is_file():
            raise DataError(f"responses file {f} not found: pass a .npy with one row per image")
        try:
            arr = np.load(f, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"cannot read {f} without unpickling ({exc}); save a plain numeric array with "
                            "np.save(path, array)") from exc
        except OSError as exc:
            raise DataError(f"cannot read {f}: {exc}; is it a .npy file?") from exc
        source = str(f)
    else:
        arr, source = np.asarray(responses_npy), "responses"
    if isinstance(arr, np.lib.npyio.NpzFile):
        raise DataError(f"{source} is an .npz archive: pass the single array (np.load(path)['name']) instead")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{source} must hold numbers, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise DataError(f"{source} must be (n_images, ...) with at least 2 dimensions, got shape {arr.shape}")
    if arr.shape[0] != len(paths):
        raise DataError(f"image count != response count: {len(paths)} images in {Path(image_dir)} but {source} "
                        f"has {arr.shape[0]} rows (shape {arr.shape}); give one row per image in file-name order "
                        "or pass order=")
    reps = arr.ndim == 4 if has_repetitions is None else bool(has_repetitions)
    kwargs.setdefault("stimulus_ids", np.array([p.name for p in paths]))
    meta = dict(kwargs.pop("meta", {}) or {}, image_dir=str(image_dir), responses=source)
    if reps:
        return from_arrays(paths, None, repetitions=arr, image_size=image_size, meta=meta, **kwargs)
    return from_arrays(paths, arr, image_size=image_size, meta=meta, **kwargs)


def from_mne_epochs(epochs, images, *, event_to_image: Mapping | None = None, channels: Sequence[str] | None = None,
                    picks=None, time_window=None, average_repetitions: bool = True, image_size: int | None = 224,
                    subject=None, concepts=None) -> NeuralDataset:
    """A dataset from an ``mne.Epochs`` object: the epochs of each image are averaged.

    Args:
        epochs: mne.Epochs / EpochsArray; channel names, channel types and times (s) come from it.
        images: a folder of image files named after the event names ('<event>.<ext>'), a
            dict {event name or code: image path}, or a list of image paths / an array
            (n_images, 3, H, W) / an ImageSet matched through ``event_to_image``.
        event_to_image: {event name or code: image index into ``images``}. Default for a
            list/array: the event codes present, in ascending order, map to images
            0..n_images-1. Epochs of unmapped events are ignored.
        channels: channel names to keep (in this order); default all (after ``picks``).
        picks: MNE channel picks applied first, e.g. 'meg', 'grad', 'mag', 'eeg' or names.
        time_window: (start, stop) in seconds, samples with start <= t < stop; None keeps all.
        average_repetitions: False keeps the trials in ``.repetitions`` (equal counts needed).

    Returns:
        NeuralDataset: modality 'meg' when MEG channels are kept, else the channels' type
        (e.g. 'eeg'); responses (n_images, n_channels, n_times); channel descriptors 'name'
        and 'type' (mag, grad, eeg, ...).
    """
    try:
        import mne  # noqa: F401
    except ImportError as exc:
        raise ImportError("reading MNE epochs needs MNE-Python: pip install brainalign[meg]") from exc
    if not hasattr(epochs, "get_data") or not hasattr(epochs, "events"):
        raise DataError(f"epochs must be an mne.Epochs object, got {type(epochs).__name__}")
    if picks is not None:
        try:
            epochs = epochs.copy().pick(picks)
        except ValueError as exc:
            raise DataError(f"picks={picks!r} selects no channels of the epochs ({exc}); use channel types such "
                            "as 'meg', 'grad', 'mag', 'eeg' or channel names") from exc
    image_set, mapping, ids = _event_images(epochs, images, event_to_image, image_size)
    ch_names = list(epochs.ch_names)
    ch = np.arange(len(ch_names)) if channels is None else channel_indices(ch_names, channels, "the epochs")
    ti = time_indices(epochs.times, time_window, "the epochs")
    data = np.asarray(epochs.get_data(), dtype=np.float64)[:, ch][..., ti]  # (n_epochs, C, T)
    codes = np.asarray(epochs.events)[:, 2]
    per_image: list[list[int]] = [[] for _ in range(len(image_set))]
    for row, c in enumerate(codes):
        if int(c) in mapping:
            per_image[mapping[int(c)]].append(row)
    empty = [i for i, rows in enumerate(per_image) if not rows]
    if empty:
        raise DataError(f"{len(empty)} image(s) have no epochs (e.g. image index {empty[0]}); check the event codes "
                        "and event_to_image (dropped epochs remove trials)")
    responses = np.stack([data[rows].mean(0) for rows in per_image])
    reps = None
    if not average_repetitions:
        counts = {len(rows) for rows in per_image}
        if len(counts) != 1:
            raise DataError(f"images have between {min(counts)} and {max(counts)} epochs; keeping repetitions needs "
                            "equal counts: use average_repetitions=True")
        reps = np.stack([data[rows] for rows in per_image])
    types = np.asarray(epochs.get_channel_types())[ch]
    return NeuralDataset(images=image_set, responses=responses, repetitions=reps, modality=_modality_of(types),
                         subject=subject, concepts=concepts, times=np.asarray(epochs.times)[ti], stimulus_ids=ids,
                         channel_descriptors={"name": np.asarray(ch_names)[ch], "type": types},
                         meta=dict(source="mne", n_epochs=int(sum(len(r) for r in per_image)),
                                   time_window=None if time_window is None else tuple(time_window)))


def load_mne_epochs(path, images, **kwargs) -> NeuralDataset:
    """A dataset from an MNE epochs file (``*-epo.fif``); keywords as :func:`from_mne_epochs`."""
    try:
        import mne
    except ImportError as exc:
        raise ImportError("reading MNE epochs needs MNE-Python: pip install brainalign[meg]") from exc
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"MNE epochs file {path} not found: pass a *-epo.fif file saved with epochs.save()")
    try:
        epochs = mne.read_epochs(str(path), preload=True, verbose="error")
    except Exception as exc:  # mne raises ValueError, OSError, KeyError ... on foreign or damaged files
        raise DataError(f"cannot read {path} as MNE epochs ({type(exc).__name__}: {exc}); pass a file written by "
                        "mne.Epochs.save() (name ending in -epo.fif)") from exc
    ds = from_mne_epochs(epochs, images, **kwargs)
    ds.meta.update(file=str(path))
    return ds


def _event_images(epochs, images, event_to_image, image_size) -> tuple[ImageSet, dict, np.ndarray | None]:
    """(images, {event code: image index}, stimulus ids or None) for the epochs' events."""
    event_id = dict(getattr(epochs, "event_id", {}) or {})
    name_to_code = {str(k): int(v) for k, v in event_id.items()}

    def code_of(key) -> int:
        if isinstance(key, (int, np.integer)):
            return int(key)
        if str(key) in name_to_code:
            return name_to_code[str(key)]
        raise DataError(f"event {key!r} is not in the epochs' event_id ({', '.join(name_to_code) or 'none'})")

    if isinstance(images, (str, Path)) or isinstance(images, Mapping):
        keys = list(images) if isinstance(images, Mapping) else list(name_to_code)
        if not keys:
            raise DataError("the epochs have no named events (event_id): pass images as {event code: path}")
        lookup = images if isinstance(images, Mapping) else Path(images)
        paths = match_images(keys, lookup, source="the epochs", what="event")
        return (ImageSet.from_paths(paths, size=image_size), {code_of(k): i for i, k in enumerate(keys)},
                np.asarray([str(k) for k in keys]))
    image_set = _as_imageset(images, image_size)
    if event_to_image is None:
        present = sorted(set(int(c) for c in np.asarray(epochs.events)[:, 2]))
        if len(present) != len(image_set):
            raise DataError(f"the epochs have {len(present)} distinct event codes but {len(image_set)} images "
                            "were given: pass event_to_image={event: image index}")
        mapping = {c: i for i, c in enumerate(present)}
    else:
        mapping = {code_of(k): int(v) for k, v in event_to_image.items()}
    bad = [i for i in mapping.values() if not 0 <= i < len(image_set)]
    if bad:
        raise DataError(f"event_to_image points at image index {bad[0]} but there are {len(image_set)} images")
    return image_set, mapping, None


def _modality_of(channel_types) -> str:
    """'meg' when any MEG channel is kept, else the most common channel type ('eeg', 'ecog', ...)."""
    types = [str(t) for t in channel_types]
    if any(t in ("mag", "grad", "planar1", "planar2") for t in types):
        return "meg"
    values, counts = np.unique(types, return_counts=True)
    return str(values[np.argmax(counts)]) if len(values) else "other"
