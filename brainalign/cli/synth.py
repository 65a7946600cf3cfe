"""``brainalign synth --out DIR``: write the synthetic brain in the THINGS-EEG2 and Shen layouts."""
from __future__ import annotations

from pathlib import Path

from ..validation import float_type, int_type
from ._options import seed_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="write the synthetic brain (EEG + fMRI with known ground truth) to disk",
        description="Write the synthetic brain under DIR: DIR/things-eeg2 in the THINGS-EEG2 preprocessed "
                    "layout and DIR/shen in the Shen 2019 BData layout (with DIR/shen/images), so the real "
                    "loaders read it: 'brainalign data things-eeg2 DIR/things-eeg2'.")
    p.add_argument("--out", required=True, help="output folder (must be empty or new unless --overwrite)")
    seed_option(p, "seed of images, brain and noise (default: 0)")
    count = lambda name: int_type(name, minimum=1)  # noqa: E731
    p.add_argument("--subjects", type=count("--subjects"), default=None, help="number of subjects (default: 4)")
    p.add_argument("--concepts", type=count("--concepts"), default=None, help="training concepts (default: 24)")
    p.add_argument("--test-concepts", type=count("--test-concepts"), default=None, help="test concepts (default: 12)")
    p.add_argument("--images-per-concept", type=count("--images-per-concept"), default=None,
                   help="training images per concept (default: 8)")
    p.add_argument("--test-images-per-concept", type=count("--test-images-per-concept"), default=None,
                   help="test images per concept (default: 3)")
    p.add_argument("--image-size", type=count("--image-size"), default=None, help="image side in pixels (default: 64)")
    p.add_argument("--snr", type=float_type("--snr", minimum=0, exclusive_minimum=True), default=None,
                   help="EEG single-trial signal/noise std ratio (default: 0.1)")
    p.add_argument("--format", choices=["both", "things-eeg2", "shen"], default="both",
                   help="which layouts to write (default: both)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty DIR, replacing files of the same names (nothing is deleted)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.synthetic import SyntheticBrain
    from ..errors import OutputExistsError
    from ..io import check_free_space, ensure_dir

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} is a file: choose a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise OutputExistsError(f"--out {out} exists and is not empty: choose a new folder or pass --overwrite "
                                "(files of the same names are replaced; nothing is deleted)")
    overrides = {k: v for k, v in dict(
        n_subjects=args.subjects, n_train_concepts=args.concepts, n_test_concepts=args.test_concepts,
        train_images_per_concept=args.images_per_concept, test_images_per_concept=args.test_images_per_concept,
        image_size=args.image_size, snr=args.snr).items() if v is not None}
    brain = SyntheticBrain(seed=args.seed, **overrides)
    cfg = brain.config
    ensure_dir(out, "--out")  # a read-only or missing location is named as such, before the size check
    check_free_space(out, disk_bytes(brain, args.format), what=f"the synthetic brain ({cfg.n_subjects} subjects, "
                     f"{args.format} layout{'s' if args.format == 'both' else ''})",
                     fix="use fewer subjects, concepts or images per concept", option="--out")
    if args.format in ("both", "things-eeg2"):
        root = brain.write_things_eeg2(out / "things-eeg2", overwrite=args.overwrite)
        print(f"THINGS-EEG2 layout: {root}  ({cfg.n_subjects} subjects; training "
              f"{len(brain.labels('training'))} images x {cfg.n_repetitions_train} reps, test "
              f"{len(brain.labels('test'))} images x {cfg.n_repetitions_test} reps)")
    if args.format in ("both", "shen"):
        root = brain.write_shen(out / "shen", overwrite=args.overwrite)
        print(f"Shen fMRI layout:   {root}  (images in {root / 'images'})")
    print(f"load with: brainalign data things-eeg2 {out / 'things-eeg2'} --subject 1   |   "
          f"source strings 'things-eeg2:{out / 'things-eeg2'}', 'shen:{out / 'shen'}'")
    return 0


def disk_bytes(brain, layout: str = "both") -> float:
    """Bytes that writing ``brain`` in ``layout`` ('both', 'things-eeg2', 'shen') takes, about:
    subject 1's arrays times the number of subjects (EEG as stored, float32; fMRI as BData's
    float64) plus the images as raw RGB (an upper bound for their JPEG files)."""
    cfg = brain.config
    splits = ("training", "test")
    n_images = sum(len(brain.labels(sp)) for sp in splits)
    layouts = ("things-eeg2", "shen") if layout == "both" else (layout,)
    per_subject = 0
    if "things-eeg2" in layouts:
        per_subject += sum(brain.eeg_trials(1, sp).nbytes for sp in splits)
    if "shen" in layouts:
        per_subject += sum(2 * a.nbytes for sp in splits for a in brain.fmri_trials(1, sp).values())
    return len(layouts) * n_images * 3 * cfg.image_size ** 2 + cfg.n_subjects * per_subject
