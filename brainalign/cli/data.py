"""``brainalign data``: inspect neural data (THINGS-EEG2 root, Shen BData file, built-in datasets)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help="summarise neural data: THINGS-EEG2 roots, Shen fMRI files, the available datasets",
        description="Print what a dataset holds (shapes, channels, time range, concepts, ROIs) without "
                    "loading images. Note: THINGS-EEG2 .npy files are unpickled; only inspect data you trust.")
    sub = p.add_subparsers(dest="data_command", metavar="WHAT")
    t = sub.add_parser("things-eeg2", help="summary of one subject of a THINGS-EEG2 preprocessed release",
                       description="Shapes, channels, time range and concept counts of "
                                   "ROOT/preprocessed_data/sub-XX and ROOT/image_set/image_metadata.npy.")
    t.add_argument("root", help="folder holding preprocessed_data/ and image_set/")
    t.add_argument("--subject", default="1", help="subject number, e.g. 1 or sub-01 (default: 1)")
    t.add_argument("--split", choices=["training", "test"], default=None, help="only this split (default: both)")
    t.set_defaults(func=_things)
    s = sub.add_parser("shen", help="summary of a Shen 2019 BData fMRI file (needs the 'fmri' extra)",
                       description="Trials, voxels, ROIs with voxel counts, the stimulus column and repetitions.")
    s.add_argument("path", help="a .h5 BData file, e.g. sub-01_perceptionNaturalImageTest_original_VC.h5")
    s.add_argument("--label-column", default=None, help="stimulus column (default: stimulus_name, Label or image_index)")
    s.set_defaults(func=_shen)
    ls = sub.add_parser("list", help="datasets registered by plugins and the accepted source strings")
    ls.set_defaults(func=_list)
    p.set_defaults(func=_help(p))


def _help(parser):
    def run(args) -> int:
        parser.print_help()
        return 2
    return run


def _things(args) -> int:
    from ..data.things_eeg2 import format_summary, things_eeg2_summary

    print(format_summary(things_eeg2_summary(args.root, args.subject, args.split)))
    return 0


def _shen(args) -> int:
    from ..data.shen_fmri import format_shen_summary, shen_summary

    print(format_shen_summary(shen_summary(args.path, label_column=args.label_column)))
    return 0


def _list(args) -> int:
    from ..data.registry import SOURCE_FORMS, available_datasets

    for spec in available_datasets():
        alias = f" (alias {', '.join(spec.aliases)})" if spec.aliases else ""
        print(f"{spec.kind:5s} {spec.name}{alias}: {spec.description}")
    print("sources: " + "; ".join(SOURCE_FORMS))
    return 0
