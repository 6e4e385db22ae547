"""What the commands share: option types, the collection and run options, and the defaults every
command works out the same way (the device and the frame size), before any decoding."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.data.decode import DEFAULT_IMAGE_SIZE

if TYPE_CHECKING:
    from tcdn.data.frameset import FrameSet


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def add_collection_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    """VIDEOS (a folder or a frame store) and the options that say how to read it."""
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
        type=positive_int,
        default=None,
        help="decode frames to SIZE x SIZE pixels (default: the model's image size)",
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=None,
        help="keep at most this many frames of each video",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip videos that cannot be decoded (with a warning) instead of stopping",
    )


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default=None,
        help="torch device: cpu, cuda, cuda:1 or auto (default: cpu)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="hide progress bars (e.g. in batch jobs)"
    )


def device(name: str | None) -> str:
    """The torch device an option names (``None``: the CPU), checked by
    :func:`tcdn.device.resolve_device`: resolve it before decoding anything."""
    from tcdn.device import resolve_device

    return str(resolve_device(name or "cpu"))


def frame_size(size: int | None, checkpoint: dict[str, Any] | None) -> int:
    """The side of the frames to decode: ``--size``, else the checkpoint's ``image_size``, else
    the paper's :data:`~tcdn.data.decode.DEFAULT_IMAGE_SIZE`."""
    if size is not None:
        return size
    if checkpoint is not None:
        return int(checkpoint["config"]["image_size"])
    return DEFAULT_IMAGE_SIZE


def load_collection(args: argparse.Namespace, size: int) -> FrameSet:
    """The collection named by :func:`add_collection_args`' options, as ``size x size`` frames."""
    from tcdn.data.load import open_collection

    return open_collection(
        args.videos,
        size,
        labels_csv=args.labels,
        max_frames=args.max_frames,
        skip_bad=args.skip_bad,
        progress=not args.no_progress,
    )
