"""The ``brainalign`` command line.

Each sub-command lives in its own module of this package with a ``register(subparsers)``
function that adds its parser and sets ``func`` (called with the parsed args; returns an
exit code or None). User errors (:class:`BrainAlignError`, argument errors, file-system
errors such as a read-only or full disk) print one line and exit with code 2; a failed
command leaves no new empty output folder behind.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import BrainAlignError

# Sub-command modules, in the order `brainalign --help` lists them.
COMMAND_MODULES = ["backbones", "plugins", "layers", "data", "synth", "align", "export", "compare",
                   "robustness", "variability", "demo", "reproduce"]


class UsageError(BrainAlignError):
    """Bad command-line arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _one_line(exc: BaseException) -> str:
    """The error message on one line (multi-line messages are joined)."""
    return " ".join(str(exc).split("\n")).strip() or type(exc).__name__


# Options naming folders a command may create (see _created_folders).
OUTPUT_OPTIONS = ("out", "out_dir", "cache_dir", "image_cache")


def _created_folders(args) -> list:
    """The folders this command may create, to remove again (when left empty) if it fails."""
    paths = [getattr(args, k) for k in OUTPUT_OPTIONS if isinstance(getattr(args, k, None), str)]
    if hasattr(args, "out") and args.out is None:
        from ..io import DEFAULT_RESULTS

        paths.append(DEFAULT_RESULTS)
    return paths


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="brainalign", description="Align vision models with human neural data "
                     "and measure how brain-like they are.")
    parser.add_argument("--version", action="version", version=f"brainalign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        args.argv = argv  # the exact command, for provenance in results
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        from ..data.image_cache import use_image_cache
        from ..io import new_folders_removed_on_failure

        with new_folders_removed_on_failure(*_created_folders(args)), \
                use_image_cache(getattr(args, "image_cache", None)):  # --image-cache / --no-image-cache
            code = args.func(args)
        return int(code or 0)
    except BrainAlignError as exc:
        print(f"brainalign: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file system problem (permissions, disk full, missing mount): not a bug
        if exc.errno is None:
            raise
        from ..io import describe_os_error

        if exc.filename:
            text = describe_os_error(exc, exc.filename).replace("cannot write", "cannot access", 1)
        else:  # a failed write() names no file: name the command's output folder instead
            folders = _created_folders(args) if args is not None else []
            text = describe_os_error(exc, folders[0] if folders else "a file")
            text = text.replace("cannot write", "cannot write under", 1) if folders else text
        print(f"brainalign: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resume = getattr(args, "command", None) == "align"  # runs keep a checkpoint per epoch
        print("brainalign: interrupted" + (" (the same command resumes each run from its last complete epoch)"
                                           if resume else ""), file=sys.stderr)
        return 130
