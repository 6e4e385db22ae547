"""``tcdn features``: one feature source of a collection's frames, saved as a feature file."""

from __future__ import annotations

import argparse
from pathlib import Path

from tcdn.cli.common import (
    add_collection_args,
    add_common_args,
    interrupted_nothing_written,
    positive_int,
    progress,
    seed_int,
)
from tcdn.features.featureset import FRAME_SOURCES
from tcdn.training.config import FEATURE_NORMS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features",
        help="compute the features of a folder's frames and save them to one .npz file",
        description="Compute one feature source for the frames of a folder of videos and save a "
        "feature file (.npz: features, video, frame, label, meta) that `tcdn discover --features` "
        "reads, or that numpy.load opens for any other use.",
    )
    add_collection_args(p)
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file or run folder (its last checkpoint); needed for --source trained, "
        "and gives random_init its architecture",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE.npz",
        help="the feature file to write (a feature file tcdn wrote there before is replaced "
        "atomically; any other file is left alone)",
    )
    p.add_argument(
        "--source",
        choices=FRAME_SOURCES,
        default="trained",
        help="trained: the checkpoint's network (default); random_init: the same network with "
        "random weights, seeded by --seed; raw_pixels: the pixels reduced by PCA (a baseline)",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="network layer whose output is the feature (default: the network's own: fc6 for "
        "AlexNet, fc for GoogLeNet, pool for ResNet-18; unused by raw_pixels)",
    )
    p.add_argument(
        "--norm",
        choices=FEATURE_NORMS,
        default=None,
        help="l2: each frame's network feature divided by its length; none: as the layer gives "
        "it (default: the recipe's feature_norm, l2 for best, actions and two-stream; unused by "
        "raw_pixels)",
    )
    p.add_argument(
        "--frame-stride",
        type=positive_int,
        default=1,
        help="keep every S-th frame of each video (default: 1, every frame)",
    )
    p.add_argument(
        "--max-per-video",
        type=positive_int,
        default=None,
        help="keep at most this many frames per video (after --frame-stride)",
    )
    p.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of the random-init network and of the PCA (default: 0)",
    )
    p.add_argument(
        "--float16",
        action="store_true",
        help="store the features as float16: half the memory and file size (a million 4,096-d "
        "frames take 8 GiB, not 16); `tcdn discover --features` clusters them as they are",
    )
    add_common_args(p)
    p.set_defaults(run=run, interrupted=interrupted_nothing_written)


def run(args: argparse.Namespace) -> int:
    from tcdn.features.write import write_features

    write_features(
        args.videos,
        args.out,
        source=args.source,
        checkpoint=args.checkpoint,
        layer=args.layer,
        norm=args.norm,
        frame_stride=args.frame_stride,
        max_per_video=args.max_per_video,
        seed=args.seed,
        float16=args.float16,
        labels=args.labels,
        size=args.size,
        max_frames=args.max_frames,
        skip_bad=args.skip_bad,
        device=args.device,
        progress=progress(args),
    )
    return 0
