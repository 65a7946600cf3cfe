"""A synthetic brain with a known ground truth: the default data of the demo and the tests.

What it is
----------
* **Images**: procedural objects in K concepts. A concept fixes the outline (superellipse
  with lobes), the colour, the texture type (grating or plaid) and the background tint.
  Within a concept, position, size, rotation, *texture orientation, texture spatial
  frequency, texture contrast and brightness* vary from image to image. The concept labels
  say nothing about these within-concept attributes.
* **Hidden brain**: a fixed, seeded network that is none of the backbones. Stage 1 is a
  quadrature Gabor-energy bank (4 orientations x 2 frequencies: texture, like V1);
  colour-opponent and luminance channels join at stage 2; stages 2-4 are random ReLU
  convolutions with growing receptive fields, stage 4 globally pooled
  (:meth:`SyntheticBrain.hidden_stages` gives the ground-truth features). Each stage is
  read out through its top principal axes (``n_latent``), a spatial pattern over the 17
  THINGS-EEG2 channels and a temporal kernel peaking at increasing latencies (default 75,
  105, 135, 165 ms; Gaussian rise of 14 ms, slower decay of 35 ms): early stages drive early
  time points. Single trials add
  spatially and temporally correlated noise (``snr`` = stimulus-signal std / single-trial
  noise std) and a stimulus-independent evoked response. fMRI-like ROIs read the same
  hierarchy (V1 <- stage 1, V2 <- stages 1+2, V3 <- stage 2, V4 <- stage 3, LOC <- stage 4)
  through random voxel weights with voxel noise.
* **Subjects** 1..n_subjects share the brain but have their own perturbation of the
  spatial patterns, latent mixing, latencies and voxel weights (``subject_variability``).

Because the brain weighs texture and brightness that vary within concepts (and hue, which the
coarse classes ignore), a model trained only to classify the coarse classes (:meth:`labels`:
outline family x texture type, shared by training and held-out concepts) is measurably far
from it, and aligning to the EEG has something to learn that transfers to unseen (test)
concepts. Training and test concepts are disjoint; the classes are shared.

Temporal hierarchy (default config, seed 0, test split, subjects 1-2, RSA of the repetition-
averaged EEG's correlation RDM with each stage's RDM): nothing before ~45 ms (|rho| < 0.05);
stage 1 peaks at 80 ms (0.43), stages 2 and 3 at 140 ms (0.59, 0.61), stage 4 at 160 ms
(0.55). With the default snr 0.1, pairwise decoding of the test EEG peaks at ~0.75-0.9, not
saturated (saturated decoding RDMs lose their geometry). fMRI ROIs V1 and LOC match stages 1
and 4 best. The classifier-vs-brain gap on held-out concepts: ``python examples/synthetic_gap.py``.

Example::

    brain = SyntheticBrain(seed=0)
    train = brain.eeg(1, "training")            # NeuralDataset, responses (192, 17, 20)
    test = brain.eeg(1, "test", average_repetitions=False)   # keeps (36, 20, 17, 20) trials
    rois = brain.fmri(1, "test")                # {'V1': NeuralDataset (36, n_voxels), ...}
    brain.write_things_eeg2("out/things")       # the exact THINGS-EEG2 layout
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError, OutputExistsError
from ..io import atomic_write, write_json
from ..resources import check_memory
from ..validation import check_seed
from ._eeg import DEFAULT_CHANNELS, DEFAULT_TIME_WINDOW, check_split, channel_indices, select_trials, time_indices, \
    zscore_stats
from .dataset import NeuralDataset
from .images import ImageSet

SPLITS = ("training", "test")
STAGES = ("stage1", "stage2", "stage3", "stage4")
ROIS = ("V1", "V2", "V3", "V4", "LOC")
# ROI -> weights over stages (the fMRI hierarchy reads the same network).
_ROI_STAGES = {"V1": {"stage1": 1.0}, "V2": {"stage1": 0.6, "stage2": 0.4}, "V3": {"stage2": 1.0},
               "V4": {"stage3": 1.0}, "LOC": {"stage4": 1.0}}
_INTERNAL_SIZE = 64  # the hidden brain sees every image at 64x64, whatever image_size is
SUBJECTS_KEPT = 8  # subjects whose trials stay cached at once (bounds memory for many subjects)
_GRIDS = {"stage1": 1, "stage2": 2, "stage3": 2, "stage4": 1}  # pooled readout grid per stage
_HUES = ["red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet",
         "magenta", "rose"]
_SHAPES = {0: "blob", 3: "trefoil", 4: "quatrefoil", 5: "star5", 6: "star6"}


@dataclass
class SyntheticConfig:
    """Sizes and noise of the synthetic brain (all scalable).

    Defaults give 24 x 8 = 192 training and 12 x 3 = 36 test images, 17 channels x 100
    times (-0.2 .. 0.79 s at 100 Hz), 4 / 20 repetitions, 4 subjects.
    """

    n_train_concepts: int = 24
    n_test_concepts: int = 12
    n_classes: int = 8
    train_images_per_concept: int = 8
    test_images_per_concept: int = 3
    image_size: int = 64
    channel_names: tuple = DEFAULT_CHANNELS
    sfreq: float = 100.0
    tmin: float = -0.2
    n_times: int = 100
    n_repetitions_train: int = 4
    n_repetitions_test: int = 20
    snr: float = 0.1
    stage_latencies: tuple = (0.075, 0.105, 0.135, 0.165)
    stage_width: float = 0.014
    stage_decay: float = 0.035
    n_latent: int = 10
    n_subjects: int = 4
    subject_variability: float = 0.3
    n_voxels: int = 64
    fmri_snr: float = 0.8
    n_fmri_repetitions_train: int = 2
    n_fmri_repetitions_test: int = 8
    seed: int = 0

    def __post_init__(self):
        ints = ["n_train_concepts", "n_test_concepts", "n_classes", "train_images_per_concept", "test_images_per_concept",
                "image_size", "n_times", "n_repetitions_train", "n_repetitions_test", "n_latent",
                "n_subjects", "n_voxels", "n_fmri_repetitions_train", "n_fmri_repetitions_test"]
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"SyntheticConfig.{name} must be a positive integer, got {v!r}")
        check_seed(self.seed, "SyntheticConfig.seed")  # as every seed= (a negative one wrapped around silently)
        if self.n_train_concepts < 2 or self.n_test_concepts < 2:
            raise ConfigError("SyntheticConfig needs at least 2 training and 2 test concepts")
        if not 2 <= self.n_classes <= 2 * len(_SHAPES):
            raise ConfigError(f"SyntheticConfig.n_classes must be 2..{2 * len(_SHAPES)} (outline families x "
                              f"texture types), got {self.n_classes}")
        if self.image_size < 16:
            raise ConfigError(f"SyntheticConfig.image_size must be >= 16 pixels, got {self.image_size}")
        if not self.stage_width > 0 or not self.stage_decay > 0:
            raise ConfigError("stage_width and stage_decay must be > 0 (seconds)")
        if not self.snr > 0 or not self.fmri_snr > 0:
            raise ConfigError("snr and fmri_snr must be > 0 (signal std / single-trial noise std)")
        if self.subject_variability < 0:
            raise ConfigError("subject_variability must be >= 0")
        if len(self.stage_latencies) != len(STAGES):
            raise ConfigError(f"stage_latencies needs {len(STAGES)} values (seconds), got {self.stage_latencies}")
        self.channel_names = tuple(str(c) for c in self.channel_names)
        self.stage_latencies = tuple(float(x) for x in self.stage_latencies)
        if len(set(self.channel_names)) != len(self.channel_names) or not self.channel_names:
            raise ConfigError("channel_names must be non-empty and unique")
        if self.n_latent >= len(self.channel_names):
            raise ConfigError(f"n_latent ({self.n_latent}) must be smaller than the number of channels "
                              f"({len(self.channel_names)}): each stage projects onto n_latent channel patterns")

    def memory_bytes(self) -> float:
        """Peak memory (bytes, estimate) of a brain with this config: its images (float32 at
        ``image_size`` and at the hidden network's 64 px), the hidden network's feature maps of
        the largest split (computed at once), and the trials of the subjects held at once
        (:data:`SUBJECTS_KEPT`), with the float64 temporaries of the noisiest step."""
        n = {sp: n_c * per for sp, n_c, per in (
            ("training", self.n_train_concepts, self.train_images_per_concept),
            ("test", self.n_test_concepts, self.test_images_per_concept))}
        images = sum(n.values()) * 3 * 4.0 * (self.image_size ** 2 + _INTERNAL_SIZE ** 2)
        feature_maps = max(n.values()) * 48 * _INTERNAL_SIZE ** 2 * 4.0  # Gabor responses + energies
        n_ch = len(self.channel_names)
        eeg = {"training": n["training"] * self.n_repetitions_train, "test": n["test"] * self.n_repetitions_test}
        fmri = {"training": n["training"] * self.n_fmri_repetitions_train,
                "test": n["test"] * self.n_fmri_repetitions_test}
        per_subject = sum(4.0 * (eeg[sp] * n_ch * self.n_times + fmri[sp] * self.n_voxels * len(ROIS)) for sp in SPLITS)
        temporaries = 3 * 8.0 * max(eeg.values()) * n_ch * self.n_times  # noise, filtered, mixed (float64)
        return images + feature_maps + min(self.n_subjects, SUBJECTS_KEPT) * per_subject + temporaries

    @property
    def times(self) -> np.ndarray:
        """Time stamps in seconds, (n_times,)."""
        return np.round(self.tmin + np.arange(self.n_times) / self.sfreq, 6)


class SyntheticBrain:
    """The synthetic brain. ``SyntheticBrain(config=None, **overrides)``, e.g. ``SyntheticBrain(seed=3)``.

    Everything (images, network, subjects, noise) is a deterministic function of the config.
    """

    def __init__(self, config: SyntheticConfig | None = None, **overrides):
        config = config if config is not None else SyntheticConfig()
        if overrides:
            known = {f.name for f in fields(SyntheticConfig)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ConfigError(f"unknown SyntheticConfig field(s) {unknown}; known: {', '.join(sorted(known))}")
            config = replace(config, **overrides)
        self.config = config
        n_img = (config.n_train_concepts * config.train_images_per_concept
                 + config.n_test_concepts * config.test_images_per_concept)
        check_memory(config.memory_bytes(), what=f"the synthetic brain ({n_img} images of {config.image_size} px, "
                     f"{config.n_subjects} subjects)",
                     fix="use fewer concepts, images per concept or repetitions, or a smaller image size")
        self._cache: dict = {}
        self._concepts = self._make_concepts()
        self._net = self._make_network()
        self._calibrate()

    # --- randomness ----------------------------------------------------------------
    def _rng(self, *key: int) -> np.random.Generator:
        """An independent generator per purpose, so changing one size does not reshuffle the rest."""
        return np.random.default_rng([int(self.config.seed) % (2**32), *key])

    # --- concepts and images -------------------------------------------------------
    def _make_concepts(self) -> list[dict]:
        cfg = self.config
        n = cfg.n_train_concepts + cfg.n_test_concepts
        rng = self._rng(1)
        hue = (rng.permutation(n) + rng.uniform(0, 0.8, n)) / n  # spread hues, then jitter
        classes = self._class_kinds()
        concepts = []
        for i in range(n):
            # Coarse class = outline family x texture type, shared by training and test concepts (as
            # ImageNet classes relate to THINGS concepts); each split cycles through every class.
            k = (i if i < cfg.n_train_concepts else i - cfg.n_train_concepts) % cfg.n_classes
            lobes, plaid = classes[k]
            c = dict(
                hue=float(hue[i]), sat=float(rng.uniform(0.55, 0.95)), val=float(rng.uniform(0.7, 1.0)),
                lobes=lobes, amp=0.0 if lobes == 0 else float(rng.uniform(0.2, 0.35)),
                power=float(rng.choice([1.0, 2.0, 4.0])), aspect=float(rng.uniform(0.7, 1.4)),
                plaid=plaid, bg=float(rng.uniform(0.1, 0.55)),
                bg_tint=rng.uniform(-0.08, 0.08, 3).tolist(), coarse_class=k,
            )
            c["name"] = f"{_HUES[int(c['hue'] * len(_HUES)) % len(_HUES)]}_{_SHAPES[lobes]}_{i:03d}"
            concepts.append(c)
        return concepts

    def _class_kinds(self) -> list[tuple[int, bool]]:
        """(lobes, plaid) of each coarse class: distinct outline-family x texture-type pairs."""
        pairs = [(lobes, plaid) for plaid in (False, True) for lobes in _SHAPES]
        order = self._rng(7).permutation(len(pairs))
        return [pairs[j] for j in order[: self.config.n_classes]]

    def class_names(self) -> list[str]:
        """Names of the coarse classes (outline family + texture type), e.g. 'star5-plaid'."""
        return [f"{_SHAPES[lobes]}-{'plaid' if plaid else 'grating'}" for lobes, plaid in self._class_kinds()]

    def _split_concepts(self, split: str) -> list[dict]:
        split = check_split(split)
        k = self.config.n_train_concepts
        return self._concepts[:k] if split == "training" else self._concepts[k:]

    def concept_names(self, split: str) -> list[str]:
        """Names of the concepts of ``split`` ('training' or 'test'); disjoint between splits."""
        return [c["name"] for c in self._split_concepts(split)]

    def _per_concept(self, split: str) -> int:
        return self.config.train_images_per_concept if split == "training" else self.config.test_images_per_concept

    def labels(self, split: str) -> np.ndarray:
        """(n_images,) coarse class index (0..n_classes-1, see :meth:`class_names`) of each image.

        The classes are shared by both splits, so a classifier trained on the training images (the
        stand-in for ImageNet pretraining) also has a meaningful task on the held-out concepts,
        without ever seeing those concepts. The concept of each image is :meth:`concept_labels`.
        """
        classes = np.array([c["coarse_class"] for c in self._split_concepts(split)])
        return classes[self.concept_labels(split)]

    def concept_labels(self, split: str) -> np.ndarray:
        """(n_images,) concept index (0-based within the split) of each image."""
        split = check_split(split)
        return np.repeat(np.arange(len(self._split_concepts(split))), self._per_concept(split))

    def image_concepts(self, split: str) -> np.ndarray:
        """(n_images,) concept name of each image."""
        return np.array(self.concept_names(split))[self.concept_labels(split)]

    def stimulus_ids(self, split: str) -> np.ndarray:
        """(n_images,) file stems used on disk, THINGS style ('<concept>_<nn><b|s>')."""
        suffix = "b" if check_split(split) == "training" else "s"
        per = self._per_concept(split)
        return np.array([f"{name}_{j + 1:02d}{suffix}" for name in self.concept_names(split) for j in range(per)])

    def image_attributes(self, split: str) -> dict[str, np.ndarray]:
        """Per-image attributes, each (n_images,): position, size, rotation and the
        within-concept attributes the brain cares about (texture orientation/frequency/contrast,
        brightness)."""
        split = check_split(split)
        key = ("attrs", split)
        if key not in self._cache:
            n = len(self.concept_labels(split))
            rng = self._rng(2, SPLITS.index(split))
            self._cache[key] = dict(
                cx=rng.uniform(-0.25, 0.25, n), cy=rng.uniform(-0.25, 0.25, n),
                size=rng.uniform(0.32, 0.5, n), rotation=rng.uniform(0, 2 * np.pi, n),
                tex_orientation=rng.uniform(0, np.pi, n), tex_frequency=rng.uniform(2.5, 7.0, n),
                tex_contrast=rng.uniform(0.1, 1.0, n), brightness=rng.uniform(0.55, 1.1, n),
                phase=rng.uniform(0, 2 * np.pi, n), bg_jitter=rng.uniform(-0.1, 0.1, n),
            )
        return self._cache[key]

    def images(self, split: str, size: int | None = None) -> ImageSet:
        """The stimuli of ``split`` as an in-memory ImageSet, float (n, 3, size, size) in [0, 1]."""
        key = ("imageset", check_split(split), int(size or self.config.image_size))
        if key not in self._cache:  # shared by every dataset of this split (ImageSet validates once)
            self._cache[key] = ImageSet.from_array(self.image_tensor(split, size))
        return self._cache[key]

    def image_tensor(self, split: str, size: int | None = None) -> torch.Tensor:
        """float32 (n_images, 3, size, size) in [0, 1] (size defaults to config.image_size)."""
        split = check_split(split)
        size = int(size or self.config.image_size)
        key = ("images", split, size)
        if key not in self._cache:
            concepts = self._split_concepts(split)
            with _few_threads():
                self._cache[key] = render_images([concepts[i] for i in self.concept_labels(split)],
                                                 self.image_attributes(split), size)
        return self._cache[key]

    # --- the hidden network ----------------------------------------------------------
    def _make_network(self) -> dict:
        g = torch.Generator().manual_seed(int(self.config.seed) % (2**63) + 7)
        net = {"gabor": _gabor_bank()}
        n_in = net["gabor"].shape[0] // 2 + 3  # energies + colour-opponent channels
        for name, n_out in (("conv2", 24), ("conv3", 32), ("conv4", 48)):
            w = torch.randn(n_out, n_in, 3, 3, generator=g) * math.sqrt(2.0 / (n_in * 9))
            b = torch.randn(n_out, generator=g) * 0.1
            net[name] = (w, b)
            n_in = n_out
        return net

    @torch.no_grad()
    def _stage_maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-stage feature maps, each normalised with the calibration statistics."""
        x = torch.as_tensor(images, dtype=torch.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise DataError(f"images must be (n, 3, H, W), got shape {tuple(x.shape)}")
        x = F.interpolate(x, size=(_INTERNAL_SIZE, _INTERNAL_SIZE), mode="bilinear", antialias=True,
                          align_corners=False)
        lum = x.mean(1, keepdim=True)
        rg = x[:, 0:1] - x[:, 1:2]
        by = x[:, 2:3] - 0.5 * (x[:, 0:1] + x[:, 1:2])
        bank = self._net["gabor"]
        resp = F.conv2d(lum - 0.5, bank, padding=bank.shape[-1] // 2)
        energy = torch.sqrt(resp[:, 0::2] ** 2 + resp[:, 1::2] ** 2 + 1e-6)  # quadrature pairs
        # Stage 1 is oriented energy only (texture, edges); colour and luminance join at stage 2,
        # which keeps the early and late representations distinct.
        s1 = self._norm("stage1", F.avg_pool2d(energy, 4))  # (n, 8, 16, 16)
        maps = {"stage1": s1}
        h = torch.cat([s1, self._norm("colour", F.avg_pool2d(torch.cat([rg, by, lum], 1), 4))], 1)
        for stage, conv, pool in (("stage2", "conv2", 2), ("stage3", "conv3", 2), ("stage4", "conv4", 0)):
            w, b = self._net[conv]
            h = F.relu(F.conv2d(h, w, b, padding=1))
            h = F.avg_pool2d(h, pool) if pool else h.mean((2, 3), keepdim=True)
            h = self._norm(stage, h)
            maps[stage] = h
        return maps

    def _norm(self, stage: str, h: torch.Tensor) -> torch.Tensor:
        stats = self._net.setdefault("norm", {})
        if stage not in stats:  # first call = calibration on the training images
            mu = h.mean((0, 2, 3), keepdim=True)
            sd = h.std((0, 2, 3), keepdim=True).clamp_min(1e-6)
            stats[stage] = (mu, sd)
        mu, sd = stats[stage]
        return (h - mu) / sd

    @torch.no_grad()
    def hidden_stages(self, images) -> dict[str, np.ndarray]:
        """Ground-truth representations: {stage: float32 (n_images, n_features)}.

        ``images``: a split name, an ImageSet or a float tensor (n, 3, H, W) in [0, 1].
        Stage 1 (oriented energy) and stage 4 are globally pooled, stages 2-3 pooled to
        2x2 grids; every feature is z-scored with the training images' statistics (fixed
        at construction). The EEG and fMRI read exactly these features.
        """
        split = images if isinstance(images, str) else None
        if split is not None and ("feats", split) in self._cache:
            return self._cache[("feats", split)]
        if split is not None:
            images = self.image_tensor(split, _INTERNAL_SIZE)
        elif isinstance(images, ImageSet):
            images = images.load()
        with _few_threads():
            maps = self._stage_maps(images)
        feats = {s: F.adaptive_avg_pool2d(m, _GRIDS[s]).flatten(1).numpy().astype(np.float64)
                 for s, m in maps.items()}
        if not hasattr(self, "_feat_stats"):  # calibration call: fix the z-scoring constants
            self._feat_stats = {s: (f.mean(0), f.std(0) + 1e-6) for s, f in feats.items()}
        out = {s: ((f - self._feat_stats[s][0]) / self._feat_stats[s][1]).astype(np.float32)
               for s, f in feats.items()}
        if split is not None:
            self._cache[("feats", split)] = out
        return out

    def _calibrate(self) -> None:
        """Fix normalisation constants, readout projections and the signal scale on the
        training images, so every later call maps an image to the same response."""
        cfg = self.config
        feats = self.hidden_stages("training")
        rng = self._rng(3)
        self._proj = {}
        for s in STAGES:
            # The EEG reads each stage's main axes of variation of the per-image-centred
            # features (top principal components, orthonormal), so 1-Pearson RDMs of the
            # readout keep the stage's geometry; scaled to unit variance on training images.
            f = _centre_rows(feats[s].astype(np.float64))
            _, _, vt = np.linalg.svd(f - f.mean(0), full_matrices=False)
            k = min(cfg.n_latent, vt.shape[0])
            proj = np.zeros((f.shape[1], cfg.n_latent))
            proj[:, :k] = vt[:k].T
            self._proj[s] = proj / ((f @ proj)[:, :k].std() + 1e-9)
        # Channel "positions" put early stages over occipital sites and late ones over parietal.
        occ = np.array([_occipitalness(c) for c in cfg.channel_names])
        self._patterns = {}
        for i, s in enumerate(STAGES):
            gain = 0.4 + (occ if i < 2 else 1.0 - occ) * (1.2 - 0.2 * i)
            # Orthonormal, zero-sum rows: the channel pattern's correlations equal the latents'
            # cosines, so the stage's geometry survives the sensor projection.
            a = rng.standard_normal((cfg.n_latent, len(occ))) * gain[None, :]
            a -= a.mean(1, keepdims=True)
            q, _ = np.linalg.qr(a.T)  # (C, L); needs n_latent < n_channels for exactness
            self._patterns[s] = q.T * math.sqrt(len(occ) / cfg.n_latent)
        self._latent_jitter = {s: rng.normal(0, 0.008, cfg.n_latent) for s in STAGES}
        self._erp = rng.standard_normal(len(occ))  # stimulus-independent evoked response pattern
        n_ch = len(occ)
        mix = np.eye(n_ch) + 0.35 * rng.standard_normal((n_ch, n_ch))  # correlated sensor noise
        self._noise_mix = mix / np.linalg.norm(mix, axis=1, keepdims=True)
        self._voxel_w = {roi: {s: rng.standard_normal((feats[s].shape[1], cfg.n_voxels)) / math.sqrt(feats[s].shape[1])
                               for s in _ROI_STAGES[roi]} for roi in ROIS}
        self._voxel_base = {roi: rng.normal(0, 0.3, cfg.n_voxels) for roi in ROIS}
        # Signal scale: std of the stimulus-driven signal over training images, channels, 0-200 ms.
        sig = self._eeg_signal("training", subject=None)
        win = (cfg.times >= -1e-9) & (cfg.times < 0.2)
        sig = sig[..., win] if win.any() else sig
        self._signal_std = float(sig.std(axis=0).mean()) + 1e-9

    # --- subjects ------------------------------------------------------------------
    def _check_subject(self, subject) -> int:
        try:
            s = int(str(subject).replace("sub-", ""))
        except ValueError:
            s = -1
        if not 1 <= s <= self.config.n_subjects:
            raise DataError(f"subject {subject!r} does not exist in the synthetic brain: subjects are "
                            f"1..{self.config.n_subjects} (set n_subjects to have more)")
        return s

    def _subject_params(self, subject: int | None) -> dict:
        cfg = self.config
        if subject is None:  # the shared brain, no individual variability
            return dict(mix={s: np.eye(cfg.n_latent) for s in STAGES}, patterns=self._patterns,
                        shift={s: 0.0 for s in STAGES}, voxel_w=self._voxel_w)
        key = ("subject", subject)
        if key not in self._cache:
            v = cfg.subject_variability
            rng = self._rng(4, subject)
            mix = {s: np.eye(cfg.n_latent) + v * 0.3 * rng.standard_normal((cfg.n_latent, cfg.n_latent))
                   for s in STAGES}
            patterns = {s: p + v * 0.5 * p.std() * rng.standard_normal(p.shape) for s, p in self._patterns.items()}
            shift = {s: float(v * 0.012 * rng.standard_normal()) for s in STAGES}
            voxel_w = {roi: {s: w + v * 0.5 * w.std() * rng.standard_normal(w.shape) for s, w in ws.items()}
                       for roi, ws in self._voxel_w.items()}
            self._cache[key] = dict(mix=mix, patterns=patterns, shift=shift, voxel_w=voxel_w)
        return self._cache[key]

    # --- EEG -----------------------------------------------------------------------
    def _latents(self, split: str) -> dict[str, np.ndarray]:
        key = ("latents", split)
        if key not in self._cache:
            feats = self.hidden_stages(split)
            self._cache[key] = {s: _centre_rows(feats[s].astype(np.float64)) @ self._proj[s] for s in STAGES}
        return self._cache[key]

    def _eeg_signal(self, split: str, subject: int | None) -> np.ndarray:
        """Noise-free stimulus-driven EEG, float64 (n_images, n_channels, n_times)."""
        cfg = self.config
        p = self._subject_params(subject)
        lat = self._latents(split)
        t = cfg.times
        out = 0.0
        for s, mu in zip(STAGES, cfg.stage_latencies):
            z = lat[s] @ p["mix"][s]  # (n, L)
            peak = mu + p["shift"][s] + self._latent_jitter[s]  # (L,)
            kern = stage_kernel(t, peak, cfg.stage_width, cfg.stage_decay)  # (L, T)
            out = out + np.matmul((z[:, :, None] * p["patterns"][s][None]).transpose(0, 2, 1), kern)
        return out / math.sqrt(cfg.n_latent * len(STAGES))

    def eeg_trials(self, subject, split: str) -> np.ndarray:
        """Raw single trials as written to disk: float32 (n_images, n_repetitions, n_channels, n_times)
        over all channels and times of the config (no selection, no z-scoring)."""
        cfg = self.config
        subject, split = self._check_subject(subject), check_split(split)
        key = ("trials", subject, split)
        if key not in self._cache:
            from scipy.ndimage import gaussian_filter1d

            sig = self._eeg_signal(split, subject)
            n_rep = cfg.n_repetitions_train if split == "training" else cfg.n_repetitions_test
            rng = self._rng(5, subject, SPLITS.index(split))
            noise = rng.standard_normal((sig.shape[0], n_rep, sig.shape[1], sig.shape[2]))
            noise = gaussian_filter1d(noise, 1.0, axis=-1)  # EEG noise is temporally smooth...
            noise = np.matmul(self._noise_mix, noise)  # ...and spatially correlated (C x C mixing)
            noise *= self._signal_std / cfg.snr / noise.std()
            t = cfg.times
            erp = self._erp[:, None] * (np.exp(-0.5 * ((t - 0.1) / 0.03) ** 2) - 0.6 * np.exp(-0.5 * ((t - 0.17) / 0.04) ** 2))
            trials = (sig[:, None] + erp[None, None] * self._signal_std + noise).astype(np.float32)
            self._keep_subject_data(key, trials)
            return trials
        return self._cache[key]

    def eeg(self, subject, split: str = "training", *, average_repetitions: bool = True,
            channels=None, time_window=DEFAULT_TIME_WINDOW, zscore="feature",
            image_size: int | None = None) -> NeuralDataset:
        """EEG of ``subject`` (1..n_subjects) for ``split``, with the THINGS-EEG2 loader's semantics.

        Channels are selected by name in the requested order (default None: all of
        ``config.channel_names``, i.e. the 17 THINGS-EEG2 channels), samples with start <= t < stop
        (default 0-200 ms = 20 samples), z-scored with the same subject's *training* split
        statistics (``zscore='feature'``: per channel x time over images and repetitions;
        'global': one mean and one std, as ReAlnet; None: raw), then averaged over
        repetitions. Returns responses (n_images, n_channels, n_times); with
        ``average_repetitions=False`` the z-scored trials are kept in ``.repetitions``
        (n_images, n_repetitions, n_channels, n_times) and ``responses`` is their mean.
        """
        cfg = self.config
        subject, split = self._check_subject(subject), check_split(split)
        src = "the synthetic brain"
        ch = channel_indices(cfg.channel_names, channels, src)
        ti = time_indices(cfg.times, time_window, src)
        trials = select_trials(self.eeg_trials(subject, split), ch, ti)
        from ._eeg import zscore_mode

        if (zscore := zscore_mode(zscore)) is not None:
            mean, std = zscore_stats(select_trials(self.eeg_trials(subject, "training"), ch, ti), zscore)
            trials = (trials - mean) / std
        return NeuralDataset(
            images=self.images(split, image_size), responses=trials.mean(1),
            repetitions=None if average_repetitions else trials, modality="eeg", subject=subject,
            concepts=self.image_concepts(split), channel_names=[cfg.channel_names[i] for i in ch],
            times=cfg.times[ti], stimulus_ids=self.stimulus_ids(split),
            meta=dict(source="synthetic", seed=cfg.seed, split=split, zscore=zscore,
                      time_window=None if time_window is None else tuple(time_window)),
        )

    # --- fMRI ----------------------------------------------------------------------
    def fmri_trials(self, subject, split: str = "test") -> dict[str, np.ndarray]:
        """{roi: float32 (n_images, n_repetitions, n_voxels)} raw voxel responses."""
        cfg = self.config
        subject, split = self._check_subject(subject), check_split(split)
        key = ("fmri", subject, split)
        if key not in self._cache:
            feats = self.hidden_stages(split)
            p = self._subject_params(subject)
            n_rep = cfg.n_fmri_repetitions_train if split == "training" else cfg.n_fmri_repetitions_test
            out = {}
            for r, roi in enumerate(ROIS):
                sig = sum(wt * _centre_rows(feats[s].astype(np.float64)) @ p["voxel_w"][roi][s]
                          for s, wt in _ROI_STAGES[roi].items())
                sig = sig / (sig.std(0).mean() + 1e-9)
                rng = self._rng(6, subject, SPLITS.index(split), r)
                noise = rng.standard_normal((sig.shape[0], n_rep, sig.shape[1])) / cfg.fmri_snr
                out[roi] = (sig[:, None] + self._voxel_base[roi] + noise).astype(np.float32)
            self._keep_subject_data(key, out)
            return out
        return self._cache[key]

    def _keep_subject_data(self, key: tuple, value) -> None:
        """Cache one subject's trials, dropping the oldest subject's when more than SUBJECTS_KEPT are
        held: a brain with thousands of subjects streams them instead of growing without bound."""
        self._cache[key] = value
        kind = key[0]
        subjects = list(dict.fromkeys(k[1] for k in self._cache if k[0] == kind))
        for old in subjects[:-SUBJECTS_KEPT]:
            for k in [k for k in self._cache if k[0] == kind and k[1] == old]:
                del self._cache[k]

    def fmri(self, subject, split: str = "test", *, rois=ROIS, average_repetitions: bool = True,
             image_size: int | None = None) -> NeuralDataset:
        """fMRI-like ROI responses: one NeuralDataset (n_images, n_voxels of all ROIs) with a 'roi'
        channel descriptor (``select_channels(roi="V1")``, ``iter_rois()``).

        ROIs V1, V2, V3, V4, LOC read stages 1, 1+2, 2, 3, 4 of the same hidden network.
        Repetitions are kept in ``.repetitions`` when ``average_repetitions=False``.
        """
        subject, split = self._check_subject(subject), check_split(split)
        rois = [rois] if isinstance(rois, str) else list(rois)
        unknown = [r for r in rois if r not in ROIS]
        if unknown or not rois:
            raise DataError(f"unknown ROI(s) {unknown or rois} for the synthetic brain: choose from {', '.join(ROIS)}")
        trials = self.fmri_trials(subject, split)
        images = self.images(split, image_size)
        return NeuralDataset.from_rois({roi: NeuralDataset(images=images, responses=trials[roi].mean(1),
                                   repetitions=None if average_repetitions else trials[roi], modality="fmri",
                                   subject=subject, concepts=self.image_concepts(split), roi=roi,
                                   stimulus_ids=self.stimulus_ids(split),
                                   meta=dict(source="synthetic", seed=self.config.seed, split=split))
                for roi in rois})

    # --- writing to disk -------------------------------------------------------------
    def write_things_eeg2(self, root, *, subjects=None, overwrite: bool = False, image_format: str = "jpg") -> Path:
        """Write the brain in the THINGS-EEG2 preprocessed-release layout under ``root``::

            root/preprocessed_data/sub-01/preprocessed_eeg_training.npy   # pickled dict
            root/preprocessed_data/sub-01/preprocessed_eeg_test.npy
            root/image_set/image_metadata.npy
            root/image_set/training_images/00001_<concept>/<concept>_01b.jpg
            root/image_set/test_images/00001_<concept>/<concept>_01s.jpg

        EEG dicts hold 'preprocessed_eeg_data' (n_images, n_repetitions, n_channels, n_times),
        'ch_names' and 'times'. Refuses to replace existing files unless ``overwrite``.
        """
        root = Path(root)
        subjects = range(1, self.config.n_subjects + 1) if subjects is None else [self._check_subject(s) for s in subjects]
        targets = [root / "image_set" / "image_metadata.npy"] + [
            root / "preprocessed_data" / f"sub-{s:02d}" / f"preprocessed_eeg_{sp}.npy" for s in subjects for sp in SPLITS]
        _refuse_existing(targets, overwrite)
        meta = {}
        for split, folder, short in (("training", "training_images", "train"), ("test", "test_images", "test")):
            names = self.concept_names(split)
            concept_dirs = {n: f"{i + 1:05d}_{n}" for i, n in enumerate(names)}
            files = [f"{sid}.{image_format}" for sid in self.stimulus_ids(split)]
            concepts = [concept_dirs[c] for c in self.image_concepts(split)]
            _save_images(self.image_tensor(split), [root / "image_set" / folder / c / f for c, f in zip(concepts, files)],
                         overwrite)
            meta[f"{short}_img_files"] = files
            meta[f"{short}_img_concepts"] = concepts
        _save_pickled(root / "image_set" / "image_metadata.npy", meta)
        for s in subjects:
            d = root / "preprocessed_data" / f"sub-{s:02d}"
            for split in SPLITS:
                _save_pickled(d / f"preprocessed_eeg_{split}.npy",
                              {"preprocessed_eeg_data": self.eeg_trials(s, split),
                               "ch_names": list(self.config.channel_names), "times": self.config.times})
        write_json(root / "synthetic_config.json", asdict(self.config))
        return root

    def write_shen(self, root, *, images_dir=None, subjects=None, overwrite: bool = False,
                   image_format: str = "jpg") -> Path:
        """Write Shen-2019-style BData files (bdpy) and the stimulus images::

            root/sub-01_perceptionNaturalImageTraining_original_VC.h5
            root/sub-01_perceptionNaturalImageTest_original_VC.h5
            images_dir/<stimulus_name>.jpg          (default images_dir: root/images)

        Each file has one row per trial (image x repetition) with voxel columns, ROI masks
        ROI_V1, ROI_V2, ROI_V3, ROI_V4, ROI_LOC, ROI_VC, and per-trial 'stimulus_name'
        (stimulus number; its vmap maps numbers to the image file stems, as in Kamitani-lab
        files), 'image_index' (0-based) and 'Run' columns.
        """
        from .shen_fmri import _import_bdpy

        bdpy = _import_bdpy()
        root = Path(root)
        images_dir = Path(images_dir) if images_dir is not None else root / "images"
        subjects = range(1, self.config.n_subjects + 1) if subjects is None else [self._check_subject(s) for s in subjects]
        names = {"training": "Training", "test": "Test"}
        targets = [root / f"sub-{s:02d}_perceptionNaturalImage{names[sp]}_original_VC.h5" for s in subjects for sp in SPLITS]
        _refuse_existing(targets, overwrite)
        for split in SPLITS:
            ids = self.stimulus_ids(split)
            _save_images(self.image_tensor(split), [images_dir / f"{sid}.{image_format}" for sid in ids], overwrite)
        root.mkdir(parents=True, exist_ok=True)
        for s in subjects:
            for split in SPLITS:
                trials = self.fmri_trials(s, split)
                ids = self.stimulus_ids(split)
                n, n_rep = trials[ROIS[0]].shape[:2]
                # Trials in presentation order: repetition-major, like runs of a session.
                img_idx = np.tile(np.arange(n), n_rep)
                rep_idx = np.repeat(np.arange(n_rep), n)
                data = np.concatenate([trials[roi][img_idx, rep_idx] for roi in ROIS], axis=1)
                bd = bdpy.BData()
                bd.add(data, "VoxelData")
                bd.add((img_idx + 1).astype(float)[:, None], "stimulus_name")
                bd.add(img_idx.astype(float)[:, None], "image_index")
                bd.add((rep_idx + 1).astype(float)[:, None], "Run")
                n_vox = data.shape[1]
                off = 0
                for roi in ROIS:
                    mask = np.zeros(n_vox)
                    mask[off:off + trials[roi].shape[2]] = 1
                    off += trials[roi].shape[2]
                    bd.add_metadata(f"ROI_{roi}", mask, f"1 = voxel in {roi}", where="VoxelData")
                bd.add_metadata("ROI_VC", np.ones(n_vox), "1 = voxel in visual cortex", where="VoxelData")
                bd.add_vmap("stimulus_name", {float(i + 1): str(sid) for i, sid in enumerate(ids)})
                # bdpy writes by path: it fills the temporary file of an all-or-nothing write
                atomic_write(root / f"sub-{s:02d}_perceptionNaturalImage{names[split]}_original_VC.h5",
                             lambda fh, bd=bd: bd.save(fh.name, file_type="HDF5"))
        return root


# --- helpers ---------------------------------------------------------------------------
@contextlib.contextmanager
def _few_threads(n: int = 1):
    """The brain's convolutions are tiny: one thread avoids oversubscription stalls on busy CPUs."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(n, old))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def stage_kernel(times: np.ndarray, peaks: np.ndarray, rise: float, decay: float) -> np.ndarray:
    """(n_peaks, n_times) response time courses: a fast Gaussian rise (``rise`` s) to each peak and a
    slower Gaussian decay (``decay`` s), as evoked responses build quickly and fade slowly; the rise
    keeps a stage silent until ~2.5 rise-widths before its peak (the realistic ~50 ms onset)."""
    d = np.asarray(times, dtype=float)[None, :] - np.asarray(peaks, dtype=float)[:, None]
    return np.exp(-0.5 * (d / np.where(d < 0, rise, decay)) ** 2)


def _centre_rows(x: np.ndarray) -> np.ndarray:
    return x - x.mean(1, keepdims=True)


def _occipitalness(name: str) -> float:
    """1 for O channels, 0.6 for PO, 0 for P: a crude posterior-anterior axis."""
    n = name.upper()
    return 1.0 if n.startswith("O") else 0.6 if n.startswith("PO") else 0.0


def _gabor_bank(n_orient: int = 4, wavelengths=(5.0, 9.0), size: int = 11) -> torch.Tensor:
    """Quadrature Gabor pairs: (2 * n_orient * len(wavelengths), 1, size, size)."""
    r = torch.arange(size, dtype=torch.float32) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    kernels = []
    for lam in wavelengths:
        sigma = 0.5 * lam
        env = torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        for k in range(n_orient):
            th = math.pi * k / n_orient
            u = xx * math.cos(th) + yy * math.sin(th)
            for phase in (0.0, math.pi / 2):
                g = env * torch.cos(2 * math.pi * u / lam + phase)
                g = g - g.mean()
                kernels.append(g / g.norm())
    return torch.stack(kernels)[:, None]


def render_images(concepts: list[dict], attrs: dict[str, np.ndarray], size: int) -> torch.Tensor:
    """Render one image per (concept, attribute row): float32 (n, 3, size, size) in [0, 1].

    Vectorised over images: an outline from a superellipse norm with ``lobes`` radial
    modulations, filled with a grating or plaid texture of the image's orientation,
    frequency and contrast, over the concept's tinted background.
    """
    n = len(concepts)
    t = lambda key: torch.tensor([c[key] for c in concepts], dtype=torch.float32)[:, None, None]  # noqa: E731
    a = {k: torch.as_tensor(v, dtype=torch.float32)[:, None, None] for k, v in attrs.items()}
    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    dx, dy = xx[None] - a["cx"], yy[None] - a["cy"]
    cr, sr = torch.cos(a["rotation"]), torch.sin(a["rotation"])
    u, v = (dx * cr + dy * sr) / t("aspect").sqrt(), (-dx * sr + dy * cr) * t("aspect").sqrt()
    p = t("power")
    dist = (u.abs() ** p + v.abs() ** p + 1e-12) ** (1 / p)
    theta = torch.atan2(v, u)
    radius = a["size"] * (1 + t("amp") * torch.cos(t("lobes") * theta))
    mask = torch.sigmoid((radius - dist) * size / 1.5)
    # Texture in image coordinates (so its orientation is a property the brain sees directly).
    co, so = torch.cos(a["tex_orientation"]), torch.sin(a["tex_orientation"])
    f = a["tex_frequency"] * math.pi
    g1 = torch.cos(f * (xx * co + yy * so) + a["phase"])
    g2 = torch.cos(f * (xx * -so + yy * co) + a["phase"])
    tex = torch.where(t("plaid") > 0.5, 0.5 * (g1 + g2), g1)
    rgb = torch.stack([_hsv_to_rgb(c["hue"], c["sat"], c["val"]) for c in concepts])[:, :, None, None]  # (n,3,1,1)
    fill = rgb * a["brightness"][:, None] * (1 + 0.45 * a["tex_contrast"][:, None] * tex[:, None])
    tint = torch.tensor([c["bg_tint"] for c in concepts], dtype=torch.float32)[:, :, None, None]
    bg = (t("bg")[:, None] + a["bg_jitter"][:, None] + tint).expand(n, 3, size, size)
    img = mask[:, None] * fill + (1 - mask[:, None]) * bg
    return img.clamp(0, 1).contiguous()


def _hsv_to_rgb(h: float, s: float, v: float) -> torch.Tensor:
    import colorsys

    return torch.tensor(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=torch.float32)


def _refuse_existing(paths, overwrite: bool) -> None:
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{existing[0]} exists (and {len(existing) - 1} more): pass overwrite=True "
                                "(CLI: --overwrite) or choose another output folder")


def _save_pickled(path: Path, obj) -> None:
    """np.save of a pickled object (the THINGS-EEG2 release's format), written atomically."""
    atomic_write(path, lambda fh: np.save(fh, obj, allow_pickle=True))


def _save_images(images: torch.Tensor, paths: list[Path], overwrite: bool) -> None:
    from PIL import Image

    arr = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for a, p in zip(arr, paths):
        if p.exists() and not overwrite:
            raise OutputExistsError(f"image {p} exists: pass overwrite=True or choose another output folder")
        fmt = Image.registered_extensions().get(p.suffix.lower())
        kw = {"quality": 95} if fmt == "JPEG" else {}
        atomic_write(p, lambda fh, a=a: Image.fromarray(a).save(fh, format=fmt, **kw))


_BRAINS: dict = {}


def brain_at(location: str | None = None, **overrides) -> SyntheticBrain:
    """The shared brain of the source 'synthetic[:SEED]'; ``location`` is the SEED text (None: seed 0)."""
    try:
        seed = int(location) if location else 0
    except ValueError:
        raise DataError(f"'synthetic:{location}': the part after ':' is the seed and must be an integer") from None
    return cached_brain(seed, **overrides)


def cached_brain(seed: int = 0, **overrides) -> SyntheticBrain:
    """A shared SyntheticBrain per (seed, overrides): repeated loads reuse images and trials."""
    key = (int(seed), tuple(sorted((k, v if not isinstance(v, list) else tuple(v)) for k, v in overrides.items())))
    if key not in _BRAINS:
        if len(_BRAINS) >= 8:  # bounded: each brain holds its images and trials in memory
            _BRAINS.pop(next(iter(_BRAINS)))
        _BRAINS[key] = SyntheticBrain(seed=int(seed), **overrides)
    return _BRAINS[key]
