"""Reading a collection of videos into one frame array.

A collection is a folder. A video is a file FFmpeg reads or a folder of frame images (one folder
per video, e.g. UCF101 frames extracted as JPEGs). Its videos are found either from a ``video,label`` CSV (``labels.csv``
in the folder, or one given explicitly) or by walking the folder: a video inside a sub-folder
takes the sub-folder's name as its label, a video directly in the folder has no label. Labels
are only ever used for evaluation.

Frames are decoded once with PyAV (FFmpeg), scaled by FFmpeg in the same pass, and kept as one
``uint8`` array of shape ``(N, H, W, 3)`` with an index saying which video and frame each row is.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class VideoEntry:
    """One video of a collection: its file, a unique name, and its label (``None`` if unlabelled)."""

    path: Path
    name: str
    label: str | None = None


def first_few(names: Sequence[str], n: int = 5) -> str:
    """``names`` for a message: the first ``n``, then how many more."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


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
        if not (path.is_file() or path.is_dir()):  # a video file or a folder of frame images
            missing.append(f"{rel} (line {line_no})")
            continue
        entries.append(VideoEntry(path=path, name=rel, label=label))
    if missing:
        raise TcdnError(
            f"label file {csv_path} names {len(missing)} video(s) that do not exist under {root}: "
            f"{first_few(missing)}. "
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
    frame_folders: set[Path] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden (e.g. a half-written .NAME.partial.mp4)
        suffix = path.suffix.lower()
        if suffix in IMAGE_EXTENSIONS and len(rel.parts) > 1:
            frame_folders.add(path.parent)  # a folder of frame images is one video
        if suffix not in VIDEO_EXTENSIONS:
            continue
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(VideoEntry(path=path, name=rel.as_posix(), label=label))
    for folder in frame_folders:
        rel = folder.relative_to(root)
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(VideoEntry(path=folder, name=rel.as_posix(), label=label))
    entries.sort(key=lambda e: e.name)
    if not entries:
        raise TcdnError(
            f"no video found in {root} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))}, and for "
            "folders of frame images). Put videos in it, one sub-folder per class if you have labels, "
            "or add a labels.csv."
        )
    return entries


RESIZE_MODES = ("squash", "crop")
#: FFmpeg (libswscale) scaling algorithms offered; fast_bilinear is the default: measured faster
#: than bilinear in one pass (benchmarks/bench_ingest.py), within ~1.3 grey levels of it
SCALERS = ("fast_bilinear", "bilinear", "area", "bicubic")


@dataclass(frozen=True)
class DecodeSettings:
    """How frames are taken from a video: their size, how they are fitted to it, and which are kept.

    Attributes
    ----------
    size
        Output ``(height, width)``.
    resize
        ``"squash"``: scale the whole frame to ``size`` (aspect not kept, the paper's choice);
        ``"crop"``: scale the shorter side to fit, then keep the centre.
    stride
        Keep every ``stride``-th decoded frame.
    fps
        Keep frames at about this rate (by their timestamps) instead of every ``stride``-th.
    max_frames
        Keep at most this many frames per video.
    scaler
        FFmpeg's scaling algorithm, one of :data:`SCALERS`.
    """

    size: tuple[int, int] = (227, 227)
    resize: str = "squash"
    stride: int = 1
    fps: float | None = None
    max_frames: int | None = None
    scaler: str = "fast_bilinear"

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise TcdnError(
                f"resize mode {self.resize!r} is unknown: use one of {', '.join(RESIZE_MODES)}"
            )
        if self.scaler not in SCALERS:
            raise TcdnError(f"scaler {self.scaler!r} is unknown: use one of {', '.join(SCALERS)}")
        if min(self.size) < 1 or self.stride < 1:
            raise TcdnError(f"size {self.size} and stride {self.stride} must be >= 1")
        if self.fps is not None and self.stride != 1:
            raise TcdnError("give either a frame rate (--fps) or a stride (--stride), not both")
        if self.fps is not None and not self.fps > 0:
            raise TcdnError(f"--fps must be > 0, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise TcdnError(f"--max-frames must be >= 1, got {self.max_frames}")

    @classmethod
    def make(cls, size: int | tuple[int, int] = 227, **kwargs: Any) -> DecodeSettings:
        """Settings from an ``int`` (square) or ``(height, width)`` size and the other fields."""
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        return cls(size=hw, **kwargs)


class _Keep:
    """Decides, frame by frame, which decoded frames the settings keep."""

    def __init__(self, settings: DecodeSettings) -> None:
        self.s = settings
        self.seen = 0
        self.kept = 0
        self.next_time = 0.0

    def __call__(self, time: float | None) -> bool:
        i = self.seen
        self.seen += 1
        if self.s.fps is not None and time is not None:
            if time + 1e-6 < self.next_time:
                return False
            self.next_time = max(self.next_time + 1.0 / self.s.fps, time)
            return True
        return i % self.s.stride == 0

    @property
    def full(self) -> bool:
        return self.s.max_frames is not None and self.kept >= self.s.max_frames


def _fit(width: int, height: int, settings: DecodeSettings) -> tuple[int, int]:
    """The ``(width, height)`` to scale a frame to before the centre crop (or the final size)."""
    out_h, out_w = settings.size
    if settings.resize == "squash":
        return out_w, out_h
    scale = max(out_w / width, out_h / height)
    return max(out_w, round(width * scale)), max(out_h, round(height * scale))


def _crop(arr: np.ndarray, settings: DecodeSettings) -> np.ndarray:
    out_h, out_w = settings.size
    h, w = arr.shape[:2]
    if (h, w) == (out_h, out_w):
        return arr
    top, left = (h - out_h) // 2, (w - out_w) // 2
    return np.ascontiguousarray(arr[top : top + out_h, left : left + out_w])


def _iter_video_file(path: Path, settings: DecodeSettings, threads: bool) -> Iterator[np.ndarray]:
    import av  # imported here so that `tcdn --help` stays fast
    from av.video.reformatter import Interpolation, VideoReformatter

    # One reformatter for the whole video: FFmpeg scales and converts to RGB in one pass, and the
    # scaling context is built once (``frame.to_ndarray(width=, height=)`` builds one per frame,
    # which costs as much as decoding: see benchmarks/bench_ingest.py).
    reformatter = VideoReformatter()
    interpolation = getattr(Interpolation, settings.scaler.upper())
    keep = _Keep(settings)
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise TcdnError(
                f"{path} has no video stream (audio only?): remove it from the collection"
            )
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        else:
            stream.thread_count = 1  # one process per core already: no extra decoder threads
        every = settings.stride == 1 and settings.fps is None  # the common case: no per-frame test
        crop = settings.resize == "crop"
        src_size: tuple[int, int] = (0, 0)
        w = h = 0
        for frame in container.decode(stream):
            if not every and not keep(frame.time):
                continue
            if (frame.width, frame.height) != src_size:
                src_size = (frame.width, frame.height)
                w, h = _fit(frame.width, frame.height, settings)
            rgb = reformatter.reformat(
                frame, width=w, height=h, format="rgb24", interpolation=interpolation
            ).to_ndarray()
            yield _crop(rgb, settings) if crop else rgb
            keep.kept += 1
            if keep.full:
                return


def _iter_image_folder(folder: Path, settings: DecodeSettings) -> Iterator[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    keep = _Keep(settings)
    for f in files:
        if not keep(None):
            continue
        try:
            with Image.open(f) as img:
                rgb = img.convert("RGB")
                w, h = _fit(rgb.width, rgb.height, settings)
                if (w, h) != rgb.size:
                    rgb = rgb.resize((w, h), Image.Resampling.BILINEAR)
                arr = np.asarray(rgb, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise TcdnError(f"cannot read frame image {f}: {exc}. Remove or replace it") from exc
        yield _crop(arr, settings)
        keep.kept += 1
        if keep.full:
            return


def iter_frames(
    path: str | Path, settings: DecodeSettings, *, threads: bool = True
) -> Iterator[np.ndarray]:
    """Yield the kept frames of one video as ``(H, W, 3)`` ``uint8`` RGB arrays, one at a time.

    ``path`` is a video file FFmpeg reads, or a folder of frame images (``.jpg``, ``.png``, ...,
    in file-name order). This is the one decoding routine of tcdn: :func:`decode_video` and the
    frame store (:func:`tcdn.data.store.ingest`) both use it.

    Raises
    ------
    TcdnError
        The file cannot be read, has no video stream, or holds no decodable frame.
    """
    import av

    path = Path(path)
    n = 0
    try:
        frames = (
            _iter_image_folder(path, settings)
            if path.is_dir()
            else _iter_video_file(path, settings, threads)
        )
        for arr in frames:
            n += 1
            yield arr
    except TcdnError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        raise TcdnError(
            f"cannot decode {path}: {exc}. The file is not a video FFmpeg can read, or it is corrupt: "
            "remove or replace it"
        ) from exc
    if n == 0:
        raise TcdnError(f"{path} holds no decodable frame: remove or replace it")


def decode_video(
    path: str | Path,
    size: int | tuple[int, int] = 227,
    max_frames: int | None = None,
    *,
    resize: str = "squash",
    stride: int = 1,
    fps: float | None = None,
) -> np.ndarray:
    """Decode the frames of a video (or frame-image folder), scaled to ``size`` by FFmpeg in the same pass.

    Parameters
    ----------
    path
        Any file FFmpeg can read, or a folder of frame images.
    size
        Output ``H = W = size``, or ``(height, width)``.
    max_frames, resize, stride, fps
        See :class:`DecodeSettings`; by default every frame, squashed to ``size``.

    Returns
    -------
    numpy.ndarray
        ``(T, H, W, 3)`` ``uint8`` RGB frames.
    """
    settings = DecodeSettings.make(
        size, resize=resize, stride=stride, fps=fps, max_frames=max_frames
    )
    return np.stack(list(iter_frames(path, settings)))


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
    *,
    resize: str = "squash",
    stride: int = 1,
    fps: float | None = None,
    workers: int = 1,
) -> FrameSet:
    """Find the videos of a collection and decode them all into an in-memory :class:`FrameSet`.

    The folder is ingested into a temporary frame store (:mod:`tcdn.data.store`, the same code as
    ``tcdn ingest``), read into RAM, and the store is removed. For a collection larger than
    memory, run ``tcdn ingest`` once and open the store with :func:`tcdn.data.store.open_store`.

    Parameters
    ----------
    root, labels_csv
        See :func:`find_videos`.
    size
        Frames are scaled to ``size x size``.
    max_frames, resize, stride, fps
        See :class:`DecodeSettings`.
    skip_bad
        Skip (with a warning naming it) a file that cannot be decoded instead of stopping.
    workers
        Decoding processes.
    """
    from tcdn.data.store import load_into_memory

    settings = DecodeSettings.make(
        size, resize=resize, stride=stride, fps=fps, max_frames=max_frames
    )
    fs = load_into_memory(
        root,
        settings,
        labels_csv=labels_csv,
        skip_bad=skip_bad,
        workers=workers,
        progress=progress,
    )
    log.info(
        "decoded %d videos, %d frames at %dx%d from %s",
        len(fs.videos),
        len(fs.frames),
        size,
        size,
        root,
    )
    return fs
