"""``tcdn ingest``: decode a collection once into a frame store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tcdn.cli.common import positive_float, positive_int
from tcdn.data.datasets import DATASETS, SPLITS
from tcdn.data.decode import DEFAULT_IMAGE_SIZE, RESIZE_MODES, SCALERS
from tcdn.data.store.manifest import DEFAULT_QUALITY, STORAGES
from tcdn.errors import TcdnError


def add_parser(sub: argparse._SubParsersAction) -> None:
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
        choices=tuple(DATASETS),
        default=None,
        help="read SRC in an official layout: ucf101 (UCF-101/ + ucfTrainTestlist/), hmdb51 "
        "(action folders + testTrainMulti_7030_splits/), 5contexts (train/ and test/ folders); "
        "default: a plain folder",
    )
    p.add_argument(
        "--split",
        choices=SPLITS,
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
        type=positive_int,
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
        type=positive_int,
        default=DEFAULT_IMAGE_SIZE,
        help=f"frame side in pixels (default: {DEFAULT_IMAGE_SIZE}, the paper's; must match the network's)",
    )
    p.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default="squash",
        help="squash: scale the whole frame, aspect not kept (default, the paper's); "
        "crop: scale the shorter side, keep the centre",
    )
    p.add_argument(
        "--scaler",
        choices=SCALERS,
        default="fast_bilinear",
        help="FFmpeg's scaling algorithm (default: fast_bilinear, the fastest measured; within "
        "about 1 grey level of bilinear)",
    )
    every = p.add_mutually_exclusive_group()
    every.add_argument(
        "--stride",
        type=positive_int,
        default=1,
        help="keep every S-th frame (default: 1, every frame); divides the store size by S",
    )
    every.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="keep frames at about this rate, by their timestamps (instead of --stride)",
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=None,
        help="keep at most this many frames per video",
    )
    p.add_argument(
        "--storage",
        choices=STORAGES,
        default="raw",
        help="raw: uint8 frames, H*W*3 bytes each, fastest reads (default); jpeg: one JPEG per "
        "frame, about 1/10 of the bytes, decoded on read",
    )
    p.add_argument(
        "--quality",
        type=positive_int,
        default=DEFAULT_QUALITY,
        help=f"JPEG quality 1-100 for --storage jpeg (default: {DEFAULT_QUALITY})",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="decoding processes (default: the number of CPU cores)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with an error (status 2) if any video could not be read; the store is still written",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tcdn.data.collection import find_videos
    from tcdn.data.datasets import read_dataset
    from tcdn.data.decode import DecodeSettings
    from tcdn.data.store import StoreSettings, ingest

    if args.dataset is None:
        for flag, value in (("--split", args.split), ("--clips", args.clips)):
            if value is not None:
                raise TcdnError(f"{flag} needs --dataset ({', '.join(DATASETS)})")
        entries = find_videos(args.src, args.labels)
    else:
        if args.labels is not None:
            raise TcdnError(
                f"--labels is for a plain folder; --dataset {args.dataset} reads its own"
            )
        entries = read_dataset(
            args.dataset,
            args.src,
            split=args.split,
            fold=args.fold,
            clips=args.clips,
            seed=args.seed,
        )
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
