"""``tcdn discover``: cluster a collection's frames (or videos), or given features, and score the clusters."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.cli.common import (
    add_collection_args,
    add_common_args,
    check_layer,
    device,
    frame_size,
    interrupted_nothing_written,
    load_collection,
    positive_int,
    progress,
    seed_int,
)
from tcdn.discovery.config import LEVELS, METHODS, DiscoverConfig
from tcdn.errors import TcdnError

if TYPE_CHECKING:
    from tcdn.data.frameset import FrameSet
    from tcdn.features.featureset import FeatureSet

log = logging.getLogger("tcdn")


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


def _check_out(out: Path, report: bool) -> None:
    """--out can take results.json, clusters.csv, videos.csv and (with ``report``) the report
    (any there already being tcdn's): checked before any work."""
    from tcdn.outputs import check_output_files

    check_output_files(
        out,
        {"results.json": _is_results, "clusters.csv": _is_clusters, "videos.csv": _is_videos},
    )
    if report:
        from tcdn.report.files import check_report_dir

        check_report_dir(out)


def _is_results(path: Path) -> bool:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("tcdn-results")


def _csv_of(header: str) -> Callable[[Path], bool]:
    """Whether a file is a CSV whose first line starts with ``header`` (one tcdn wrote)."""

    def check(path: Path) -> bool:
        try:
            with path.open(encoding="utf-8") as fh:
                return fh.readline().startswith(header)
        except (OSError, UnicodeDecodeError):
            return False

    return check


_is_clusters = _csv_of("video,frame,")
_is_videos = _csv_of("video,label,rows,")


def run(args: argparse.Namespace) -> int:
    from tcdn import runlock
    from tcdn.discovery.pipeline import discover_collection, discover_features
    from tcdn.discovery.results import format_table, write_results
    from tcdn.features.shards import world_size
    from tcdn.training.checkpoint import load_checkpoint

    _check_out(args.out, report=not args.no_report)
    config = DiscoverConfig(
        sources=DiscoverConfig.parse_list(args.sources),
        methods=DiscoverConfig.parse_list(args.methods) or (),
        layer=args.layer,
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
    computed = None
    if world_size() > 1 and args.videos is not None and args.checkpoint is not None:
        # under torchrun: every process embeds its share of the network sources; rank 0 discovers
        computed = sharded_discovery_features(args, config)
        if computed is None:
            return 0
    with runlock.hold(args.out):
        feats = _given_features(args)
        frames = None
        if feats is not None:
            found = discover_features(feats, config)
            if not args.no_report:
                frames = _frames_of_features(feats)
        else:
            dev = device(args.device)
            ckpt = load_checkpoint(args.checkpoint) if args.checkpoint else None
            config.sources_for(ckpt is not None)  # a bad --sources fails before decoding
            size = frame_size(args.size, ckpt)
            check_layer(args.layer, ckpt, size)
            if ckpt is None:
                log.info(
                    "no --checkpoint: clustering features of a randomly initialised network "
                    "(random_init) and raw pixels only; give --checkpoint RUN to score a trained one"
                )
            frames = load_collection(args, size)
            found = discover_collection(
                frames, ckpt, config, device=dev, progress=progress(args), computed=computed
            )
            found.results["collection"] = str(args.videos)
        results, assignments, clustered = found
        write_results(args.out, clustered, results, assignments)
        sys.stdout.write(format_table(results) + "\n")
        log.info("wrote %s, clusters.csv and videos.csv", args.out / "results.json")
        if not args.no_report:
            from tcdn.report.prepare import write_report

            page = write_report(args.out, found, frames, seed=args.seed)
            log.info("the report: open %s", page.resolve().as_uri())
    return 0


def sharded_discovery_features(
    args: argparse.Namespace, config: DiscoverConfig
) -> dict[tuple[str, int], Any] | None:
    """The network features a discovery needs (``trained``, each ``random_init`` repeat), computed
    by the processes of a torchrun job (:func:`tcdn.features.shards.sharded_jobs`); rank 0 gets
    them, the other ranks ``None``."""
    from tcdn.features.shards import ShardOptions, sharded_jobs
    from tcdn.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    sources = config.sources_for(True)
    jobs = [("trained", 0)] if "trained" in sources else []
    if "random_init" in sources:
        jobs += [("random_init", r) for r in range(config.random_init_repeats)]
    size = frame_size(args.size, ckpt)
    options = ShardOptions(
        size, args.labels, args.max_frames, args.skip_bad, config.frame_stride,
        config.max_per_video, config.layer, config.seed, device(args.device), progress(args),
    )  # fmt: skip
    done = sharded_jobs(args.videos, jobs, ckpt, args.out / "features.npz", options)
    return None if done is None else {job: fs.features for job, fs in done.jobs.items()}


def _parse_groups(items: list[str]) -> dict[str, str]:
    groups = {}
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or not name.strip() or not pattern:
            raise TcdnError(f"--group {item!r}: write NAME=REGEX, e.g. 'performer=_(\\d+)\\.mp4$'")
        groups[name.strip()] = pattern
    return groups


def _frames_of_features(feats: FeatureSet) -> FrameSet | None:
    """The frames given features came from, for the report's montages: the frame store their
    meta names (a video folder is not decoded again just for pictures); ``None`` otherwise."""
    from tcdn.data.store import is_store, open_store

    collection = feats.meta.get("collection")
    if collection and is_store(collection):
        try:
            return open_store(collection)
        except TcdnError as exc:
            log.warning("the report shows no frames: %s", exc)
            return None
    log.info(
        "the report names the sample frames without showing them: the features' collection %s "
        "is not a frame store",
        collection,
    )
    return None


def _given_features(args: argparse.Namespace) -> FeatureSet | None:
    """The feature set given by --features or --features-npy/--index; ``None`` for a VIDEOS folder."""
    from tcdn.features.featureset import FeatureSet

    inputs = [
        name
        for name, given in (
            ("VIDEOS", args.videos is not None),
            ("--features", args.features is not None),
            ("--features-npy/--index", args.features_npy is not None or args.index is not None),
        )
        if given
    ]
    if len(inputs) != 1:
        raise TcdnError(
            "give exactly one input: a VIDEOS folder, --features FILE.npz, or --features-npy X.npy "
            f"with --index CSV (got {' and '.join(inputs) or 'none'})"
        )
    if inputs[0] == "VIDEOS":
        return None
    for flag, value in (
        ("--checkpoint", args.checkpoint),
        ("--sources", args.sources),
        ("--layer", args.layer),
        ("--labels", args.labels),
        ("--size", args.size),
        ("--max-frames", args.max_frames),
        ("--skip-bad", args.skip_bad or None),
        ("--device", args.device),
    ):
        if value is not None:
            raise TcdnError(
                f"{flag} applies to a VIDEOS folder, but {inputs[0]} gives the features: drop {flag}"
            )
    if args.features is not None:
        return FeatureSet.load(args.features)
    if args.features_npy is None or args.index is None:
        missing, given = (
            ("--index", "--features-npy") if args.index is None else ("--features-npy", "--index")
        )
        raise TcdnError(
            f"{given} needs {missing}: a .npy of (N, D) features and a video,frame[,label] CSV of its N rows"
        )
    return FeatureSet.from_arrays(args.features_npy, args.index)
