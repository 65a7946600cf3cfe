"""Options and output helpers shared by several sub-commands (one definition each)."""
from __future__ import annotations


def add_output_options(parser, command: str) -> None:
    """--out DIR and --overwrite (reports are never overwritten without it)."""
    parser.add_argument("--out", metavar="DIR", help=f"output folder (default: brainalign-results/{command}-<time>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="reuse a non-empty --out, replacing files of the same name")


def add_device_option(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: auto)")


def seed_option(parser, help: str, default: int = 0) -> None:
    """--seed N (an integer >= 0, checked like the API's seed=)."""
    from ..validation import SEED_MAX, int_type

    parser.add_argument("--seed", type=int_type("--seed", minimum=0, maximum=SEED_MAX), default=default, help=help)


def add_image_cache_option(parser) -> None:
    """--image-cache DIR / --no-image-cache (applied to every ImageSet of the command by main())."""
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--image-cache", metavar="DIR", default=None,
                   help="folder where image files are decoded once and reused by later epochs, runs and "
                        "processes (default: $BRAINALIGN_IMAGE_CACHE, else <cache dir>/images)")
    g.add_argument("--no-image-cache", dest="image_cache", action="store_const", const=False,
                   help="decode image files on every read instead")


def add_progress_option(parser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


from ..progress import log  # noqa: E402,F401  (status lines: one definition, in brainalign.progress)
