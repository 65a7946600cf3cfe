"""``brainalign compare MODEL... [--eeg SOURCE] [--fmri SOURCE]``: how brain-like are these models?"""
from __future__ import annotations

from ..validation import int_type
from ._options import add_image_cache_option, add_output_options, add_device_option, add_progress_option, log, seed_option


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare models with EEG/MEG (time-resolved RSA), fMRI (ROI RSA) and precomputed RDMs; writes a report",
        description="Compare models with neural data by RSA. EEG: each layer's RDM vs the EEG decoding RDM at "
                    "each time point (mean ± SEM over subjects, cluster-corrected differences vs the first "
                    "model). fMRI: per ROI the max over layers. Precomputed RDMs (--rdms): per RDM the max over layers. "
                    "Every registered analysis that supports the data runs (plugins add more). Without --eeg/--fmri "
                    "the built-in synthetic brain is used. Per-stage wall times go to the log and results.json. "
                    "Writes results.json, results.csv, PNG figures and report.md to --out.")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="backbone name/alias (cornet, resnet101, clip), timm:<name>, open_clip:<name>, an "
                        "aligned-model file/folder, or a path with {subject} (e.g. runs/sub-{subject:02d}_beta-100) "
                        "for one personalised model per subject")
    p.add_argument("--eeg", metavar="SOURCE", help="EEG/MEG data with repetitions: synthetic[:SEED], things-eeg2:ROOT, "
                                                   "mne:FILE-epo.fif (with --eeg-images) or a THINGS-EEG2 root")
    p.add_argument("--eeg-images", metavar="DIR", help="folder of the EEG/MEG stimulus images, for sources without "
                                                       "them (mne: files named after the event names)")
    p.add_argument("--fmri", metavar="SOURCE", help="fMRI data: synthetic[:SEED], shen:PATH or a Shen .h5 path")
    p.add_argument("--fmri-images", metavar="DIR", help="folder of the fMRI stimulus images (Shen's release has none)")
    p.add_argument("--rdms", metavar="SOURCE", help="precomputed neural RDMs: rdm:PATH (.npy, .mat, rsatoolbox "
                                                    "HDF5), with --rdm-images")
    p.add_argument("--rdm-images", metavar="DIR", help="folder of the RDMs' condition images (sorted file names = "
                                                       "RDM order)")
    p.add_argument("--analysis", dest="analyses", action="append", metavar="NAME",
                   help="run only this registered analysis (repeatable; default: every analysis the data supports)")
    p.add_argument("--subjects", metavar="LIST", help="subjects, e.g. 1,2 or 1-10 (default: all of the source)")
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="layers to read (default: each backbone's own)")
    add_output_options(p, "compare")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="random weights instead of the standard pretrained ones (no download needed)")
    p.add_argument("--weights", metavar="PATH", help="local weights file for a single backbone MODEL")
    add_device_option(p)
    add_image_cache_option(p)
    p.add_argument("--batch-size", type=int_type("--batch-size", minimum=1), default=32,
                   help="images per forward pass (default 32)")
    p.add_argument("--permutations", type=int_type("--permutations", minimum=1), default=1000,
                   help="sign-flip permutations of the cluster test (default 1000)")
    seed_option(p, "seed of the permutation tests (default 0)")
    p.add_argument("--cache-dir", metavar="DIR", help="cache for EEG decoding RDMs (default $BRAINALIGN_CACHE or "
                                                      "~/.cache/brainalign)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluate.compare import run_compare
    from ..data.subjects import parse_subjects

    outcome = run_compare(args.models, eeg=args.eeg, fmri=args.fmri, fmri_images=args.fmri_images,
                          eeg_images=args.eeg_images, rdms=args.rdms, rdm_images=args.rdm_images,
                          analyses=args.analyses,
                          subjects=parse_subjects(args.subjects),
                          layers=args.layers, out=args.out, overwrite=args.overwrite, pretrained=args.pretrained,
                          weights=args.weights, device=args.device, batch_size=args.batch_size,
                          cache_dir=args.cache_dir, n_permutations=args.permutations, seed=args.seed,
                          progress=args.progress, log=log, argv=["brainalign", *args.argv])
    print()
    print(outcome.table)
    print()
    print(f"Report: {outcome.out / 'report.md'}  (results.json, results.csv, "
          f"{', '.join(p.name for k, p in outcome.paths.items() if str(p).endswith('.png'))})")
    return 0
