"""The ``tcdn`` command. Thin: it parses and validates options, then calls the library.

Every problem a user can fix ends in one line naming the file or option and what to do, and a
non-zero exit status (2); no traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tcdn import __version__
from tcdn.errors import TcdnError

if TYPE_CHECKING:  # the library is imported inside each command, so that `tcdn --help` stays fast
    from tcdn.data.video import FrameSet
    from tcdn.features import FeatureSet
    from tcdn.pipeline import Discovery

#: the choices of --source and --level, repeated here (and checked by a test) to keep --help fast
FRAME_SOURCES = ("trained", "random_init", "raw_pixels")
LEVELS = ("frame", "video")
DATASET_NAMES = ("ucf101", "hmdb51", "5contexts")

log = logging.getLogger("tcdn")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def _add_collection_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        p.add_argument(
            "videos",
            type=Path,
            nargs="?",
            default=None,
            help="folder of videos (labels from class sub-folders or labels.csv), or a frame store "
            "made by `tcdn ingest`; leave it out when giving --features or --features-npy",
        )
    else:
        p.add_argument(
            "videos",
            type=Path,
            help="folder of videos (labels from class sub-folders or labels.csv), or a frame store "
            "made by `tcdn ingest` (read from disk as needed: use one for large collections)",
        )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="a video,label CSV; 'video' is relative to the folder (default: VIDEOS/labels.csv if present)",
    )
    p.add_argument(
        "--size",
        type=_positive_int,
        default=None,
        help="decode frames to SIZE x SIZE pixels (default: the model's image size)",
    )
    p.add_argument(
        "--max-frames",
        type=_positive_int,
        default=None,
        help="keep at most this many frames of each video",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip videos that cannot be decoded (with a warning) instead of stopping",
    )


def _add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default=None,
        help="torch device: cpu, cuda, cuda:1 or auto (default: cpu)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="hide progress bars (e.g. in batch jobs)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcdn",
        description="Learn features from unlabelled video with temporal coherence; discover actions and scenes.",
    )
    parser.add_argument("--version", action="version", version=f"tcdn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo", help="generate synthetic videos, train Lq, discover their classes, print the table"
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)"
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=200,
        help="training steps (default: 200, about 2 minutes on 2 cores)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=10,
        help="clustering repeats for mean ± std (default: 10)",
    )
    p.add_argument(
        "--frame-stride",
        type=_positive_int,
        default=2,
        help="score discovery on every S-th frame of each video (default: 2)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the data, the training and the clustering"
    )
    _add_common_args(p)

    p = sub.add_parser("generate", help="write the synthetic labelled videos to a folder")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument(
        "--classes", type=_positive_int, default=6, help="number of categories (default: 6)"
    )
    p.add_argument(
        "--videos-per-class",
        type=_positive_int,
        default=10,
        help="videos per category (default: 10)",
    )
    p.add_argument(
        "--min-frames",
        type=_positive_int,
        default=60,
        help="shortest video in frames (default: 60)",
    )
    p.add_argument(
        "--max-frames",
        type=_positive_int,
        default=120,
        help="longest video in frames (default: 120)",
    )
    p.add_argument(
        "--size", type=_positive_int, default=64, help="frame side in pixels (default: 64)"
    )
    p.add_argument(
        "--hue-spread",
        type=float,
        default=0.1,
        help="per-video colour nuisance, a fraction of the colour wheel in [0, 0.5] (default: 0.1); "
        "0.5 makes colour identify each video more strongly than its category does",
    )
    p.add_argument("--seed", type=int, default=0, help="seed; the same seed writes the same videos")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    p = sub.add_parser("train", help="train a network on a folder of videos (labels unused)")
    _add_collection_args(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run folder for checkpoints, config.yaml and log.jsonl",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a YAML file of training options; flags override it",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="set any training option (a TrainConfig field, value read as YAML), e.g. --set lr=0.01 "
        "--set model_options='{dropout: 0}'; repeatable; wins over --config and the flags below",
    )
    p.add_argument(
        "--loss",
        choices=("lq", "ls", "sfa", "ld"),
        default=None,
        help="lq: quadruplet (default, the paper's best); ls: siamese pairs; sfa: contrastive "
        "baseline (non-contiguous frames of one video as negatives); ld: cosine ranking triplets",
    )
    p.add_argument("--model", default=None, help="backbone (default: alexnet)")
    p.add_argument(
        "--steps", type=_positive_int, default=None, help="training iterations (paper: 30000)"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="tuples per step (default: 40 quadruplets / 120 pairs)",
    )
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (paper: 0.001)")
    p.add_argument(
        "--image-size", type=_positive_int, default=None, help="network input size (paper: 227)"
    )
    p.add_argument(
        "--far",
        type=_positive_int,
        default=None,
        help="n: offset of the far frame for lq (default: 20)",
    )
    p.add_argument(
        "--window",
        type=_positive_int,
        default=None,
        help="w: offset of the positive frame (default: 1)",
    )
    p.add_argument(
        "--mu",
        action="store_true",
        default=None,
        help="MU mode: one long stream of all videos, negatives from anywhere else in it",
    )
    p.add_argument(
        "--schedule",
        choices=("step", "cosine"),
        default=None,
        help="learning-rate schedule: step (x lr_gamma every lr_step steps, the release's) or cosine "
        "(to 0 at --steps)",
    )
    p.add_argument(
        "--augment",
        choices=("none", "appearance"),
        default=None,
        help="appearance: random flip, crop and colour for every frame on its own (off in the paper); "
        "helps where the same people appear in every video, can hurt where appearance is the signal",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        help="bfloat16 autocast of the forward pass (faster on recent GPUs)",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory layout (default: on; the same results to rounding, faster "
        "here, and needed by --compile); --no-channels-last turns it off",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the network (slow first step; needs a C++ compiler on CPU and "
        "channels-last)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also write TensorBoard events to OUT/tensorboard (needs the tensorboard package)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=None,
        help="steps between checkpoints (default: 1000)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of initialisation and sampling (default: 0)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    _add_common_args(p)
    p.epilog = (
        "Several processes or machines: torchrun --nproc_per_node=N -m tcdn train ... (DDP: NCCL "
        "on GPUs, gloo on CPUs); --batch-size is the global batch and must divide by the number "
        "of processes; rank 0 writes checkpoints and logs."
    )

    p = sub.add_parser(
        "features",
        help="compute the features of a folder's frames and save them to one .npz file",
        description="Compute one feature source for the frames of a folder of videos and save a "
        "feature file (.npz: features, video, frame, label, meta) that `tcdn discover --features` "
        "reads, or that numpy.load opens for any other use.",
    )
    _add_collection_args(p)
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
        help="the feature file to write (replaced atomically if it exists)",
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
        type=_positive_int,
        default=1,
        help="keep every S-th frame of each video (default: 1, every frame)",
    )
    p.add_argument(
        "--max-per-video",
        type=_positive_int,
        default=None,
        help="keep at most this many frames per video (after --frame-stride)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the random-init network and of the PCA (default: 0)",
    )
    _add_common_args(p)

    p = sub.add_parser(
        "discover",
        help="cluster the frames (or videos) of a labelled folder, or given features, and score the clusters",
    )
    _add_collection_args(p, optional=True)
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
        "--out", type=Path, required=True, help="output folder for results.json and clusters.csv"
    )
    p.add_argument(
        "--sources",
        default=None,
        help="comma-separated feature sources (default: all; trained needs --checkpoint)",
    )
    p.add_argument(
        "--methods", default="kmeans,spectral", help="clustering methods (default: kmeans,spectral)"
    )
    p.add_argument(
        "--layer",
        default=None,
        help="network layer whose output is the feature (default: the network's own, fc6 for AlexNet)",
    )
    p.add_argument(
        "--k",
        type=_positive_int,
        default=None,
        help="number of clusters (default: number of classes)",
    )
    p.add_argument(
        "--repeats", type=_positive_int, default=10, help="repeats for mean ± std (default: 10)"
    )
    p.add_argument(
        "--frame-stride",
        type=_positive_int,
        default=1,
        help="use every S-th frame (or feature row) of each video",
    )
    p.add_argument(
        "--max-per-video",
        type=_positive_int,
        default=None,
        help="use at most this many frames (or feature rows) per video",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of clustering and random-init networks"
    )
    _add_common_args(p)
    p = sub.add_parser(
        "ingest",
        help="decode a collection once into a frame store that train/features/discover read",
        description="Decode every video of a collection once, in parallel, into a frame store "
        "folder (raw uint8 frames read through mmap, or JPEG per frame). Re-running skips videos "
        "already done and redoes changed ones; an interrupted ingest resumes. Bad files are "
        "skipped, named in a summary and in the store's manifest.json.",
    )
    p.add_argument(
        "src",
        type=Path,
        help="the collection: a folder of videos or of frame-image folders, or a dataset root "
        "with --dataset",
    )
    p.add_argument("--out", type=Path, required=True, help="the store folder to create or update")
    p.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        default=None,
        help="read SRC in an official layout: ucf101 (UCF-101/ + ucfTrainTestlist/), hmdb51 "
        "(action folders + testTrainMulti_7030_splits/), 5contexts (train/ and test/ folders); "
        "default: a plain folder",
    )
    p.add_argument(
        "--split",
        choices=("train", "test", "all"),
        default=None,
        help="with --dataset: which videos (default: train for ucf101 and 5contexts, all for hmdb51)",
    )
    p.add_argument(
        "--fold",
        type=int,
        default=1,
        help="with --dataset ucf101/hmdb51: split 1, 2 or 3 (default: 1)",
    )
    p.add_argument(
        "--clips",
        type=_positive_int,
        default=None,
        help="with --dataset hmdb51: a random subset of this many clips, drawn with --seed (paper: 1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --clips (default: 0)")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="a video,label CSV for a plain folder (default: SRC/labels.csv if present)",
    )
    p.add_argument(
        "--size",
        type=_positive_int,
        default=227,
        help="frame side in pixels (default: 227, the paper's; must match the network's)",
    )
    p.add_argument(
        "--resize",
        choices=("squash", "crop"),
        default="squash",
        help="squash: scale the whole frame, aspect not kept (default, the paper's); "
        "crop: scale the shorter side, keep the centre",
    )
    p.add_argument(
        "--scaler",
        choices=("fast_bilinear", "bilinear", "area", "bicubic"),
        default="fast_bilinear",
        help="FFmpeg's scaling algorithm (default: fast_bilinear, the fastest measured; within "
        "about 1 grey level of bilinear)",
    )
    every = p.add_mutually_exclusive_group()
    every.add_argument(
        "--stride",
        type=_positive_int,
        default=1,
        help="keep every S-th frame (default: 1, every frame); divides the store size by S",
    )
    every.add_argument(
        "--fps",
        type=_positive_float,
        default=None,
        help="keep frames at about this rate, by their timestamps (instead of --stride)",
    )
    p.add_argument(
        "--max-frames",
        type=_positive_int,
        default=None,
        help="keep at most this many frames per video",
    )
    p.add_argument(
        "--storage",
        choices=("raw", "jpeg"),
        default="raw",
        help="raw: uint8 frames, H*W*3 bytes each, fastest reads (default); jpeg: one JPEG per "
        "frame, about 1/10 of the bytes, decoded on read",
    )
    p.add_argument(
        "--quality",
        type=_positive_int,
        default=90,
        help="JPEG quality 1-100 for --storage jpeg (default: 90)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="decoding processes (default: the number of CPU cores)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with an error (status 2) if any video could not be read; the store is still written",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _load_collection(args: argparse.Namespace, size: int) -> FrameSet:
    """The collection named by the shared collection options (``_add_collection_args``).

    A frame store (a folder with a manifest.json, from `tcdn ingest`) is opened and read from
    disk as needed; a folder of videos is ingested into a temporary store and read into memory.
    """
    from tcdn.data.store import is_store, open_store
    from tcdn.data.video import load_frames

    if is_store(args.videos):
        for flag, value in (
            ("--labels", args.labels),
            ("--max-frames", args.max_frames),
            ("--skip-bad", args.skip_bad or None),
        ):
            if value is not None:
                raise TcdnError(
                    f"{flag} applies to a video folder, but {args.videos} is a frame store (its "
                    f"videos and labels were fixed by `tcdn ingest`): drop {flag}, or ingest again"
                )
        frames = open_store(args.videos)
        height, width = frames.frames.shape[1:3]
        if (height, width) != (size, size):
            raise TcdnError(
                f"the frame store {args.videos} holds {width}x{height} frames but {size}x{size} are "
                f"needed: ingest again with --size {size}, or give --size {height} / a matching network"
            )
        return frames
    return load_frames(
        args.videos,
        size=size,
        labels_csv=args.labels,
        max_frames=args.max_frames,
        skip_bad=args.skip_bad,
        progress=not args.no_progress,
    )


def _device(name: str | None) -> str:
    """The torch device an option names (``None``: the CPU); checked by :func:`tcdn.train.resolve_device`."""
    from tcdn.train import resolve_device

    return str(resolve_device(name or "cpu"))


def _cmd_demo(args: argparse.Namespace) -> int:
    from tcdn.pipeline import format_table, run_demo

    results = run_demo(
        args.out,
        steps=args.steps,
        seed=args.seed,
        repeats=args.repeats,
        frame_stride=args.frame_stride,
        device=_device(args.device),
        progress=not args.no_progress,
    )
    sys.stdout.write(format_table(results) + "\n")
    log.info("wrote %s and %s", args.out / "results.json", args.out / "clusters.csv")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from tcdn.data.synthetic import SyntheticConfig, generate

    cfg = SyntheticConfig(
        n_classes=args.classes,
        videos_per_class=args.videos_per_class,
        min_frames=args.min_frames,
        max_frames=args.max_frames,
        size=args.size,
        seed=args.seed,
        hue_spread=args.hue_spread,
    )
    path = generate(args.out, cfg, progress=not args.no_progress)
    log.info("labels in %s", path)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tcdn.train import TrainConfig, parse_overrides, train

    if os.environ.get("RANK", "0") not in ("", "0"):  # under torchrun: rank 0 speaks for all
        logging.getLogger().setLevel(logging.WARNING)
        args.no_progress = True
    options = TrainConfig.from_yaml(args.config).to_dict() if args.config else {}
    flags = {
        "loss": args.loss,
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "image_size": args.image_size,
        "far": args.far,
        "window": args.window,
        "mu": args.mu,
        "schedule": args.schedule,
        "augment": args.augment,
        "bf16": args.bf16,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "tensorboard": args.tensorboard,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
    }
    options.update({k: v for k, v in flags.items() if v is not None})
    options.update(parse_overrides(args.overrides))
    if args.size is not None and "image_size" not in options:
        options["image_size"] = args.size
    cfg = TrainConfig.from_dict(options)
    size = args.size or cfg.image_size
    if size != cfg.image_size:
        raise TcdnError(
            f"--size {size} differs from the network's --image-size {cfg.image_size}: give one of them"
        )
    frames = _load_collection(args, size)
    ckpt = train(
        frames,
        cfg,
        args.out,
        resume=args.resume,
        device=_device(args.device),
        progress=not args.no_progress,
    )
    log.info("last checkpoint: %s", ckpt)
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from tcdn.features import frame_features
    from tcdn.pipeline import evaluation_rows
    from tcdn.train import load_checkpoint

    if args.out.is_dir():
        raise TcdnError(
            f"--out {args.out} is a folder: give the feature file to write, e.g. {args.out / 'features.npz'}"
        )
    device = _device(args.device)
    ckpt = load_checkpoint(args.checkpoint) if args.checkpoint else None
    if args.source == "trained" and ckpt is None:
        raise TcdnError(
            "--source trained (the default) needs --checkpoint; or choose --source random_init or raw_pixels"
        )
    size = args.size or (int(ckpt["config"]["image_size"]) if ckpt else 227)
    frames = _load_collection(args, size)
    rows = evaluation_rows(frames, args.frame_stride, args.max_per_video)
    fs = frame_features(
        frames,
        rows,
        args.source,
        ckpt,
        layer=args.layer,
        seed=args.seed,
        device=device,
        progress=not args.no_progress,
    )
    fs.meta.update(
        collection=str(args.videos),
        frame_stride=args.frame_stride,
        max_per_video=args.max_per_video,
        skipped=frames.skipped,
    )
    path = fs.save(args.out)
    log.info(
        "wrote %d x %d %s features of %d videos to %s",
        *fs.features.shape,
        args.source,
        len(frames.videos),
        path,
    )
    return 0


def _given_features(args: argparse.Namespace) -> FeatureSet | None:
    """The feature set given by --features or --features-npy/--index; ``None`` for a VIDEOS folder."""
    from tcdn.features import FeatureSet

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


def _cmd_discover(args: argparse.Namespace) -> int:
    from tcdn.pipeline import discover_features, format_table, write_results

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    fs = _given_features(args)
    if fs is not None:
        results, assignments, clustered = discover_features(
            fs,
            methods=methods,
            repeats=args.repeats,
            seed=args.seed,
            k=args.k,
            frame_stride=args.frame_stride,
            max_per_video=args.max_per_video,
            level=args.level,
        )
    else:
        results, assignments, clustered = _discover_videos(args, methods)
    write_results(args.out, clustered, results, assignments)
    sys.stdout.write(format_table(results) + "\n")
    log.info("wrote %s and %s", args.out / "results.json", args.out / "clusters.csv")
    return 0


def _discover_videos(args: argparse.Namespace, methods: list[str]) -> Discovery:
    from tcdn.pipeline import SOURCES, discover_collection
    from tcdn.train import load_checkpoint

    device = _device(args.device)
    ckpt = load_checkpoint(args.checkpoint) if args.checkpoint else None
    if args.sources:
        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    else:
        sources = [s for s in SOURCES if ckpt is not None or s != "trained"]
    if "trained" in sources and ckpt is None:
        raise TcdnError("--sources includes 'trained' but no --checkpoint was given")
    size = args.size or (int(ckpt["config"]["image_size"]) if ckpt else 227)
    frames = _load_collection(args, size)
    discovery = discover_collection(
        frames,
        ckpt,
        sources=sources,
        methods=methods,
        layer=args.layer,
        repeats=args.repeats,
        seed=args.seed,
        k=args.k,
        frame_stride=args.frame_stride,
        max_per_video=args.max_per_video,
        level=args.level,
        device=device,
        progress=not args.no_progress,
    )
    discovery.results["collection"] = str(args.videos)
    return discovery


def _cmd_ingest(args: argparse.Namespace) -> int:
    import os

    from tcdn.data.datasets import DATASETS
    from tcdn.data.store import StoreSettings, ingest
    from tcdn.data.video import DecodeSettings, find_videos

    if args.dataset is None:
        for flag, value in (("--split", args.split), ("--clips", args.clips)):
            if value is not None:
                raise TcdnError(f"{flag} needs --dataset (ucf101, hmdb51 or 5contexts)")
        entries = find_videos(args.src, args.labels)
    else:
        if args.labels is not None:
            raise TcdnError(
                f"--labels is for a plain folder; --dataset {args.dataset} reads its own"
            )
        if not args.src.is_dir():
            raise TcdnError(
                f"dataset folder {args.src} does not exist: give the {args.dataset} root"
            )
        kwargs: dict[str, object] = {}
        if args.dataset == "hmdb51":
            kwargs = {
                "split": args.split or "all",
                "fold": args.fold,
                "n_clips": args.clips,
                "seed": args.seed,
            }
        elif args.clips is not None:
            raise TcdnError("--clips is for --dataset hmdb51")
        elif args.dataset == "ucf101":
            kwargs = {"split": args.split or "train", "fold": args.fold}
        else:
            kwargs = {"split": args.split or "train"}
        entries = DATASETS[args.dataset](args.src, **kwargs)
    settings = StoreSettings(
        decode=DecodeSettings.make(
            args.size,
            resize=args.resize,
            stride=args.stride,
            fps=args.fps,
            max_frames=args.max_frames,
            scaler=args.scaler,
        ),
        storage=args.storage,
        quality=args.quality,
    )
    report = ingest(
        entries,
        args.out,
        settings,
        workers=args.workers or os.cpu_count() or 1,
        source=f"{args.dataset or 'folder'}:{args.src}",
        progress=not args.no_progress,
    )
    rows = [
        ("store", str(report.store)),
        ("videos", f"{report.n_videos} ({report.decoded} decoded, {report.reused} already there)"),
        ("frames", str(report.n_frames)),
        (
            "storage",
            f"{args.storage}, {report.bytes_per_frame:,.0f} bytes/frame, {report.bytes / 1e9:.3f} GB",
        ),
        ("bad videos", str(len(report.bad))),
        ("seconds", f"{report.seconds:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    sys.stdout.write("".join(f"{k:<{width}}  {v}\n" for k, v in rows))
    for name, error in report.bad.items():
        sys.stdout.write(f"bad: {name}: {error}\n")
    if report.bad and args.strict:
        raise TcdnError(
            f"--strict: {len(report.bad)} video(s) could not be read (listed above and in "
            f"{args.out / 'manifest.json'}); the store holds the others"
        )
    return 0


COMMANDS = {
    "demo": _cmd_demo,
    "generate": _cmd_generate,
    "train": _cmd_train,
    "features": _cmd_features,
    "discover": _cmd_discover,
    "ingest": _cmd_ingest,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    try:
        return COMMANDS[args.command](args)
    except TcdnError as exc:
        if args.debug:
            log.exception("error")
        log.error("%s", exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        log.error(
            "interrupted; checkpoints already written are complete and `--resume` continues from the last one"
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
