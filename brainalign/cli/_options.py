"""Options and output helpers shared by several sub-commands (one definition each)."""
from __future__ import annotations


def add_output_options(parser, command: str) -> None:
    """--out DIR and --overwrite (reports are never overwritten without it)."""
    parser.add_argument("--out", metavar="DIR", help=f"output folder (default: brainalign-results/{command}-<time>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="reuse a non-empty --out, replacing files of the same name")


def add_device_option(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: auto)")


def add_progress_option(parser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


from ..progress import log  # noqa: E402,F401  (status lines: one definition, in brainalign.progress)
