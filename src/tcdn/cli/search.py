"""``tcdn search``: the frames and videos of a feature file nearest a query."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, device, positive_int
from tcdn.errors import TcdnError

log = logging.getLogger("tcdn")


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


def _seconds(t: float) -> str:
    return "" if not math.isfinite(t) else f"{t:.2f}"


def run(args: argparse.Namespace) -> int:
    from tcdn.report.montage import check_writable, save_montage
    from tcdn.search import hit, hit_frames, media_query, nearest, row_query
    from tcdn.search_index import (
        AUTO_INDEX_ROWS,
        approximate_nearest,
        index_path,
        open_features,
        open_index,
    )

    if (args.query is None) == (args.row is None):
        raise TcdnError("give one query: an image or video file, or --row N of the feature file")
    if args.row is not None and args.at is not None:
        raise TcdnError("--at applies to a video query, not to --row")
    if args.row is not None and args.checkpoint is not None:
        raise TcdnError("--checkpoint embeds an image or video query; --row needs none: drop it")
    if not args.no_montage:
        check_writable(args.out)
    fs = open_features(args.features)  # memory-mapped: a query reads few of its rows
    idx = None
    if not args.exact:
        idx = open_index(args.features, fs, build=args.index or len(fs) >= AUTO_INDEX_ROWS)
    if args.row is not None:
        query = row_query(fs, args.row)
    else:
        query = media_query(
            args.query, fs.meta, at=args.at, checkpoint=args.checkpoint, device=device(args.device)
        )
    if idx is None:
        answer = nearest(fs, query.vector, args.k, exclude=args.row)
    else:
        answer = approximate_nearest(fs, idx, query.vector, args.k, exclude=args.row)
    lines = [
        f"query: {query.description}; {len(fs)} rows of {fs.meta.get('layer') or ''} features "
        f"in {args.features}; "
        + ("exact scan" if idx is None else f"approximate index {index_path(args.features)}"),
        "",
        "nearest frames:",
        f"{'rank':>4}  {'distance':>10}  {'frame':>6}  {'time':>7}  video  (label)",
    ]
    for i, h in enumerate(answer.frames, 1):
        label = f"  ({h.label})" if h.label else ""
        lines.append(
            f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {_seconds(h.time):>7}  {h.video}{label}"
        )
    lines += ["", "nearest videos (by their nearest frame):"]
    lines.append(f"{'rank':>4}  {'distance':>10}  {'frame':>6}  video  (label)")
    for i, h in enumerate(answer.videos, 1):
        label = f"  ({h.label})" if h.label else ""
        lines.append(f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {h.video}{label}")
    sys.stdout.write("\n".join(lines) + "\n")
    if not args.no_montage:
        pictures = hit_frames(answer.frames, fs.meta)
        if args.row is not None:
            pictures = [*hit_frames([hit(fs, args.row, 0.0)], fs.meta), *pictures]
        else:
            pictures = [query.picture, *pictures]
        captions = ["query"] + [
            f"{i}. {h.distance:.3f}\n{Path(h.video).name}\n{h.label}"
            for i, h in enumerate(answer.frames, 1)
        ]
        save_montage(pictures, captions, args.out)
        log.info("wrote the montage %s", args.out)
    return 0
