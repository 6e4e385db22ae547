"""What the commands share: option types, the collection and run options, and the device every
command works out the same way, before any decoding (the frame size: :func:`tcdn.features.write.frame_size`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

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


#: the smallest frame side the command line accepts: smaller frames hold too little to learn from
MIN_FRAME_SIDE = 16


def frame_side(text: str) -> int:
    value = positive_int(text)
    if value < MIN_FRAME_SIDE:
        raise argparse.ArgumentTypeError(
            f"expected a frame side >= {MIN_FRAME_SIDE} pixels, got {value} (the paper uses 227)"
        )
    from tcdn.data.decode import frame_size_problem

    problem = frame_size_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return value


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed >= 0, got {value}")
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
        type=frame_side,
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


def add_global_args(p: argparse.ArgumentParser, command: bool = False) -> None:
    """The flags every command takes, before or after its name (``tcdn -q train ...`` or ``tcdn
    train ... -q``): declared here once, on the top-level parser and on each command's."""
    # A command's copy leaves the value alone unless given (SUPPRESS), so a flag given before the
    # command's name is not reset by the command's parser.
    off: object = argparse.SUPPRESS if command else False
    g = p.add_argument_group("global options") if command else p
    g.add_argument("-v", "--verbose", action="store_true", default=off, help="log debug messages")
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=off,
        help="log warnings and errors only, and hide progress bars",
    )
    g.add_argument(
        "--debug", action="store_true", default=off, help="show the traceback of an error"
    )
    g.add_argument(
        "--no-progress",
        action="store_true",
        default=off,
        help="hide progress bars; training logs its loss every log_every steps instead (batch jobs)",
    )


def progress(args: argparse.Namespace) -> bool:
    """Whether to show progress bars: not with ``--no-progress`` nor ``-q``."""
    return not (args.no_progress or args.quiet)


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default=None,
        help="torch device: cpu, cuda, cuda:1 or auto (default: auto, a GPU when there is one)",
    )


def device(name: str | None) -> str:
    """The torch device an option names (``None``: ``auto``, a GPU when there is one), checked
    by :func:`tcdn.device.resolve_device`: resolve it before decoding anything."""
    from tcdn.device import resolve_device

    return str(resolve_device(name or "auto"))


def interrupted_nothing_written(args: argparse.Namespace) -> str:
    """The Ctrl-C message of a command that writes its output only at the end."""
    return (
        f"nothing was written to {args.out} (it is written at the end): run the same command again"
    )


def load_collection(args: argparse.Namespace, size: int) -> FrameSet:
    """The collection named by :func:`add_collection_args`' options, as ``size x size`` frames."""
    from tcdn.data.load import open_collection

    return open_collection(
        args.videos,
        size,
        labels_csv=args.labels,
        max_frames=args.max_frames,
        skip_bad=args.skip_bad,
        progress=progress(args),
    )
