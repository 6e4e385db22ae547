"""How a collection becomes a :class:`~tcdn.data.frameset.FrameSet`: a frame store is opened and
read on demand; a folder of videos is decoded into memory through a temporary store, by the same
code as ``tcdn ingest``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tcdn.data.collection import VideoEntry, find_videos
from tcdn.data.decode import DEFAULT_IMAGE_SIZE, DecodeSettings
from tcdn.data.frameset import FrameSet, Positions
from tcdn.data.store import StoreSettings, ingest, is_store, open_store
from tcdn.data.store.writer import StoreWriteError
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)


def load_frames(
    root: str | Path,
    size: int = DEFAULT_IMAGE_SIZE,
    labels_csv: str | Path | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    *,
    resize: str = "squash",
    stride: int = 1,
    fps: float | None = None,
    workers: int = 1,
    videos: Sequence[VideoEntry] | None = None,
) -> FrameSet:
    """Find the videos of a collection and decode them all into an in-memory :class:`FrameSet`.

    The folder is ingested into a temporary frame store (:func:`tcdn.data.store.ingest`, the same
    code as ``tcdn ingest``), read into RAM, and the store is removed. For a collection larger
    than memory, run ``tcdn ingest`` once and open the store with :func:`open_collection`.

    Parameters
    ----------
    root, labels_csv
        See :func:`~tcdn.data.collection.find_videos`.
    size
        Frames are scaled to ``size x size``.
    max_frames, resize, stride, fps
        See :class:`~tcdn.data.decode.DecodeSettings`.
    skip_bad
        Skip (with a warning naming it) a file that cannot be decoded instead of stopping.
    workers
        Decoding processes.
    videos
        Decode only these videos of the collection (e.g. one rank's share of a sharded
        extraction), in this order, instead of every video :func:`find_videos` lists.
    """
    settings = DecodeSettings.make(
        size, resize=resize, stride=stride, fps=fps, max_frames=max_frames
    )
    entries = list(videos) if videos is not None else find_videos(root, labels_csv)
    with tempfile.TemporaryDirectory(prefix="tcdn-store-") as tmp:
        try:
            report = ingest(
                entries,
                Path(tmp) / "store",
                StoreSettings(decode=settings),
                workers=workers,
                source=str(root),
                progress=progress,
            )
        except StoreWriteError as exc:  # the store is temporary: neither it nor a rerun of it helps
            raise TcdnError(
                f"cannot decode {root}: its frames are decoded through a temporary frame store in "
                f"{tempfile.gettempdir()}, and writing it failed ({exc.hint or exc}); free space there "
                "or set TMPDIR to a folder on a disk with room, or decode the videos once with "
                f"`tcdn ingest {root} --out STORE` on such a disk and give STORE instead"
            ) from None
        if report.bad and not skip_bad:
            error = next(iter(report.bad.values()))
            raise TcdnError(f"{error} (or pass --skip-bad to go on without it)")
        stored = open_store(Path(tmp) / "store")
        frames = stored.frames[:]
        positions = Positions(stored.source_frame, stored.seconds)  # read before the store goes
    # keep the caller's paths (the store records resolved ones)
    by_name = {e.name: e for e in entries}
    loaded = FrameSet(
        frames=frames,
        videos=[by_name[v.name] for v in stored.videos],
        offsets=stored.offsets,
        skipped=[e.name for e in entries if e.name in report.bad],
        positions=positions,
    )
    log.info(
        "decoded %d videos, %d frames at %dx%d from %s",
        len(loaded.videos),
        len(loaded.frames),
        size,
        size,
        root,
    )
    return loaded


def open_collection(
    path: str | Path,
    size: int,
    *,
    labels_csv: str | Path | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> FrameSet:
    """The collection at ``path`` as ``size x size`` frames: a frame store (a folder with a
    ``manifest.json``, from ``tcdn ingest``) is opened and read from disk as needed; a folder of
    videos is decoded into memory (:func:`load_frames`).

    ``labels_csv``, ``max_frames`` and ``skip_bad`` apply to a folder of videos only: a store's
    videos, labels and frames were fixed when it was ingested, so giving one is an error.
    """
    if not is_store(path):
        return load_frames(
            path,
            size=size,
            labels_csv=labels_csv,
            max_frames=max_frames,
            skip_bad=skip_bad,
            progress=progress,
        )
    for flag, value in (
        ("--labels", labels_csv),
        ("--max-frames", max_frames),
        ("--skip-bad", skip_bad or None),
    ):
        if value is not None:
            raise TcdnError(
                f"{flag} applies to a video folder, but {path} is a frame store (its "
                f"videos and labels were fixed by `tcdn ingest`): drop {flag}, or ingest again"
            )
    frames = open_store(path)
    height, width = frames.frames.shape[1:3]
    if (height, width) != (size, size):
        raise TcdnError(
            f"the frame store {path} holds {width}x{height} frames but {size}x{size} are "
            f"needed: ingest again with --size {size}, or give --size {height} / a matching network"
        )
    return frames
