"""Precomputed neural RDMs with their images: data that ``compare`` can use without responses.

Published RDMs (e.g. the 92-image set of Kriegeskorte et al. 2008: human IT, monkey IT)
come as ``.npy`` arrays, MATLAB ``.mat`` files or rsatoolbox HDF5 files. :func:`load_rdms`
reads each into a :class:`NeuralRDMs`: the images (the RDMs' conditions, in order) and a
:class:`brainalign.rsa.RDMs` stack with per-RDM descriptors (subject, roi, time, ...)::

    neural = load_rdms("92_brainRDMs.mat", "92_images/", variable="RDMs", modality="fmri")
    neural.rdms.subset(roi="IT")            # RDMs, (n_rdms, n_pairs) upper triangles
    rsa.compare(layer_rdms, neural.rdms)    # (n_layers, n_rdms) Spearman

Nothing is unpickled: ``.npy`` is read with ``allow_pickle=False``, ``.mat`` with scipy,
HDF5 with h5py (rsatoolbox's ``.pkl`` format is refused).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .images import ImageSet

__all__ = ["NeuralRDMs", "load_rdms", "read_rdms", "RDM_SUFFIXES"]

RDM_SUFFIXES = (".npy", ".mat", ".h5", ".hdf5")


class NeuralRDMs:
    """Images paired with precomputed neural RDMs.

    Attributes:
        images: ImageSet of the n conditions, in RDM order.
        rdms: :class:`brainalign.rsa.RDMs`, vectors (n_rdms, n_pairs) with descriptors
            such as subject, roi, time (seconds) and condition descriptors.
        modality: what the RDMs were computed from ('fmri', 'meg', 'eeg', 'behaviour', ...).
        subject: the one subject of every RDM, or None (several or unknown).
        meta: provenance (file, variable).
    """

    def __init__(self, images, rdms, modality: str = "other", subject=None, meta: dict | None = None):
        from ..rsa.rdms import as_rdms

        self.images = images if isinstance(images, ImageSet) else ImageSet.from_array(images)
        self.rdms = as_rdms(rdms)
        if self.rdms.n_conditions != len(self.images):
            raise DataError(f"the RDMs compare {self.rdms.n_conditions} conditions but {len(self.images)} images "
                            "were given: give one image per RDM row, in the RDMs' order")
        if not isinstance(modality, str) or not modality.strip():
            raise DataError(f"modality must be a name such as 'fmri' or 'meg', got {modality!r}")
        self.modality = modality
        self.subject = subject
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_rdms(self) -> int:
        return self.rdms.n_rdms

    @property
    def descriptors(self) -> dict:
        """{name: (n_rdms,)} per-RDM descriptors."""
        return self.rdms.descriptors

    def subset(self, **selection) -> "NeuralRDMs":
        """The RDMs whose descriptors match, e.g. ``subset(roi="IT", subject=[1, 2])``."""
        return NeuralRDMs(self.images, self.rdms.subset(**selection), self.modality, self.subject, self.meta)

    def for_subject(self, subject) -> "NeuralRDMs":
        """The RDMs of one subject (by its 'subject' descriptor; 1, '1', 'sub-01' all match);
        all RDMs when there is no such descriptor."""
        values = self.descriptors.get("subject")
        if values is None:
            return self
        mask = np.array([_same_subject(v, subject) for v in values.tolist()])
        if not mask.any():
            raise DataError(f"no RDM of subject {subject!r}; subjects in the file: "
                            f"{', '.join(map(str, self.rdms.unique('subject')))}")
        return NeuralRDMs(self.images, self.rdms[mask], self.modality, subject, self.meta)

    def __repr__(self) -> str:
        return (f"NeuralRDMs(modality={self.modality!r}, n_images={len(self)}, n_rdms={self.n_rdms}, "
                f"descriptors: {', '.join(self.descriptors) or 'none'})")


def load_rdms(path, images, *, variable: str | None = None, modality: str = "other",
              descriptors: Mapping[str, Sequence] | None = None, image_descriptor: str | None = None,
              order="sorted", image_size: int | None = 224, measure: str | None = None) -> NeuralRDMs:
    """Read RDMs from a file and pair them with their images.

    Args:
        path: ``.npy`` ((n, n), (k, n, n) or (k, n_pairs)), ``.mat`` (a numeric variable
            (n, n), (n, n, k) in MATLAB's order or (k, n, n); or an rsatoolbox-MATLAB struct
            array with fields 'RDM' and optionally 'name'), or rsatoolbox HDF5
            (``RDMs.save(path, file_type="hdf5")``, its descriptors kept).
        images: a folder (images sorted by file name, or in ``order``), a list of image
            paths, an array (n, 3, H, W) or an ImageSet: one image per condition.
        variable: the .mat variable (needed when the file holds several).
        modality: what the RDMs come from ('fmri', 'meg', ...).
        descriptors: per-RDM descriptors {name: k values}, e.g. {'subject': [1, 1, 2, 2],
            'roi': ['EVC', 'IT', 'EVC', 'IT']}; override those read from the file.
        image_descriptor: a condition descriptor of the file whose values name the image
            files in ``images`` (a folder): conditions are then matched by name, not order.
        order: for a folder, 'sorted' or a list / text file of file names (as from_folder).
        measure: the dissimilarity measure, when the file does not say.
    """
    path = Path(path).expanduser()
    rdms = read_rdms(path, variable=variable, descriptors=descriptors, measure=measure)
    image_set = _condition_images(images, rdms, image_descriptor, order, image_size, path)
    subjects = np.unique(rdms.descriptors["subject"].astype(str)) if "subject" in rdms.descriptors else []
    return NeuralRDMs(image_set, rdms, modality, subject=rdms.descriptors["subject"][0] if len(subjects) == 1
                      else None, meta=dict(source="rdm", file=str(path), variable=variable))


def read_rdms(path, *, variable: str | None = None, descriptors: Mapping[str, Sequence] | None = None,
              measure: str | None = None):
    """The RDMs of a file as :class:`brainalign.rsa.RDMs` (no images; see :func:`load_rdms`)."""
    from ..rsa.rdms import RDMs

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"RDM file {path} not found: pass a .npy, .mat or rsatoolbox .hdf5 file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        vectors, file_desc, cond_desc, file_measure = _read_npy(path), {}, {}, None
    elif suffix == ".mat":
        vectors, file_desc, cond_desc, file_measure = (*_read_mat(path, variable), {}, None)
    elif suffix in (".h5", ".hdf5"):
        vectors, file_desc, cond_desc, file_measure = _read_rsatoolbox_hdf5(path)
    else:
        raise DataError(f"{path.name}: RDM files must be .npy, .mat or rsatoolbox HDF5 (.h5/.hdf5); got "
                        f"'{suffix}' (rsatoolbox's .pkl format is refused: it would be unpickled)")
    desc = {**file_desc, **{k: list(v) for k, v in (descriptors or {}).items()}}
    try:
        return RDMs(vectors, descriptors=desc, condition_descriptors=cond_desc, measure=measure or file_measure)
    except DataError as exc:
        raise DataError(f"{path.name}: {exc}") from exc


# --- readers -------------------------------------------------------------------------------
def _read_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path} as a plain .npy array ({exc}); save RDMs with np.save(path, array)") \
            from exc
    return _numeric(arr, path.name, layout="numpy")


def _read_mat(path: Path, variable: str | None) -> tuple[np.ndarray, dict]:
    import scipy.io

    try:
        content = scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except (ValueError, OSError, NotImplementedError) as exc:  # v7.3 files are HDF5: not readable by loadmat
        raise DataError(f"cannot read {path} with scipy.io.loadmat ({exc}); save it as a MATLAB v7 .mat file "
                        "(save(..., '-v7')) or export the RDMs to .npy") from exc
    names = [k for k in content if not k.startswith("__")]
    if variable is None:
        if len(names) != 1:
            raise ConfigError(f"{path.name} holds {len(names)} variables ({', '.join(names) or 'none'}): pass "
                              "variable= (CLI: rdm:PATH with --option variable=NAME)")
        variable = names[0]
    if variable not in content:
        raise DataError(f"{path.name} has no variable {variable!r}; variables: {', '.join(names) or 'none'}")
    value = content[variable]
    elements = np.atleast_1d(value).ravel() if _is_struct(value) else None
    if elements is None:
        return _numeric(np.asarray(value), f"{path.name}:{variable}", layout="matlab"), {}
    if not all(hasattr(e, "RDM") for e in elements):
        raise DataError(f"{path.name}:{variable} is a struct without an 'RDM' field: pass the variable that holds "
                        "the RDM matrices")
    vectors = np.concatenate([_numeric(np.asarray(e.RDM), f"{path.name}:{variable}", layout="matlab")
                              for e in elements])
    desc = {"name": [str(e.name) for e in elements]} if all(hasattr(e, "name") for e in elements) else {}
    return vectors, desc


def _read_rsatoolbox_hdf5(path: Path):
    try:
        from rsatoolbox.rdm import load_rdm
    except ImportError as exc:
        raise ImportError("reading rsatoolbox HDF5 RDM files needs rsatoolbox: pip install rsatoolbox") from exc
    from ..rsa.interop import from_rsatoolbox

    try:
        obj = load_rdm(str(path), file_type="hdf5")
    except Exception as exc:  # h5py raises OSError / KeyError on foreign or damaged files
        raise DataError(f"cannot read {path} as rsatoolbox RDMs ({type(exc).__name__}: {exc}); write it with "
                        "RDMs.save(path, file_type='hdf5')") from exc
    ours = from_rsatoolbox(obj)
    desc = {k: v for k, v in ours.descriptors.items()}
    for key, value in (getattr(obj, "descriptors", None) or {}).items():  # dataset-level: one value for all
        if np.isscalar(value) and key not in desc:
            desc[key] = [value] * ours.n_rdms
    return ours.vectors, desc, ours.condition_descriptors, ours.measure


def _numeric(arr: np.ndarray, what: str, layout: str) -> np.ndarray:
    """(n, n), (k, n, n), MATLAB (n, n, k), (n_pairs,) or (k, n_pairs) -> vectors (k, n_pairs)."""
    from ..rsa.rdms import as_vectors

    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{what} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and layout == "matlab" and arr.shape[0] == arr.shape[1]:
        arr = np.moveaxis(arr, 2, 0)  # MATLAB stacks RDMs along the last axis
    if arr.ndim > 3 or arr.ndim == 0:
        raise DataError(f"{what} has shape {arr.shape}: expected (n, n), (k, n, n) or (k, n*(n-1)/2) RDMs")
    try:
        return as_vectors(arr, what)[0]
    except DataError as exc:
        raise DataError(f"{what}: {exc}") from exc


def _is_struct(value) -> bool:
    first = np.atleast_1d(value).ravel()[:1]
    return bool(len(first)) and hasattr(first[0], "_fieldnames")


def _condition_images(images, rdms, image_descriptor, order, image_size, path: Path) -> ImageSet:
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, Path)):
        if image_descriptor is not None:
            from .matching import match_images

            if image_descriptor not in rdms.condition_descriptors:
                raise DataError(f"{path.name} has no condition descriptor {image_descriptor!r}; it has "
                                f"{sorted(rdms.condition_descriptors) or 'none'}")
            paths = match_images(rdms.condition_descriptors[image_descriptor], Path(images),
                                 source=path.name, what="condition")
        else:
            from .user import list_images

            paths = list_images(images, order)
        return ImageSet.from_paths(paths, size=image_size)
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, Path)):
        return ImageSet.from_paths(images, size=image_size)
    if images is None:
        raise DataError(f"{path.name}: pass the images of the RDMs' conditions (a folder, in sorted file-name "
                        "order, or a list of paths); CLI: --images DIR")
    return ImageSet.from_array(images)


def _same_subject(value, subject) -> bool:
    from .subjects import subject_number

    if str(value) == str(subject):
        return True
    try:
        return subject_number(value) == subject_number(subject)
    except DataError:
        return False
