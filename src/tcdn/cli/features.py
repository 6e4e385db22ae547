"""``tcdn features``: one feature source of a collection's frames, saved as a feature file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
from tcdn.errors import TcdnError
from tcdn.features.featureset import FRAME_SOURCES

log = logging.getLogger("tcdn")


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
    import numpy as np

    from tcdn.features.extract import frame_features
    from tcdn.features.featureset import is_feature_file
    from tcdn.features.shards import ShardOptions, sharded_frame_features, world_size
    from tcdn.outputs import check_output_file
    from tcdn.training.checkpoint import load_checkpoint

    check_output_file(args.out, ours=is_feature_file)
    if args.source == "trained" and args.checkpoint is None:
        raise TcdnError(
            "--source trained (the default) needs --checkpoint; or choose --source random_init or raw_pixels"
        )
    dev = device(args.device)
    ckpt = load_checkpoint(args.checkpoint) if args.checkpoint else None
    size = frame_size(args.size, ckpt)
    if args.source != "raw_pixels":
        check_layer(args.layer, ckpt, size)
    dtype = np.float16 if args.float16 else np.float32
    if world_size() > 1:  # under torchrun: each process embeds its share, rank 0 writes the file
        options = ShardOptions(
            size,
            args.labels,
            args.max_frames,
            args.skip_bad,
            args.frame_stride,
            args.max_per_video,
            args.layer,
            args.seed,
            dev,
            progress(args),
            np.dtype(dtype).name,
        )
        done = sharded_frame_features(args.videos, args.source, ckpt, args.out, options)
        if done is None:
            return 0
        feats, skipped, n_videos = done.features, done.skipped, done.n_videos
    else:
        frames = load_collection(args, size)
        feats = frame_features(
            frames,
            args.source,
            ckpt,
            rows=frames.rows(args.frame_stride, args.max_per_video),
            layer=args.layer,
            seed=args.seed,
            device=dev,
            progress=progress(args),
            dtype=dtype,
        )
        skipped, n_videos = frames.skipped, len(frames.videos)
    feats.meta.update(
        collection=str(args.videos),
        frame_stride=args.frame_stride,
        max_per_video=args.max_per_video,
        skipped=skipped,
    )
    path = feats.save(args.out)
    log.info(
        "wrote %d x %d %s features of %d videos to %s",
        *feats.features.shape,
        args.source,
        n_videos,
        path,
    )
    return 0
