"""``brainalign data``: what a data source holds and what a default load gives (any registered dataset)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help="summarise neural data: any registered source (THINGS-EEG2 roots, Shen fMRI files, MNE "
                     "epochs, RDM files, the synthetic brain); 'list' shows them",
        description="Print what a data source holds (shapes, channels, time range, concepts, ROIs) and what a "
                    "default load gives, without loading images. SOURCE is a dataset name followed by its "
                    "LOCATION (e.g. 'things-eeg2 ROOT', 'shen FILE.h5'), a source string ('things-eeg2:ROOT') or "
                    "a path a plugin recognises; 'brainalign data list' lists the datasets. Note: THINGS-EEG2 "
                    ".npy files are unpickled; only inspect data you trust.")
    p.add_argument("source", nargs="?", metavar="SOURCE", help="a dataset name, a source string or a path; 'list'")
    p.add_argument("location", nargs="?", metavar="LOCATION", help="the dataset's folder or file, after a name")
    p.add_argument("--subject", default=None, help="subject number, e.g. 1 or sub-01 (default: the first one)")
    p.add_argument("--split", default=None, help="training or test (default: both where the source has both)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="a source option, e.g. -o label_column=Label (Shen), -o variable=RDMs (.mat RDMs); repeatable")
    p.add_argument("--label-column", default=None, help="Shen: the stimulus column (same as -o label_column=...)")
    p.set_defaults(func=_run(p))


def _run(parser):
    def run(args) -> int:
        if args.source is None:
            parser.print_help()
            return 2
        if args.source == "list" and args.location is None:
            return _list()
        from ..data.registry import describe_source

        source = args.source if args.location is None else f"{args.source}:{args.location}"
        options = _options(args.option)
        if args.label_column is not None:
            options["label_column"] = args.label_column
        print(describe_source(source, args.subject, args.split, **options))
        return 0
    return run


def _options(pairs: list[str]) -> dict:
    from ..errors import ConfigError

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r} must look like KEY=VALUE, e.g. -o label_column=Label")
        out[key.strip()] = value
    return out


def _list() -> int:
    from ..data.registry import available_datasets

    for spec in available_datasets():
        alias = f" (alias {', '.join(spec.aliases)})" if spec.aliases else ""
        print(f"{spec.modality or 'any':5s} {spec.name}{alias}: {spec.description}")
    print("sources: NAME:LOCATION (e.g. things-eeg2:ROOT, synthetic:SEED) or a path a dataset recognises; "
          "'brainalign data NAME LOCATION' describes one")
    return 0
