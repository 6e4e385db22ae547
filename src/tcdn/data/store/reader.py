"""Reading a frame store: its frames as an array-like that reads only what is indexed."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.collection import VideoEntry
from tcdn.data.frameset import FrameSet, Positions
from tcdn.data.store.manifest import (
    POSITION_DTYPE,
    StoreSettings,
    derived_positions,
    describe,
    expected_files,
    file_problem,
    read_manifest,
)
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)


class StoreFrames:
    """The frames of a store as a read-only ``(N, H, W, 3)`` ``uint8`` array-like.

    Indexing with an integer, a slice, or an integer array returns a NumPy array and reads only
    those frames. Raw stores are read through ``mmap`` (the page cache keeps what is hot); JPEG
    stores decode each frame with libjpeg-turbo, in ``threads`` threads for large requests.
    Files are opened on first use, so opening a store costs nothing per video. Pickles cheaply
    (the open maps are not pickled), so data-loader workers can share one.
    """

    def __init__(
        self,
        root: Path,
        keys: Sequence[str],
        offsets: np.ndarray,
        frame_shape: tuple[int, int, int],
        storage: str,
        threads: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.keys = list(keys)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.frame_shape = tuple(frame_shape)
        self.storage = storage
        self.threads = threads or min(4, os.cpu_count() or 1)
        self._maps: dict[int, Any] = {}
        self._jpeg_offsets: dict[int, np.ndarray] = {}
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pool_pid = 0

    # -- the array protocol the rest of tcdn uses
    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.offsets[-1]), *self.frame_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_maps={}, _jpeg_offsets={}, _pool=None)
        return state

    def __getitem__(self, index: Any) -> np.ndarray:
        n = len(self)
        if isinstance(index, (int, np.integer)):
            i = int(index) + n if index < 0 else int(index)
            if not 0 <= i < n:
                raise IndexError(f"frame {index} out of range for a store of {n} frames")
            return self._read(np.array([i]))[0]
        if isinstance(index, slice):
            return self._read(np.arange(*index.indices(n)))
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.dtype.kind not in "iu":
            raise IndexError(f"a store is indexed by integers or slices, not {idx.dtype}")
        flat = idx.reshape(-1).astype(np.int64)
        flat = np.where(flat < 0, flat + n, flat)
        if flat.size and (flat.min() < 0 or flat.max() >= n):
            raise IndexError(f"frame index out of range for a store of {n} frames")
        return self._read(flat).reshape(*idx.shape, *self.frame_shape)

    # -- reading
    def _video_of(self, idx: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, idx, side="right") - 1

    def _map(self, v: int) -> Any:
        m = self._maps.get(v)
        if m is None:
            suffix = ".u8" if self.storage == "raw" else ".jpg"
            path = self.root / "data" / f"{self.keys[v]}{suffix}"
            try:
                with path.open("rb") as fh:
                    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as exc:
                raise TcdnError(
                    f"cannot read {path} of the frame store {self.root}: {exc}. Run `tcdn ingest` again"
                ) from exc
            m = np.frombuffer(mm, dtype=np.uint8)
            if self.storage == "raw":
                n = int(self.offsets[v + 1] - self.offsets[v])
                if m.size != n * int(np.prod(self.frame_shape)):
                    raise TcdnError(
                        f"{path} of the frame store {self.root} holds {m.size:,} bytes, not the "
                        f"{n} frames the manifest lists: it is damaged; run the same `tcdn ingest` "
                        "again to repair it"
                    )
                m = m.reshape(-1, *self.frame_shape)
            self._maps[v] = m
        return m

    def _read(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self.frame_shape), dtype=np.uint8)
        if not len(idx):
            return out
        vids = self._video_of(idx)
        local = idx - self.offsets[vids]
        if self.storage == "raw":
            for i, (v, t) in enumerate(zip(vids.tolist(), local.tolist(), strict=True)):
                out[i] = self._map(v)[t]
            return out
        jobs = [
            (i, v, t) for i, (v, t) in enumerate(zip(vids.tolist(), local.tolist(), strict=True))
        ]
        if len(jobs) < 16 or self.threads <= 1:
            self._decode_jpegs(jobs, out)
            return out
        if self._pool is None or self._pool_pid != os.getpid():  # a forked child needs its own
            self._pool = cf.ThreadPoolExecutor(self.threads, thread_name_prefix="tcdn-jpeg")
            self._pool_pid = os.getpid()
        chunks = [jobs[k :: self.threads] for k in range(self.threads)]
        for f in [self._pool.submit(self._decode_jpegs, c, out) for c in chunks]:
            f.result()
        return out

    def _decode_jpegs(self, jobs: list[tuple[int, int, int]], out: np.ndarray) -> None:
        import simplejpeg

        for i, v, t in jobs:
            blob = self._map(v)
            offs = self._jpeg_offsets.get(v)
            if offs is None:
                path = self.root / "data" / f"{self.keys[v]}.jpg.idx"
                try:
                    offs = np.fromfile(path, dtype="<i8")
                except (OSError, ValueError) as exc:
                    raise TcdnError(
                        f"cannot read {path} of the frame store {self.root}: {exc}. Run the same "
                        "`tcdn ingest` again to repair it"
                    ) from exc
                n = int(self.offsets[v + 1] - self.offsets[v])
                if len(offs) != n + 1 or int(offs[-1]) > len(blob):
                    raise TcdnError(
                        f"{path} of the frame store {self.root} does not match its {n} frames: "
                        "the store is damaged; run the same `tcdn ingest` again to repair it"
                    )
                self._jpeg_offsets[v] = offs
            simplejpeg.decode_jpeg(blob[offs[t] : offs[t + 1]], colorspace="RGB", buffer=out[i])


def open_store(path: str | Path, *, threads: int | None = None) -> FrameSet:
    """Open a frame store as a :class:`~tcdn.data.frameset.FrameSet` that reads frames on demand.

    Parameters
    ----------
    path
        The store folder (made by :func:`ingest` / ``tcdn ingest``).
    threads
        JPEG decoding threads for large reads (default: up to 4).

    Raises
    ------
    TcdnError
        Not a store, or an ingest that did not finish.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if not manifest.get("complete"):
        raise TcdnError(
            f"the frame store {path} is incomplete (its ingest was interrupted or failed): run the "
            "same `tcdn ingest` again to finish it"
        )
    settings = StoreSettings.from_dict(manifest["settings"])
    videos = manifest["videos"]
    damaged = store_problems(path, manifest, content=False)
    if damaged:
        raise TcdnError(
            f"the frame store {path} is damaged ({len(damaged)} video(s); {damaged[0]}): run the "
            "same `tcdn ingest` again to repair it"
        )
    lengths = [int(v["n_frames"]) for v in videos]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = StoreFrames(
        path,
        [v["key"] for v in videos],
        offsets,
        settings.frame_shape,
        settings.storage,
        threads=threads,
    )
    entries = [VideoEntry(path=Path(v["source"]), name=v["name"], label=v["label"]) for v in videos]
    log.info(
        "opened frame store %s: %d videos, %d frames (%s)",
        path,
        len(videos),
        len(frames),
        describe(manifest["settings"]),
    )
    return FrameSet(
        frames=frames,  # type: ignore[arg-type]  # an array-like reader, indexed like an ndarray
        videos=entries,
        offsets=offsets,
        skipped=[b["name"] for b in manifest["bad"]],
        positions=Positions(load=lambda: read_positions(path, manifest)),
    )


def store_problems(
    path: str | Path, manifest: dict[str, Any] | None = None, *, content: bool = True
) -> list[str]:
    """What is wrong with the data files of a store: one line per damaged video (empty when
    every file has its recorded size and, with ``content``, its recorded CRC-32).

    Sizes cost one ``stat`` per file (checked whenever a store is opened); contents read the
    whole store (``tcdn ingest --verify``).
    """
    path = Path(path)
    manifest = manifest or read_manifest(path)
    settings = StoreSettings.from_dict(manifest["settings"])
    problems = []
    for video in manifest["videos"]:
        files = expected_files(video, path / "data", settings, version=manifest["version"])
        for file, expected in files.items():
            problem = file_problem(file, expected, content=content)
            if problem is not None:
                problems.append(f"{video['name']}: data/{problem}")
                break
    return problems


def read_positions(store: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Where every frame of a store sits in its source video: ``(N,)`` source frame indices and
    times in seconds, from the videos' ``.pos`` files (version 2), or derived from the settings
    for a version-1 store (:func:`~tcdn.data.store.manifest.derived_positions`)."""
    parts = []
    for v in manifest["videos"]:
        n = int(v["n_frames"])
        if manifest["version"] < 2:
            parts.append(derived_positions(manifest["settings"], n))
            continue
        path = store / "data" / f"{v['key']}.pos"
        try:
            pos = np.fromfile(path, dtype=POSITION_DTYPE)
        except OSError as exc:
            raise TcdnError(
                f"cannot read {path} of the frame store {store}: {exc}. Run `tcdn ingest` again"
            ) from exc
        if len(pos) != n:
            raise TcdnError(
                f"{path} holds {len(pos)} frame positions but the manifest says {n} frames: "
                "the store is damaged; run `tcdn ingest` again"
            )
        parts.append(pos)
    pos = np.concatenate(parts) if parts else np.empty(0, POSITION_DTYPE)
    return pos["index"].astype(np.int64), pos["seconds"].astype(np.float64)
