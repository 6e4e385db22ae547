"""``tcdn discover``: cluster a collection's frames (or videos), or given features, and score the clusters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tcdn.cli.common import (
    add_collection_args,
    add_common_args,
    interrupted_nothing_written,
    positive_int,
    progress,
    seed_int,
)
from tcdn.discovery.config import LEVELS, METHODS, NORMS, DiscoverConfig
from tcdn.errors import TcdnError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discover",
        help="cluster the frames (or videos) of a folder, a frame store or given features; score "
        "the clusters when labels exist; write the report",
        description="Cluster the frames (or videos) of a collection, labelled or not, and write "
        "clusters.csv (video, source frame, time, cluster, distance to its centre), videos.csv "
        "(each video's dominant cluster and its share), results.json and, unless --no-report, "
        "report.html. With labels (class sub-folders or labels.csv) the clusters are scored "
        "against them beside the baselines; without, K is --k or chosen without labels.",
    )
    add_collection_args(p, optional=True)
    p.add_argument(
        "--features",
        type=Path,
        default=None,
        metavar="FILE.npz",
        help="cluster the features of this .npz (from `tcdn features` or any numpy.savez with "
        "features, video, frame, label) instead of decoding videos; scores the sources "
        "'given' and random_assignment",
    )
    p.add_argument(
        "--features-npy",
        type=Path,
        default=None,
        metavar="X.npy",
        help="cluster the (N, D) array of this .npy instead of decoding videos; needs --index",
    )
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        metavar="CSV",
        help="with --features-npy: a CSV of N rows with the columns video,frame[,label] naming "
        "each feature row",
    )
    p.add_argument(
        "--level",
        choices=LEVELS,
        default="frame",
        help="cluster frames (default), or videos: the mean of each video's frame features",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file or run folder (its last checkpoint)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder for results.json, clusters.csv, videos.csv and the report",
    )
    p.add_argument(
        "--sources",
        default=None,
        help="comma-separated feature sources (default: all; trained needs --checkpoint)",
    )
    p.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated clustering methods (default: {','.join(METHODS)})",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="network layer whose output is the feature (default: the network's own, fc6 for AlexNet)",
    )
    p.add_argument(
        "--norm",
        choices=NORMS,
        default=None,
        help="l2: divide each frame's network feature by its length before clustering (K-means "
        "then compares directions, as the losses do); none: as the layer gives it (default)",
    )
    p.add_argument(
        "--k",
        type=positive_int,
        default=None,
        help="number of clusters (default: the number of classes when every video is labelled, "
        "else chosen without labels by the best K-means silhouette)",
    )
    p.add_argument(
        "--max-k",
        type=positive_int,
        default=None,
        help="without --k or labels: the largest K considered (default: sqrt(rows/2), 10 to 200)",
    )
    p.add_argument(
        "--no-report",
        action="store_true",
        help="do not write the HTML report (report.html and report/)",
    )
    p.add_argument(
        "--repeats", type=positive_int, default=10, help="repeats for mean ± std (default: 10)"
    )
    p.add_argument(
        "--random-inits",
        type=positive_int,
        default=None,
        help="freshly initialised networks for the random_init baseline, each a forward pass "
        "over every frame (default: 3, at most --repeats)",
    )
    p.add_argument(
        "--frame-stride",
        type=positive_int,
        default=1,
        help="use every S-th frame (or feature row) of each video",
    )
    p.add_argument(
        "--max-per-video",
        type=positive_int,
        default=None,
        help="use at most this many frames (or feature rows) per video",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="seed of clustering and random-init networks"
    )
    p.add_argument(
        "--group",
        dest="groups",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="also score the clusters against an attribute of the videos, read from their names: "
        "the regex's first (group), e.g. --group 'performer=_(\\d+)\\.mp4$'; adds nmi_NAME "
        "(do the clusters follow who is in a video rather than what happens?); repeatable",
    )
    add_common_args(p)
    p.set_defaults(run=run, interrupted=interrupted_nothing_written)


def run(args: argparse.Namespace) -> int:
    from tcdn.discovery.results import format_table
    from tcdn.flows import discover

    config = DiscoverConfig(
        sources=DiscoverConfig.parse_list(args.sources),
        methods=DiscoverConfig.parse_list(args.methods) or (),
        layer=args.layer,
        norm=args.norm,
        repeats=args.repeats,
        random_inits=args.random_inits,
        seed=args.seed,
        k=args.k,
        max_k=args.max_k,
        frame_stride=args.frame_stride,
        max_per_video=args.max_per_video,
        level=args.level,
        groups=_parse_groups(args.groups),
    )
    discover(
        args.videos,
        args.checkpoint,
        config,
        features=args.features,
        features_npy=args.features_npy,
        index=args.index,
        out=args.out,
        report=not args.no_report,
        labels=args.labels,
        size=args.size,
        max_frames=args.max_frames,
        skip_bad=args.skip_bad,
        device=args.device,
        progress=progress(args),
        on_written=lambda found: sys.stdout.write(format_table(found.results) + "\n"),
    )
    return 0


def _parse_groups(items: list[str]) -> dict[str, str]:
    groups = {}
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name.strip() or not pattern:
            raise TcdnError(f"--group {item!r}: write NAME=REGEX, e.g. 'performer=_(\\d+)\\.mp4$'")
        groups[name.strip()] = pattern
    return groups
