"""Reading a collection of videos into one frame array.

A collection is a folder. Its videos are found either from a ``video,label`` CSV (``labels.csv``
in the folder, or one given explicitly) or by walking the folder: a video inside a sub-folder
takes the sub-folder's name as its label, a video directly in the folder has no label. Labels
are only ever used for evaluation.

Frames are decoded once with PyAV (FFmpeg), scaled by FFmpeg in the same pass, and kept as one
``uint8`` array of shape ``(N, H, W, 3)`` with an index saying which video and frame each row is.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ogv",
        ".flv",
        ".wmv",
        ".3gp",
    }
)
LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class VideoEntry:
    """One video of a collection: its file, a unique name, and its label (``None`` if unlabelled)."""

    path: Path
    name: str
    label: str | None = None


def _read_labels_csv(csv_path: Path, root: Path) -> list[VideoEntry]:
    try:
        with csv_path.open(
            newline="", encoding="utf-8-sig"
        ) as fh:  # -sig: tolerate a spreadsheet's BOM
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TcdnError(f"cannot read label file {csv_path}: {exc}") from exc
    if not rows:
        raise TcdnError(
            f"label file {csv_path} has no rows: it needs a header 'video,label' and one line per video"
        )
    if "video" not in header or "label" not in header:
        raise TcdnError(
            f"label file {csv_path} must have the columns 'video' and 'label' (found: {', '.join(header)}); "
            "'video' is a path relative to the collection folder"
        )
    entries = []
    missing = []
    for line_no, row in enumerate(rows, start=2):
        rel = (row["video"] or "").strip()
        label = (row["label"] or "").strip() or None
        if not rel:
            raise TcdnError(f"label file {csv_path}, line {line_no}: empty 'video' field")
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        if not path.is_file():
            missing.append(f"{rel} (line {line_no})")
            continue
        entries.append(VideoEntry(path=path, name=rel, label=label))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise TcdnError(
            f"label file {csv_path} names {len(missing)} video(s) that do not exist under {root}: {shown}. "
            "Fix the paths (relative to the collection folder) or remove those lines."
        )
    seen: dict[Path, str] = {}
    for e in entries:
        key = e.path.resolve()
        if key in seen:
            raise TcdnError(
                f"label file {csv_path} lists the same video twice ({seen[key]!r} and {e.name!r}): keep one line"
            )
        seen[key] = e.name
    return entries


def find_videos(root: str | Path, labels_csv: str | Path | None = None) -> list[VideoEntry]:
    """List the videos of a collection folder, with their labels.

    Parameters
    ----------
    root
        The collection folder.
    labels_csv
        A ``video,label`` CSV whose ``video`` column holds paths relative to ``root``. When
        ``None``, ``root/labels.csv`` is used if it exists; otherwise labels come from the names
        of the sub-folders holding the videos.

    Raises
    ------
    TcdnError
        The folder does not exist, holds no video, or the CSV is malformed or names missing files.
    """
    root = Path(root)
    if not root.exists():
        raise TcdnError(
            f"video folder {root} does not exist: give the folder that holds your videos"
        )
    if not root.is_dir():
        raise TcdnError(f"{root} is not a folder: give the folder that holds your videos")
    if labels_csv is not None:
        csv_path = Path(labels_csv)
        if not csv_path.is_file():
            raise TcdnError(f"label file {csv_path} does not exist (option --labels)")
        return _read_labels_csv(csv_path, root)
    if (root / LABELS_CSV).is_file():
        return _read_labels_csv(root / LABELS_CSV, root)

    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if path.suffix.lower() not in VIDEO_EXTENSIONS or any(
            part.startswith(".") for part in rel.parts
        ):
            continue  # not a video, or hidden (e.g. a half-written .NAME.partial.mp4)
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(VideoEntry(path=path, name=rel.as_posix(), label=label))
    if not entries:
        raise TcdnError(
            f"no video found in {root} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))}). "
            "Put videos in it, one sub-folder per class if you have labels, or add a labels.csv."
        )
    return entries


def decode_video(
    path: str | Path, size: int | tuple[int, int] = 227, max_frames: int | None = None
) -> np.ndarray:
    """Decode every frame of a video, scaled to ``size`` by FFmpeg in the same pass.

    Parameters
    ----------
    path
        Any file FFmpeg can read.
    size
        Output ``H = W = size``, or ``(height, width)``. The frame is squashed to it (aspect not kept).
    max_frames
        Stop after this many frames.

    Returns
    -------
    numpy.ndarray
        ``(T, H, W, 3)`` ``uint8`` RGB frames.
    """
    import av  # imported here so that `tcdn --help` stays fast

    height, width = (size, size) if isinstance(size, int) else size
    path = Path(path)
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise TcdnError(
                    f"{path} has no video stream (audio only?): remove it from the collection"
                )
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(width=width, height=height, format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except TcdnError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise TcdnError(
            f"cannot decode {path}: {exc}. The file is not a video FFmpeg can read, or it is corrupt: "
            "remove or replace it"
        ) from exc
    if not frames:
        raise TcdnError(f"{path} holds no decodable frame: remove or replace it")
    return np.stack(frames)


@dataclass
class FrameSet:
    """All frames of a collection in one array, with the index that joins them back to videos.

    Attributes
    ----------
    frames
        ``(N, H, W, 3)`` ``uint8`` RGB frames, the videos one after the other.
    videos
        The videos, in the order their frames appear.
    offsets
        ``(V + 1,)``: the frames of video ``v`` are ``frames[offsets[v]:offsets[v + 1]]``.
    """

    frames: np.ndarray
    videos: list[VideoEntry]
    offsets: np.ndarray
    skipped: list[str] = field(default_factory=list)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def video_index(self) -> np.ndarray:
        """``(N,)``: the video of each frame."""
        return np.repeat(np.arange(len(self.videos)), self.lengths)

    @property
    def frame_index(self) -> np.ndarray:
        """``(N,)``: the position of each frame inside its video."""
        return np.arange(len(self.frames)) - np.repeat(self.offsets[:-1], self.lengths)

    @property
    def class_names(self) -> list[str]:
        return sorted({v.label for v in self.videos if v.label is not None})

    @property
    def has_labels(self) -> bool:
        return all(v.label is not None for v in self.videos)

    def frame_labels(self) -> np.ndarray:
        """``(N,)`` class index of every frame (in :attr:`class_names` order).

        Raises :class:`TcdnError` when some video has no label.
        """
        if not self.has_labels:
            unlabelled = [v.name for v in self.videos if v.label is None]
            raise TcdnError(
                f"{len(unlabelled)} video(s) have no label (e.g. {unlabelled[0]}): evaluation needs one per "
                "video, from class sub-folders or a video,label CSV"
            )
        lookup = {name: i for i, name in enumerate(self.class_names)}
        per_video = np.array(
            [lookup[v.label] for v in self.videos if v.label is not None], dtype=np.int64
        )
        return np.repeat(per_video, self.lengths)

    def subset(self, video_ids: Sequence[int]) -> FrameSet:
        """A new frame set holding only the given videos (in the given order)."""
        parts = [self.frames[self.offsets[v] : self.offsets[v + 1]] for v in video_ids]
        lengths = [len(p) for p in parts]
        return FrameSet(
            frames=np.concatenate(parts) if parts else self.frames[:0],
            videos=[self.videos[v] for v in video_ids],
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            skipped=list(self.skipped),
        )


def load_frames(
    root: str | Path,
    size: int = 227,
    labels_csv: str | Path | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
) -> FrameSet:
    """Find the videos of a collection and decode them all into a :class:`FrameSet`.

    Parameters
    ----------
    root, labels_csv
        See :func:`find_videos`.
    size
        Frames are scaled to ``size x size``.
    max_frames
        Keep at most this many frames per video.
    skip_bad
        Skip (with a warning naming it) a file that cannot be decoded instead of stopping.
    """
    entries = find_videos(root, labels_csv)
    arrays: list[np.ndarray] = []
    kept: list[VideoEntry] = []
    skipped: list[str] = []
    for entry in tqdm(entries, desc="decoding videos", unit="video", disable=not progress):
        try:
            arr = decode_video(entry.path, size=size, max_frames=max_frames)
        except TcdnError as exc:
            if not skip_bad:
                raise TcdnError(f"{exc} (or pass --skip-bad to go on without it)") from exc
            log.warning("skipping %s", exc)
            skipped.append(entry.name)
            continue
        arrays.append(arr)
        kept.append(entry)
    if not kept:
        raise TcdnError(f"none of the {len(entries)} video(s) in {root} could be decoded")
    lengths = [len(a) for a in arrays]
    log.info(
        "decoded %d videos, %d frames at %dx%d from %s", len(kept), sum(lengths), size, size, root
    )
    return FrameSet(
        frames=np.concatenate(arrays),
        videos=kept,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        skipped=skipped,
    )
