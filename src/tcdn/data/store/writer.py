"""Writing a frame store: every video decoded once, in parallel processes, one data file each."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tcdn.data.collection import VideoEntry, find_videos
from tcdn.data.decode import iter_positioned_frames
from tcdn.data.store.manifest import (
    MANIFEST,
    POSITION_DTYPE,
    STORE_FORMAT,
    STORE_VERSION,
    StoreSettings,
    data_files,
    describe,
    is_store,
    read_manifest,
    video_key,
    write_json_atomic,
)
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

#: write the manifest of an ingest in progress at most this often (seconds), so a crash loses little
_CHECKPOINT_SECONDS = 5.0
#: raw frames are written in blocks of this many (fewer system calls, one copy per frame)
_WRITE_FRAMES = 16


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
    final = data_files(Path(data_dir), key, settings.storage)
    tmps = [f.with_name(f".{f.name}.partial") for f in final]
    n = 0
    positions: list[tuple[int, float]] = []  # each kept frame's index and time in the source

    def frames_of(src: str) -> Iterator[np.ndarray]:
        for arr, index, seconds in iter_positioned_frames(src, settings.decode, threads=threads):
            positions.append((index, seconds))
            yield arr

    try:
        frames = frames_of(src)
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
            with tmps[0].open("wb") as jf:
                for arr in frames:
                    blob = simplejpeg.encode_jpeg(
                        np.ascontiguousarray(arr),
                        quality=settings.quality,
                        colorspace="RGB",
                        colorsubsampling="420",
                    )
                    jf.write(blob)
                    offsets.append(offsets[-1] + len(blob))
                    n += 1
            np.asarray(offsets, dtype="<i8").tofile(tmps[1])
        np.array(positions, dtype=POSITION_DTYPE).tofile(tmps[-1])
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
    # the frames' bytes (the 16 bytes per frame of the .pos file are not counted)
    return {"name": name, "n_frames": n, "bytes": sum(f.stat().st_size for f in final[:-1])}


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
    entries: Sequence[VideoEntry] | str | Path,
    out: str | Path,
    settings: StoreSettings | None = None,
    *,
    workers: int = 1,
    source: str = "",
    labels_csv: str | Path | None = None,
    progress: bool = True,
) -> IngestReport:
    """Decode every video of ``entries`` once into the frame store ``out``.

    Parameters
    ----------
    entries
        The videos (from :func:`~tcdn.data.collection.find_videos` or a dataset reader), or a
        collection folder, whose videos :func:`~tcdn.data.collection.find_videos` lists (with
        ``labels_csv``, if given).
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
        The collection's description, recorded in the manifest (default: the folder, if given).

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
    if isinstance(entries, str | Path):
        source = source or str(entries)
        entries = find_videos(entries, labels_csv)
    elif labels_csv is not None:
        raise TcdnError("labels_csv applies to a collection folder, not to a list of videos")
    start = time.perf_counter()
    writer = _StoreWriter(list(entries), Path(out), settings or StoreSettings(), source)
    todo = writer.plan()
    writer.decode(todo, workers, progress)
    return writer.finish(todo, time.perf_counter() - start)


class _StoreWriter:
    """One ingest into a store folder: what is there already, what to decode, and the manifest."""

    def __init__(
        self, entries: list[VideoEntry], out: Path, settings: StoreSettings, source: str
    ) -> None:
        _check_entries(entries)
        if out.exists() and not out.is_dir():
            raise TcdnError(f"--out {out} is a file: give a folder for the frame store")
        self.entries, self.out, self.settings, self.source = entries, out, settings, source
        self.data_dir = out / "data"
        self.records: dict[str, dict[str, Any]] = {}  # name -> the manifest's entry
        self.bad: dict[str, str] = {}  # name -> why it could not be read
        self.reused = 0  # videos kept from an earlier ingest

    def plan(self) -> list[VideoEntry]:
        """Record the videos already in the store unchanged; return the ones to decode."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        done: dict[str, dict[str, Any]] = {}
        if is_store(self.out):
            old = read_manifest(self.out)
            if old["settings"] != self.settings.to_dict():
                raise TcdnError(
                    f"the store {self.out} was built with other settings ({describe(old['settings'])}; "
                    f"now {describe(self.settings.to_dict())}): give another --out, or remove "
                    f"{self.out} to rebuild it"
                )
            done = {v["name"]: v for v in old["videos"]}
        todo: list[VideoEntry] = []
        for e in self.entries:
            try:
                stamp = _source_stamp(e.path)
            except OSError as exc:
                self.bad[e.name] = f"cannot read {e.path}: {exc.strerror or exc}"
                continue
            record = {"name": e.name, "label": e.label, "source": str(e.path.resolve()), **stamp}
            prev = done.get(e.name)
            if (
                prev is not None
                and all(prev.get(k) == record[k] for k in ("source", "file_size", "mtime_ns"))
                and all(
                    f.is_file()
                    for f in data_files(self.data_dir, prev["key"], self.settings.storage)
                )
            ):
                self.records[e.name] = {**prev, "label": e.label}
            else:
                self.records[e.name] = record
                todo.append(e)
        self.reused = len(self.records) - len(todo)
        if self.reused:
            log.info(
                "%s: %d video(s) already ingested, %d to decode", self.out, self.reused, len(todo)
            )
        return todo

    def manifest(self, complete: bool) -> dict[str, Any]:
        videos = [
            self.records[e.name] for e in self.entries if "n_frames" in self.records.get(e.name, {})
        ]
        return {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "complete": complete,
            "source": self.source,
            "settings": self.settings.to_dict(),
            "frame_shape": list(self.settings.frame_shape),
            "n_frames": sum(v["n_frames"] for v in videos),
            "videos": videos,
            "bad": [{"name": k, "error": v} for k, v in self.bad.items()],
        }

    def write_manifest(self, complete: bool) -> None:
        write_json_atomic(self.out / MANIFEST, self.manifest(complete))

    def decode(self, todo: list[VideoEntry], workers: int, progress: bool) -> None:
        """Decode ``todo`` into data files; the manifest (incomplete) is rewritten every few
        seconds and on any interruption, so a re-run skips what was finished."""
        self.write_manifest(complete=False)
        last_write = time.monotonic()
        bar = tqdm(total=len(todo), desc="ingesting videos", unit="video", disable=not progress)
        try:
            for result in _run(todo, self.data_dir, self.settings.to_dict(), workers <= 1, workers):
                name = result["name"]
                if "error" in result:
                    log.warning("skipping %s", result["error"])
                    self.bad[name] = result["error"]
                    self.records.pop(name, None)
                else:
                    self.records[name].update(
                        key=video_key(name), n_frames=result["n_frames"], bytes=result["bytes"]
                    )
                bar.update(1)
                if time.monotonic() - last_write > _CHECKPOINT_SECONDS:
                    self.write_manifest(complete=False)
                    last_write = time.monotonic()
        except BaseException:
            self.write_manifest(complete=False)  # keep what was finished
            raise
        finally:
            bar.close()

    def finish(self, todo: list[VideoEntry], seconds: float) -> IngestReport:
        """Drop the files of videos no longer listed, mark the manifest complete, report."""
        final = self.manifest(complete=True)
        if not final["videos"]:
            self.write_manifest(complete=False)
            raise TcdnError(
                f"none of the {len(self.entries)} video(s) could be read into {self.out}: "
                + "; ".join(list(self.bad.values())[:3])
            )
        _remove_orphans(self.data_dir, {v["key"] for v in final["videos"]}, self.settings.storage)
        write_json_atomic(self.out / MANIFEST, final)
        report = IngestReport(
            store=self.out,
            n_videos=len(final["videos"]),
            n_frames=final["n_frames"],
            decoded=len(todo) - sum(1 for e in todo if e.name in self.bad),
            reused=self.reused,
            bad=dict(self.bad),
            bytes=sum(v["bytes"] for v in final["videos"]),
            seconds=seconds,
        )
        log.info(
            "%s: %d videos, %d frames, %.0f bytes/frame (%s), %d bad",
            self.out,
            report.n_videos,
            report.n_frames,
            report.bytes_per_frame,
            self.settings.storage,
            len(self.bad),
        )
        return report


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
    keep = {f.name for k in keys for f in data_files(data_dir, k, storage)}
    for f in data_dir.iterdir():
        if f.name not in keep:
            with contextlib.suppress(OSError):
                f.unlink()
