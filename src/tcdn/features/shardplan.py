"""The plan of a sharded extraction (:mod:`tcdn.features.shards`): which videos each process
decodes, which rows it embeds, and the rows of several processes seen as one array. No torch."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.collection import IMAGE_EXTENSIONS, VideoEntry
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)


# -- the plan -------------------------------------------------------------------------------------
def estimated_frames(entry: VideoEntry, max_frames: int | None = None) -> float:
    """About how many frames ``entry`` will give, from its container's header (no decoding); a
    folder of images: its image count; unknown: its size in bytes / 2,000 (a rough proxy)."""
    path = Path(entry.path)
    n = 0.0
    if path.is_dir():
        n = float(sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS))
    else:
        try:
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                n = float(stream.frames or 0)
                if not n and stream.duration and stream.time_base and stream.average_rate:
                    n = float(stream.duration * stream.time_base * stream.average_rate)
        except Exception as exc:  # any failure of the probe: fall back on the size
            log.debug("cannot read the header of %s (%s): its size stands for it", path, exc)
        if not n:
            try:
                n = path.stat().st_size / 2000.0
            except OSError:
                n = 1.0
    return max(1.0, min(n, max_frames) if max_frames else n)


def split_by_weight(weights: Sequence[float], parts: int) -> list[int]:
    """``parts + 1`` cut points of ``weights`` into ``parts`` contiguous runs of about equal sums,
    each of at least one item (``len(weights) >= parts``)."""
    n = len(weights)
    if n < parts:
        raise TcdnError(
            f"{parts} processes but only {n} video(s): run torchrun with --nproc_per_node <= {n}"
        )
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cuts = [0]
    for r in range(1, parts):
        c = int(np.searchsorted(cum, cum[-1] * r / parts, side="left")) + 1
        cuts.append(min(max(c, cuts[-1] + 1), n - (parts - r)))
    return [*cuts, n]


def align_up(row: int, batch: int) -> int:
    return -(-row // batch) * batch


def owned_rows(starts: Sequence[int], rank: int, batch: int) -> tuple[int, int]:
    """The rows ``[a, b)`` that ``rank`` embeds: the batches ``[j*batch, (j+1)*batch)`` whose first
    row lies in the rows it holds, ``[starts[rank], starts[rank + 1])`` (``starts[-1]``: all rows)."""
    lo, hi, n = starts[rank], starts[rank + 1], starts[-1]
    a = align_up(lo, batch)
    if a >= hi:
        return a, a
    return a, min(n, align_up(hi, batch))


# -- rows from several ranks seen as one array ------------------------------------------------------
class Joined:
    """Array-likes of equal row shape seen as one, read by slices (as extraction reads them)."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = [p for p in parts if len(p)]
        self.ends = np.cumsum([len(p) for p in self.parts]).tolist()
        first = parts[0]
        self._row_shape = tuple(first.shape[1:])
        self._dtype = np.dtype(first.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.ends[-1] if self.ends else 0, *self._row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError("Joined rows are read by slices")
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise TypeError("Joined rows are read by contiguous slices")
        out, begin = [], 0
        for part, end in zip(self.parts, self.ends, strict=True):
            if start < end and stop > begin:
                out.append(np.asarray(part[max(start, begin) - begin : min(stop, end) - begin]))
            begin = end
        if not out:
            return np.empty((0, *self._row_shape), self._dtype)
        return out[0] if len(out) == 1 else np.concatenate(out)
