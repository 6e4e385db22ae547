"""A collection's frames as one array-like, with the index that joins each row to its video.

A :class:`FrameSet` holds its frames in memory (:func:`tcdn.data.load_frames`) or reads them from a
frame store on demand (:func:`tcdn.data.store.open_store`); everything downstream indexes
``frames`` like a ``(N, H, W, 3)`` ``uint8`` array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tcdn.data.collection import VideoEntry
from tcdn.errors import TcdnError


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
