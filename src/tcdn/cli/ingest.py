"""``tcdn ingest``: decode a collection once into a frame store."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tcdn.cli.common import frame_side, positive_float, positive_int, progress, seed_int
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
        "already done, redoes changed ones and repairs damaged data files; an interrupted ingest "
        "resumes. Bad files are skipped, named in a summary and in the store's manifest.json. "
        "--out must be a new or empty folder, or a store: tcdn never writes into, nor deletes "
        "from, a folder of other files.",
    )
    p.add_argument(
        "src",
        type=Path,
        nargs="?",
        default=None,
        help="the collection: a folder of videos or of frame-image folders, or a dataset root "
        "with --dataset (leave it out with --verify to check a store only)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the store folder to create or update (new, empty, or a store)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="check every data file's size and CRC-32 against the manifest (reads the whole "
        "store); with SRC, decode again the videos whose files do not match",
    )
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
    p.add_argument("--seed", type=seed_int, default=0, help="seed of --clips (default: 0)")
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="a video,label CSV for a plain folder (default: SRC/labels.csv if present)",
    )
    p.add_argument(
        "--size",
        type=frame_side,
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
    p.set_defaults(run=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    if args.src is None:
        return "the store was not changed"
    return (
        f"the videos finished so far are kept in {args.out}; run the same `tcdn ingest` again to "
        "finish (it skips them)"
    )


def run(args: argparse.Namespace) -> int:
    from tcdn.data.collection import find_videos
    from tcdn.data.datasets import read_dataset
    from tcdn.data.decode import DecodeSettings
    from tcdn.data.store import StoreSettings, check_store_folder, ingest

    if args.src is None:
        if not args.verify:
            raise TcdnError(
                "give the collection to ingest (SRC), or --verify with --out to check a store"
            )
        return _verify(args.out)
    if not 1 <= args.quality <= 100:
        raise TcdnError(f"--quality must be in 1..100, got {args.quality}")
    check_store_folder(args.out)  # before listing or decoding anything
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
        progress=progress(args),
        verify=args.verify,
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
    for name, warning in report.warnings.items():
        sys.stdout.write(f"short: {name}: {warning}\n")
    if report.bad and args.strict:
        raise TcdnError(
            f"--strict: {len(report.bad)} video(s) could not be read (listed above and in "
            f"{args.out / 'manifest.json'}); the store holds the others"
        )
    return 0


def _verify(out: Path) -> int:
    """``tcdn ingest --verify --out STORE``: check every data file; status 2 if any is damaged."""
    from tcdn.data.store import read_manifest, store_problems

    manifest = read_manifest(out)
    problems = store_problems(out, manifest, content=True)
    n = len(manifest["videos"])
    sys.stdout.write(
        f"{out}: {n - len(problems)} of {n} videos verified"
        + ("" if manifest.get("complete") else " (the ingest is not finished)")
        + "\n"
    )
    for line in problems:
        sys.stdout.write(f"damaged: {line}\n")
    if problems:
        raise TcdnError(
            f"{len(problems)} video(s) of the store {out} are damaged (listed above): run the same "
            "`tcdn ingest SRC --out STORE` again to decode them again"
        )
    return 0
