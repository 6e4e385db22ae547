"""The frame store: every video of a collection decoded once, kept on disk for fast random reads.

Training draws millions of frame tuples at random from thousands of videos; decoding a video per
tuple is hopeless (about 75 frames/s) and holding every frame in RAM does not scale (UCF101 is
about 2.5 million frames, 390 GB as raw 227x227 ``uint8``). :func:`ingest` decodes each video once,
in parallel processes, into one file per video; :func:`open_store` opens the store as a
:class:`~tcdn.data.video.FrameSet` whose ``frames`` read only what is indexed.

Layout of a store folder::

    STORE/manifest.json          format, version, decode settings, storage, per-video entries
    STORE/data/<key>.u8          raw: the video's frames, (n, H, W, 3) uint8, C order
    STORE/data/<key>.jpg         jpeg: the video's frames as concatenated JPEG images ...
    STORE/data/<key>.jpg.idx     ... and their n + 1 byte offsets (little-endian int64)

``<key>`` is a hash of the video's name, so a video keeps its file when others come and go.
Every data file is written under a temporary name and renamed; the manifest is written the same
way, after the data, and says ``"complete": true`` only when an ingest finished. An interrupted
ingest leaves a manifest marked incomplete that lists the videos already done: running the same
ingest again skips them (a video is redone when its file's size or modification time changed).

Storage options, bytes per frame at 227x227:

- ``raw``: 154,587 bytes (227 x 227 x 3); read through ``mmap``, no decoding, the fastest.
- ``jpeg``: JPEG per frame (libjpeg-turbo through ``simplejpeg``, 4:2:0, quality 90 by default):
  typically 10-20 kB on real video (about 1/8-1/15 of raw); decoded in threads on read.

``--stride`` / ``--fps`` subsample frames and divide either size further.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import mmap
import multiprocessing
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tcdn.data.video import DecodeSettings, FrameSet, VideoEntry, find_videos, iter_frames
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STORE_FORMAT = "tcdn-frame-store"
STORE_VERSION = 1
STORAGES = ("raw", "jpeg")
DEFAULT_QUALITY = 90
#: write the manifest of an ingest in progress at most this often (seconds), so a crash loses little
_CHECKPOINT_SECONDS = 5.0
#: raw frames are written in blocks of this many (fewer system calls, one copy per frame)
_WRITE_FRAMES = 16


@dataclass(frozen=True)
class StoreSettings:
    """Everything that decides a store's bytes: the decode settings, the storage and its quality."""

    decode: DecodeSettings = field(default_factory=DecodeSettings)
    storage: str = "raw"
    quality: int = DEFAULT_QUALITY

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise TcdnError(
                f"storage {self.storage!r} is unknown: use one of {', '.join(STORAGES)}"
            )
        if not 1 <= self.quality <= 100:
            raise TcdnError(f"--quality must be in 1..100, got {self.quality}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self.decode)
        d["size"] = list(self.decode.size)
        return {"decode": d, "storage": self.storage, "quality": self.quality}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoreSettings:
        dec = dict(d["decode"])
        dec["size"] = tuple(dec["size"])
        return cls(decode=DecodeSettings(**dec), storage=d["storage"], quality=int(d["quality"]))

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (*self.decode.size, 3)


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a frame-store folder (it holds a ``manifest.json``)."""
    return (Path(path) / MANIFEST).is_file()


def video_key(name: str) -> str:
    """The file stem of a video's data: a hash of its name, stable across ingests."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:20]


def _data_files(data_dir: Path, key: str, storage: str) -> list[Path]:
    if storage == "raw":
        return [data_dir / f"{key}.u8"]
    return [data_dir / f"{key}.jpg", data_dir / f"{key}.jpg.idx"]


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(store: str | Path) -> dict[str, Any]:
    """The manifest of a store folder; :class:`TcdnError` if it is missing or unreadable."""
    path = Path(store) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TcdnError(
            f"{store} is not a frame store (no {MANIFEST}): build one with `tcdn ingest`"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise TcdnError(
            f"cannot read {path}: {exc}. Remove the store and run `tcdn ingest` again"
        ) from exc
    if manifest.get("format") != STORE_FORMAT or manifest.get("version") != STORE_VERSION:
        raise TcdnError(
            f"{path} is not a version-{STORE_VERSION} tcdn frame store "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r}): ingest again"
        )
    return manifest


# -- ingest ---------------------------------------------------------------------------------------
@dataclass
class IngestReport:
    """What an ingest did. ``bad`` maps the name of each video that could not be read to why."""

    store: Path
    n_videos: int
    n_frames: int
    decoded: int
    reused: int
    bad: dict[str, str]
    bytes: int
    seconds: float

    @property
    def bytes_per_frame(self) -> float:
        return self.bytes / max(self.n_frames, 1)


def _encode_video(
    src: str, name: str, data_dir: str, settings_dict: dict[str, Any], threads: bool
) -> dict[str, Any]:
    """Decode one video into its data file(s); runs in a worker process.

    Returns ``{"name", "n_frames", "bytes"}``, or ``{"name", "error"}`` when the video is bad.
    """
    settings = StoreSettings.from_dict(settings_dict)
    key = video_key(name)
    final = _data_files(Path(data_dir), key, settings.storage)
    tmps = [f.with_name(f".{f.name}.partial") for f in final]
    n = 0
    try:
        frames = iter_frames(src, settings.decode, threads=threads)
        if settings.storage == "raw":
            # frames are copied once, into a buffer written every _WRITE_FRAMES frames
            buf = np.empty((_WRITE_FRAMES, *settings.frame_shape), dtype=np.uint8)
            with tmps[0].open("wb", buffering=0) as fh:
                k = 0
                for arr in frames:
                    buf[k] = arr
                    k += 1
                    if k == _WRITE_FRAMES:
                        fh.write(buf.data)
                        n, k = n + k, 0
                fh.write(buf[:k].data)
                n += k
        else:
            import simplejpeg

            offsets = [0]
            with tmps[0].open("wb") as fh:
                for arr in frames:
                    blob = simplejpeg.encode_jpeg(
                        np.ascontiguousarray(arr),
                        quality=settings.quality,
                        colorspace="RGB",
                        colorsubsampling="420",
                    )
                    fh.write(blob)
                    offsets.append(offsets[-1] + len(blob))
                    n += 1
            np.asarray(offsets, dtype="<i8").tofile(tmps[1])
    except TcdnError as exc:
        for t in tmps:
            t.unlink(missing_ok=True)
        return {"name": name, "error": str(exc)}
    except BaseException:
        for t in tmps:
            t.unlink(missing_ok=True)
        raise
    for t, f in zip(tmps, final, strict=True):
        os.replace(t, f)
    return {"name": name, "n_frames": n, "bytes": sum(f.stat().st_size for f in final)}


def _source_stamp(path: Path) -> dict[str, int]:
    """Size and modification time of a video (of the newest file, for a folder of frame images)."""
    st = path.stat()
    if path.is_dir():
        files = [p.stat() for p in path.iterdir() if p.is_file()]
        return {
            "file_size": sum(f.st_size for f in files),
            "mtime_ns": max([st.st_mtime_ns, *(f.st_mtime_ns for f in files)]),
        }
    return {"file_size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_entries(entries: Sequence[VideoEntry]) -> None:
    if not entries:
        raise TcdnError("the collection is empty: there is no video to ingest")
    seen: dict[str, Path] = {}
    for e in entries:
        if e.name in seen:
            raise TcdnError(
                f"two videos share the name {e.name!r} ({seen[e.name]} and {e.path}): "
                "names must be unique in a collection; rename one or drop it from the list"
            )
        seen[e.name] = e.path


def ingest(
    entries: Sequence[VideoEntry],
    out: str | Path,
    settings: StoreSettings | None = None,
    *,
    workers: int = 1,
    source: str = "",
    progress: bool = True,
) -> IngestReport:
    """Decode every video of ``entries`` once into the frame store ``out``.

    Parameters
    ----------
    entries
        The videos (from :func:`~tcdn.data.video.find_videos` or a dataset reader).
    out
        The store folder; created if missing. If it holds a store built with the same settings,
        videos already there (same name, source path, size and modification time) are kept and
        only the others are decoded; videos no longer listed are dropped from it.
    settings
        Size, resize mode, subsampling, storage and quality.
    workers
        Decoding processes. One video is decoded by one process; with ``workers > 1`` the decoder
        itself runs single-threaded.
    source
        The collection's description, recorded in the manifest.

    Returns
    -------
    IngestReport
        Counts, timings and the bad videos. A bad video (unreadable, corrupt, no video stream, no
        frame, unsupported codec) does not stop the ingest: it is logged, listed in the report
        and in the manifest's ``bad``, and left out of the store.

    Raises
    ------
    TcdnError
        Empty or duplicate-named collection, a store built with other settings, or no video of
        the collection could be read.
    """
    settings = settings or StoreSettings()
    _check_entries(entries)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TcdnError(f"--out {out} is a file: give a folder for the frame store")
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    done: dict[str, dict[str, Any]] = {}
    if is_store(out):
        old = read_manifest(out)
        if old["settings"] != settings.to_dict():
            raise TcdnError(
                f"the store {out} was built with other settings ({_describe(old['settings'])}; now "
                f"{_describe(settings.to_dict())}): give another --out, or remove {out} to rebuild it"
            )
        done = {v["name"]: v for v in old["videos"]}

    records: dict[str, dict[str, Any]] = {}
    todo: list[VideoEntry] = []
    bad: dict[str, str] = {}
    for e in entries:
        try:
            stamp = _source_stamp(e.path)
        except OSError as exc:
            bad[e.name] = f"cannot read {e.path}: {exc.strerror or exc}"
            continue
        record = {"name": e.name, "label": e.label, "source": str(e.path.resolve()), **stamp}
        prev = done.get(e.name)
        if (
            prev is not None
            and all(prev.get(k) == record[k] for k in ("source", "file_size", "mtime_ns"))
            and all(f.is_file() for f in _data_files(data_dir, prev["key"], settings.storage))
        ):
            records[e.name] = {**prev, "label": e.label}
        else:
            records[e.name] = record
            todo.append(e)
    reused = len(records) - len(todo)
    if reused:
        log.info("%s: %d video(s) already ingested, %d to decode", out, reused, len(todo))

    def manifest(complete: bool) -> dict[str, Any]:
        videos = [records[e.name] for e in entries if "n_frames" in records.get(e.name, {})]
        return {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "complete": complete,
            "source": source,
            "settings": settings.to_dict(),
            "frame_shape": list(settings.frame_shape),
            "n_frames": sum(v["n_frames"] for v in videos),
            "videos": videos,
            "bad": [{"name": k, "error": v} for k, v in bad.items()],
        }

    _write_json_atomic(out / MANIFEST, manifest(complete=False))
    settings_dict = settings.to_dict()
    threads = workers <= 1
    last_write = time.monotonic()
    bar = tqdm(total=len(todo), desc="ingesting videos", unit="video", disable=not progress)
    try:
        for result in _run(todo, data_dir, settings_dict, threads, workers):
            name = result["name"]
            if "error" in result:
                log.warning("skipping %s", result["error"])
                bad[name] = result["error"]
                records.pop(name, None)
            else:
                records[name].update(
                    key=video_key(name), n_frames=result["n_frames"], bytes=result["bytes"]
                )
            bar.update(1)
            if time.monotonic() - last_write > _CHECKPOINT_SECONDS:
                _write_json_atomic(out / MANIFEST, manifest(complete=False))
                last_write = time.monotonic()
    except BaseException:
        _write_json_atomic(out / MANIFEST, manifest(complete=False))  # keep what was finished
        raise
    finally:
        bar.close()

    final = manifest(complete=True)
    if not final["videos"]:
        _write_json_atomic(out / MANIFEST, manifest(complete=False))
        raise TcdnError(
            f"none of the {len(entries)} video(s) could be read into {out}: "
            + "; ".join(list(bad.values())[:3])
        )
    _remove_orphans(data_dir, {v["key"] for v in final["videos"]}, settings.storage)
    _write_json_atomic(out / MANIFEST, final)
    report = IngestReport(
        store=out,
        n_videos=len(final["videos"]),
        n_frames=final["n_frames"],
        decoded=len(todo) - sum(1 for e in todo if e.name in bad),
        reused=reused,
        bad=dict(bad),
        bytes=sum(v["bytes"] for v in final["videos"]),
        seconds=time.perf_counter() - start,
    )
    log.info(
        "%s: %d videos, %d frames, %.0f bytes/frame (%s), %d bad",
        out,
        report.n_videos,
        report.n_frames,
        report.bytes_per_frame,
        settings.storage,
        len(bad),
    )
    return report


def _describe(settings: dict[str, Any]) -> str:
    d = settings["decode"]
    every = f"fps {d['fps']}" if d["fps"] else f"stride {d['stride']}"
    return (
        f"{d['size'][0]}x{d['size'][1]} {d['resize']}, {every}, max-frames {d['max_frames']}, "
        f"{settings['storage']}"
        + (f" q{settings['quality']}" if settings["storage"] == "jpeg" else "")
    )


def _run(
    todo: list[VideoEntry],
    data_dir: Path,
    settings_dict: dict[str, Any],
    threads: bool,
    workers: int,
) -> Iterator[dict[str, Any]]:
    """Decode the videos, in this process or in ``workers`` spawned ones; yield results as they end."""
    args = [(str(e.path), e.name, str(data_dir), settings_dict, threads) for e in todo]
    if workers <= 1 or len(todo) <= 1:
        for a in args:
            yield _encode_video(*a)
        return
    ctx = multiprocessing.get_context("spawn")  # safe beside torch's threads, same on every OS
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx) as pool:
        futures = [pool.submit(_encode_video, *a) for a in args]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _remove_orphans(data_dir: Path, keys: set[str], storage: str) -> None:
    """Delete data files of videos no longer in the store, and leftovers of interrupted writes."""
    keep = {f.name for k in keys for f in _data_files(data_dir, k, storage)}
    for f in data_dir.iterdir():
        if f.name not in keep:
            with contextlib.suppress(OSError):
                f.unlink()


# -- reading --------------------------------------------------------------------------------------
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
                offs = np.fromfile(path, dtype="<i8")
                self._jpeg_offsets[v] = offs
            simplejpeg.decode_jpeg(blob[offs[t] : offs[t + 1]], colorspace="RGB", buffer=out[i])


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


def open_store(path: str | Path, *, threads: int | None = None) -> FrameSet:
    """Open a frame store as a :class:`~tcdn.data.video.FrameSet` that reads frames on demand.

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
        _describe(manifest["settings"]),
    )
    return FrameSet(
        frames=frames,  # type: ignore[arg-type]  # an array-like reader, indexed like an ndarray
        videos=entries,
        offsets=offsets,
        skipped=[b["name"] for b in manifest["bad"]],
    )


def ingest_folder(
    root: str | Path,
    out: str | Path,
    settings: StoreSettings | None = None,
    *,
    labels_csv: str | Path | None = None,
    workers: int = 1,
    progress: bool = True,
) -> IngestReport:
    """:func:`ingest` the videos of a collection folder (see :func:`~tcdn.data.video.find_videos`)."""
    return ingest(
        find_videos(root, labels_csv),
        out,
        settings,
        workers=workers,
        source=str(root),
        progress=progress,
    )


def load_into_memory(
    root: str | Path,
    settings: DecodeSettings,
    *,
    labels_csv: str | Path | None = None,
    skip_bad: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> FrameSet:
    """Ingest a collection folder into a temporary raw store, read it into RAM, remove the store.

    This is how a plain folder becomes a :class:`FrameSet` (:func:`tcdn.data.video.load_frames`):
    the same decoding path as ``tcdn ingest``, for collections small enough for memory.
    """
    entries = find_videos(root, labels_csv)
    with tempfile.TemporaryDirectory(prefix="tcdn-store-") as tmp:
        report = ingest(
            entries,
            Path(tmp) / "store",
            StoreSettings(decode=settings),
            workers=workers,
            source=str(root),
            progress=progress,
        )
        if report.bad and not skip_bad:
            error = next(iter(report.bad.values()))
            raise TcdnError(f"{error} (or pass --skip-bad to go on without it)")
        fs = open_store(Path(tmp) / "store")
        frames = fs.frames[:]
    # keep the caller's paths (the store records resolved ones)
    by_name = {e.name: e for e in entries}
    return FrameSet(
        frames=frames,
        videos=[by_name[v.name] for v in fs.videos],
        offsets=fs.offsets,
        skipped=[e.name for e in entries if e.name in report.bad],
    )
