"""``tcdn search``: the frames and videos of a feature file nearest a query."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search",
        help="find the frames and videos of a feature file nearest an image, a video or a row",
        description="Search a feature file (from `tcdn features`) for the frames and videos "
        "nearest a query, print them with their distances, and write a montage of the query and "
        "the nearest frames. An image or a video is embedded by the network the features came "
        "from (the checkpoint in the feature file's meta, or --checkpoint).",
    )
    p.add_argument(
        "query",
        nargs="?",
        type=Path,
        default=None,
        help="an image, or a video (its frames' features averaged, or one frame with --at); "
        "leave it out with --row",
    )
    p.add_argument(
        "--features", type=Path, required=True, metavar="FILE.npz", help="the feature file"
    )
    p.add_argument(
        "--row", type=int, default=None, help="query with this row of the feature file instead"
    )
    p.add_argument(
        "--at",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with a video query: the frame at this time instead of the mean of all frames",
    )
    p.add_argument(
        "--k", type=positive_int, default=10, help="how many frames and videos (default: 10)"
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="the network that embeds an image or video query (default: the one the feature "
        "file's meta names)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("search.png"),
        help="the montage to write: the query, then the nearest frames (default: search.png; "
        "an existing file is replaced only if tcdn wrote it)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--exact",
        action="store_true",
        help="scan every row (exact) instead of the approximate index beside the feature file",
    )
    how.add_argument(
        "--index",
        action="store_true",
        help="search through the approximate index FILE.npz.index (built and saved there if "
        "absent or stale); the default from 100,000 rows, or when the index exists",
    )
    p.add_argument("--no-montage", action="store_true", help="print the answer only")
    add_common_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tcdn.flows import search_features

    found = search_features(
        args.features,
        args.query,
        row=args.row,
        at=args.at,
        k=args.k,
        checkpoint=args.checkpoint,
        montage=None if args.no_montage else args.out,
        device=args.device,
        exact=args.exact,
        index=args.index,
    )
    sys.stdout.write(found.table() + "\n")
    return 0
