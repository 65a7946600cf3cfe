"""``brainalign synth --out DIR``: write the synthetic brain in the THINGS-EEG2 and Shen layouts."""
from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="write the synthetic brain (EEG + fMRI with known ground truth) to disk",
        description="Write the synthetic brain under DIR: DIR/things-eeg2 in the THINGS-EEG2 preprocessed "
                    "layout and DIR/shen in the Shen 2019 BData layout (with DIR/shen/images), so the real "
                    "loaders read it: 'brainalign data things-eeg2 DIR/things-eeg2'.")
    p.add_argument("--out", required=True, help="output folder (must be empty or new unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="seed of images, brain and noise (default: 0)")
    p.add_argument("--subjects", type=int, default=None, help="number of subjects (default: 4)")
    p.add_argument("--concepts", type=int, default=None, help="training concepts (default: 24)")
    p.add_argument("--test-concepts", type=int, default=None, help="test concepts (default: 12)")
    p.add_argument("--images-per-concept", type=int, default=None, help="training images per concept (default: 8)")
    p.add_argument("--test-images-per-concept", type=int, default=None, help="test images per concept (default: 3)")
    p.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: 64)")
    p.add_argument("--snr", type=float, default=None, help="EEG single-trial signal/noise std ratio (default: 0.6)")
    p.add_argument("--format", choices=["both", "things-eeg2", "shen"], default="both",
                   help="which layouts to write (default: both)")
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty DIR, replacing files of the same names (nothing is deleted)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.synthetic import SyntheticBrain
    from ..errors import OutputExistsError

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
