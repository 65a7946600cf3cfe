"""Batched feature extraction: images -> per-layer activation arrays (n_images, n_features).

    feats = extract_features(model, images, ["V1", "IT"], pooling="avg")
    feats["IT"].shape                       # (n_images, 512)

Runs under ``torch.inference_mode`` with the model in eval mode (its previous mode is
restored), stops the forward pass after the deepest requested layer, and keeps at most one
batch of activations per layer besides the output arrays.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .device import resolve_device
from .errors import ConfigError, DataError
from .taps import LayerTap

POOLINGS = ("flatten", "none", "avg", "adaptive<k>")
_ADAPTIVE = re.compile(r"^adaptive(\d+)$")


def check_pooling(pooling: str) -> str:
    """Validate a pooling name; returns it normalised ('none' -> 'flatten')."""
    p = str(pooling).strip().lower()
    if p == "none":
        p = "flatten"
    if p in ("flatten", "avg"):
        return p
    m = _ADAPTIVE.match(p)
    if m and int(m.group(1)) >= 1:
        return p
    raise ConfigError(f"unknown pooling {pooling!r}: use 'flatten' (alias 'none'), 'avg' (global "
                      "average) or 'adaptive<k>' (e.g. 'adaptive2' = k x k average, then flatten)")


def pool(t: torch.Tensor, pooling: str = "flatten") -> torch.Tensor:
    """Reduce one layer's activations to (n, n_features).

    Args:
        t: (n, C, H, W) feature maps, (n, L, D) tokens, or (n, D) vectors.
        pooling: 'flatten'/'none' -> everything flattened; 'avg' -> mean over space (C) or
            over tokens (D); 'adaptive<k>' -> adaptive average to k x k, flattened (C*k*k).
            For tokens, 'adaptive<k>' arranges the patch tokens on their square grid (a
            leading class token is dropped).
    """
    p = check_pooling(pooling)
    if t.ndim < 2:
        raise DataError(f"layer output must be batch-first with at least 2 dims, got shape {tuple(t.shape)}")
    n = t.shape[0]
    if p == "flatten" or t.ndim == 2:
        return t.reshape(n, -1)
    if p == "avg":
        if t.ndim == 3:  # (n, L, D) tokens
            return t.mean(dim=1)
        return t.flatten(2).mean(dim=2)
    k = int(_ADAPTIVE.match(p).group(1))
    if t.ndim == 3:
        t = _tokens_to_grid(t)
    if t.ndim == 4:
        return F.adaptive_avg_pool2d(t, k).reshape(n, -1)
    if t.ndim == 5:
        return F.adaptive_avg_pool3d(t, k).reshape(n, -1)
    raise ConfigError(f"pooling {pooling!r} does not apply to a {t.ndim}-D output {tuple(t.shape)}; "
                      "use 'flatten' or 'avg'")


def _tokens_to_grid(t: torch.Tensor) -> torch.Tensor:
    """(n, L, D) tokens -> (n, D, g, g) when L or L-1 (class token) is a square."""
    n, length, d = t.shape
    for drop in (0, 1):
        g = math.isqrt(length - drop)
        if g * g == length - drop and g > 0:
            return t[:, drop:].transpose(1, 2).reshape(n, d, g, g)
    raise ConfigError(f"cannot arrange {length} tokens on a square grid for adaptive pooling; "
                      "use pooling='avg' or 'flatten'")


def _as_images(images):
    """ImageSet | NeuralDataset | tensor/array (n, 3, H, W) -> an object with len() and load()."""
    from .data.dataset import NeuralDataset
    from .data.images import ImageSet

    if isinstance(images, NeuralDataset):
        return images.images
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (torch.Tensor, np.ndarray)):
        return ImageSet.from_array(images)
    raise DataError(f"images must be an ImageSet, a NeuralDataset or a (n, 3, H, W) tensor/array in [0, 1], "
                    f"got {type(images).__name__}")


def _model_device(model: nn.Module) -> torch.device | None:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


def _model_dtype(model: nn.Module) -> torch.dtype:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def iter_features(model: nn.Module, images, layers=None, *, batch_size: int = 32, pooling: str = "flatten",
                  preprocessing: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  device: str | torch.device | None = None, progress: bool = True,
                  dtype: torch.dtype = torch.float32,
                  image_cache=None) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """Yield ``(indices, {layer: (b, n_features) tensor on CPU})`` batch by batch.

    Args:
        model: any nn.Module (a loaded backbone brings default layers and preprocessing).
        images: ImageSet, NeuralDataset (its images) or a (n, 3, H, W) tensor/array in [0, 1].
        layers: module names or spec labels; None -> the backbone's default layers.
        batch_size: images per forward pass.
        pooling: see :func:`pool`.
        preprocessing: callable on (b, 3, H, W) in [0, 1]; default: the backbone spec's
            Preprocessing, or none for a model without a spec.
        device: where to run; None keeps the model where it is (moving it otherwise).
        progress: show progress (a bar in a terminal, compact lines in a log file).
        dtype: dtype of the yielded features.
        image_cache: where image files are decoded to once (see :mod:`brainalign.data.image_cache`):
            None -> the process setting, a folder, or False (decode every file on every call).

    Yields:
        indices (b,) int64 into ``images``, and the pooled features of each layer.

    Arguments, layers and images are checked when this is called, before the first batch.
    """
    from .models.registry import spec_of

    check_pooling(pooling)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    batch_size = int(batch_size)
    imgs = _as_images(images).with_cache(image_cache)
    n = len(imgs)
    if n == 0:
        raise DataError("no images to extract features from (0 images)")
    tap = LayerTap(model, layers, detach=True, stop_after_last=True)  # validates before running
    if preprocessing is None:
        spec = spec_of(model)
        preprocessing = spec.preprocessing if spec is not None else None
    if device is None:
        dev = _model_device(model) or resolve_device(None)
    else:
        dev = resolve_device(device)
        model.to(dev)
    # validated above, eagerly; the batches come from a generator
    return _batches(model, imgs, tap, batch_size, pooling, preprocessing, dev, progress, dtype)


def _batches(model, imgs, tap, batch_size, pooling, preprocessing, dev, progress, dtype):
    from .progress import progress as _progress

    n = len(imgs)
    in_dtype = _model_dtype(model)
    was_training = model.training
    model.eval()
    try:
        with tap, torch.inference_mode():
            index_batches = [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
            # the next batch is read (cache or files) while this one runs; uint8 -> float on `dev`
            loaded = imgs.batches(index_batches, device=dev)
            for idx, x in _progress(loaded, total=len(index_batches), enabled=progress, desc="features",
                                    unit="batch"):
                start = int(idx[0])
                if preprocessing is not None:
                    x = preprocessing(x)
                _run_batch(model, tap, x.to(in_dtype), first=start == 0, batch_size=batch_size)
                out = {name: pool(tap.outputs[name], pooling).to("cpu", dtype) for name in tap.layers}
                tap.clear()  # drop the device tensors before the next batch
                yield idx, out
                del out, x  # not held through the next forward pass (the caller may have let go)
    finally:
        model.train(was_training)


def _run_batch(model, tap, x: torch.Tensor, *, first: bool, batch_size: int) -> None:
    """tap.run(x); an out-of-memory error names the batch size to lower, and a model that cannot
    take the first batch at all (images too small, wrong size) is reported as bad input."""
    try:
        tap.run(x)
    except torch.OutOfMemoryError as exc:
        from .errors import ResourceError

        raise ResourceError(f"out of memory running a batch of {x.shape[0]} images of shape {tuple(x.shape[1:])} "
                            f"on {x.device}: lower batch_size (now {batch_size}) or use a smaller image size") from exc
    except RuntimeError as exc:
        if not first:  # later batches have the same shape: this is not about the input
            raise
        raise DataError(f"{type(model).__name__} cannot run images of shape {tuple(x.shape[1:])} (after "
                        f"preprocessing): {str(exc).strip().splitlines()[0][:200]}; resize the images (ImageSet "
                        "size=..., or the backbone's preprocessing) to the size the model expects") from exc


def extract_features(model: nn.Module, images, layers=None, *, batch_size: int = 32, pooling: str = "flatten",
                     preprocessing: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     device: str | torch.device | None = None, progress: bool = True,
                     dtype: torch.dtype = torch.float32, image_cache=None) -> dict[str, np.ndarray]:
    """Features of all ``images``: ``{layer: ndarray (n_images, n_features)}``.

    Same arguments as :func:`iter_features`; keys are module names (spec labels such as
    'V1' are resolved to their module names).

    Raises ResourceError (after the first batch, before the output arrays are allocated) when
    n_images x n_features x itemsize over all layers exceeds the memory budget (see
    :mod:`brainalign.resources`).
    """
    out: dict[str, np.ndarray] = {}
    images = _as_images(images)
    n = len(images)
    if dtype not in (torch.float16, torch.float32, torch.float64):
        raise ConfigError(f"extract_features returns NumPy arrays: dtype must be torch.float16, float32 or "
                          f"float64, got {dtype}")
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    for idx, batch in iter_features(model, images, layers, batch_size=batch_size, pooling=pooling,
                                    preprocessing=preprocessing, device=device, progress=progress, dtype=dtype,
                                    image_cache=image_cache):
        if not out:  # the first batch gives every layer's width: check before allocating
            _check_output_memory(n, {k: t.shape[1] for k, t in batch.items()}, np_dtype.itemsize, pooling)
        for name, t in batch.items():
            if name not in out:
                out[name] = np.empty((n, t.shape[1]), dtype=np_dtype)
            out[name][idx] = t.numpy()
    return out


def _check_output_memory(n_images: int, widths: dict[str, int], itemsize: int, pooling: str) -> None:
    """ResourceError when n_images x sum(widths) x itemsize bytes exceed the memory budget."""
    from .resources import check_memory

    widest = max(widths, key=widths.get)
    pool_fix = "pooling='avg' or 'adaptive2'" if check_pooling(pooling) == "flatten" else "a smaller pooling"
    check_memory(n_images * sum(widths.values()) * itemsize,
                 what=f"the features of {len(widths)} layer(s) for {n_images} images "
                      f"({sum(widths.values())} values per image; widest {widest!r}: {widths[widest]})",
                 fix=f"use {pool_fix}, fewer layers, or stream batches with iter_features() "
                     "(e.g. into rsa.RDMAccumulator) instead of holding every feature")
