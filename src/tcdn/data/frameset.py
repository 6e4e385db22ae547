"""A collection's frames as one array-like, with the index that joins each row to its video.

A :class:`FrameSet` holds its frames in memory (:func:`tcdn.data.load_frames`) or reads them from a
frame store on demand (:func:`tcdn.data.store.open_store`); everything downstream indexes
``frames`` like a ``(N, H, W, 3)`` ``uint8`` array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcdn.data.collection import VideoEntry
from tcdn.errors import TcdnError


class Positions:
    """Where each row of a frame set sits in its source video: ``index`` ``(N,)`` int64, its
    index among the video's decoded frames (-1: unknown), and ``seconds`` ``(N,)`` float64, its
    time from the video's first frame (NaN: unknown). Given as arrays, or as a function that
    reads them on first use (a frame store's ``.pos`` files)."""

    def __init__(
        self,
        index: np.ndarray | None = None,
        seconds: np.ndarray | None = None,
        *,
        load: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        if (index is None) != (seconds is None) or (index is None) == (load is None):
            raise ValueError("give index and seconds, or load")
        self._load = load
        self._value = None if index is None else self._checked(index, seconds)

    @staticmethod
    def _checked(index: Any, seconds: Any) -> tuple[np.ndarray, np.ndarray]:
        index = np.asarray(index, dtype=np.int64)
        seconds = np.asarray(seconds, dtype=np.float64)
        if index.shape != seconds.shape or index.ndim != 1:
            raise ValueError(f"index {index.shape} and seconds {seconds.shape} must be (N,) alike")
        return index, seconds

    def _get(self) -> tuple[np.ndarray, np.ndarray]:
        if self._value is None:
            assert self._load is not None
            self._value = self._checked(*self._load())
        return self._value

    @property
    def index(self) -> np.ndarray:
        return self._get()[0]

    @property
    def seconds(self) -> np.ndarray:
        return self._get()[1]

    def __getstate__(self) -> dict[str, Any]:
        return {"_load": None, "_value": self._get()}  # a loader may hold open files


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
    skipped
        The names of the videos that could not be read.
    positions
        Where each frame sits in its source video (:attr:`source_frame`, :attr:`seconds`);
        ``None``: frame ``i`` of a video is its source's ``i``, at an unknown time.
    """

    frames: np.ndarray
    videos: list[VideoEntry]
    offsets: np.ndarray
    skipped: list[str] = field(default_factory=list)
    positions: Positions | None = None

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
    def source_frame(self) -> np.ndarray:
        """``(N,)``: each frame's index among its source video's decoded frames (it differs from
        :attr:`frame_index` when the frames were read with a stride or a frame rate; -1 where
        unknown)."""
        return self.frame_index if self.positions is None else self.positions.index

    @property
    def seconds(self) -> np.ndarray:
        """``(N,)``: each frame's time in seconds from its video's first frame (NaN: unknown)."""
        if self.positions is None:
            return np.full(len(self.frames), np.nan)
        return self.positions.seconds

    def locate(self, video: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """The rows of the frames named by ``video`` (names) and ``frame`` (source frame
        indices, :attr:`source_frame`); -1 where there is no such frame. A ``frame`` of -1 (a row
        standing for a whole video) gives the video's middle row."""
        by_name = {v.name: i for i, v in enumerate(self.videos)}
        src = self.source_frame
        out = np.full(len(video), -1, dtype=np.int64)
        for i, (name, f) in enumerate(
            zip(np.asarray(video).tolist(), np.asarray(frame).tolist(), strict=True)
        ):
            v = by_name.get(name)
            if v is None:
                continue
            lo, hi = int(self.offsets[v]), int(self.offsets[v + 1])
            if f < 0:
                out[i] = (lo + hi - 1) // 2 if hi > lo else -1
                continue
            seg = src[lo:hi]
            j = int(np.searchsorted(seg, f))  # source indices ascend within a video
            if j < len(seg) and seg[j] == f:
                out[i] = lo + j
        return out

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

    def rows(self, stride: int = 1, max_per_video: int | None = None) -> np.ndarray:
        """Rows to evaluate: every ``stride``-th frame of each video, at most ``max_per_video``;
        ascending."""
        return every_nth(self.frame_index, stride, max_per_video)


def every_nth(rank: np.ndarray, stride: int, max_per_video: int | None) -> np.ndarray:
    """Rows whose position ``rank`` inside their video is a multiple of ``stride``, at most
    ``max_per_video`` per video; ascending."""
    if stride < 1:
        raise TcdnError(f"--frame-stride must be >= 1, got {stride}")
    keep = rank % stride == 0
    if max_per_video:
        keep &= rank // stride < max_per_video
    return np.flatnonzero(keep)


class FrameRows:
    """The rows ``rows`` of a frames array-like, read lazily: ``view[i:j]`` reads ``frames[rows[i:j]]``.

    Lets feature extraction stream a store batch by batch instead of loading every frame.
    """

    def __init__(self, frames: Any, rows: np.ndarray) -> None:
        self.frames = frames
        self.rows = np.asarray(rows, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.frames.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.frames.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.asarray(self.frames[self.rows[index]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


def take_rows(frames: Any, rows: np.ndarray) -> Any:
    """``frames[rows]`` for an in-memory array; a lazy :class:`FrameRows` for a store's frames."""
    if isinstance(frames, np.ndarray) and not isinstance(frames, np.memmap):
        return frames[rows]
    return FrameRows(frames, rows)
