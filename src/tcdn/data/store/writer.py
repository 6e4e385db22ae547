"""Writing a frame store: every video decoded once, in parallel processes, one data file each."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tcdn import runlock
from tcdn.data.collection import VideoEntry, find_videos
from tcdn.data.decode import iter_positioned_frames, short_of_frames
from tcdn.data.store.manifest import (
    JOURNAL,
    MANIFEST,
    POSITION_DTYPE,
    STORE_FORMAT,
    STORE_KIND,
    STORE_VERSION,
    StoreSettings,
    crc32_hex,
    data_files,
    data_problem,
    describe,
    is_data_name,
    is_store,
    looks_like_store,
    read_journal,
    read_manifest,
    video_key,
    write_json_atomic,
)
from tcdn.errors import TcdnError
from tcdn.outputs import (
    check_output_folder,
    claim_folder,
    open_append,
    open_new,
    os_error_hint,
    partial_name,
    sub_folder,
)

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
    #: name -> what was odd about a video that was kept (e.g. fewer frames than its container lists)
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def bytes_per_frame(self) -> float:
        return self.bytes / max(self.n_frames, 1)


class StoreWriteError(TcdnError):
    """A store's file could not be written (full disk, file-size limit, permissions): the ingest
    stops, unlike a bad video, which is skipped. ``hint`` says why, in a user's words."""

    hint = ""


def _write_error(path: Path, exc: OSError) -> StoreWriteError:
    error = StoreWriteError(
        f"cannot write {path} of the frame store: {os_error_hint(exc)}; the videos already "
        "done are kept, and the same `tcdn ingest` finishes the rest once there is room"
    )
    error.hint = os_error_hint(exc)
    return error


def _encode_video(
    src: str, name: str, data_dir: str, settings_dict: dict[str, Any], threads: bool
) -> dict[str, Any]:
    """Decode one video into its data file(s); runs in a worker process.

    Returns ``{"name", "n_frames", "bytes", "files"}`` (``bytes``: the frames' bytes, the 16 bytes
    per frame of the ``.pos`` file not counted; ``files``: each file's size and CRC-32;
    ``warning`` when the file decoded to fewer frames than its container lists), or ``{"name",
    "error"}`` when the video is bad. A file that cannot be written raises
    :class:`StoreWriteError`; nothing half-written is left behind either way.
    """
    settings = StoreSettings.from_dict(settings_dict)
    key = video_key(name)
    final = data_files(Path(data_dir), key, settings.storage)
    tmps = [partial_name(f) for f in final]
    stats: dict[str, int] = {}
    crcs = [0] * len(final)
    positions: list[tuple[int, float]] = []  # each kept frame's index and time in the source

    def frames_of(src: str) -> Iterator[np.ndarray]:
        for arr, index, seconds in iter_positioned_frames(
            src, settings.decode, threads=threads, stats=stats
        ):
            positions.append((index, seconds))
            yield arr

    def write_whole(i: int, data: bytes) -> None:
        try:
            with open_new(tmps[i], "wb", error=StoreWriteError) as wfh:
                wfh.write(data)
        except OSError as exc:
            raise _write_error(final[i], exc) from None
        crcs[i] = zlib.crc32(data)

    try:
        frames = frames_of(src)
        try:
            fh = open_new(tmps[0], "wb", error=StoreWriteError)
        except OSError as exc:
            raise _write_error(final[0], exc) from None
        with fh:
            n, crcs[0], offsets = _write_frames(fh, frames, settings, final[0])
            _flush(fh, final[0])
        if settings.storage == "jpeg":
            write_whole(1, np.asarray(offsets, dtype="<i8").tobytes())
        write_whole(len(final) - 1, np.array(positions, dtype=POSITION_DTYPE).tobytes())
        for t, f in zip(tmps, final, strict=True):
            try:
                os.replace(t, f)
            except OSError as exc:
                raise _write_error(f, exc) from None
    except StoreWriteError:
        for t in tmps:
            t.unlink(missing_ok=True)
        raise
    except TcdnError as exc:
        for t in tmps:
            t.unlink(missing_ok=True)
        return {"name": name, "error": str(exc)}
    except BaseException:
        for t in tmps:
            t.unlink(missing_ok=True)
        raise
    files = {
        f.name: {"size": f.stat().st_size, "crc32": crc32_hex(c)}
        for f, c in zip(final, crcs, strict=True)
    }
    result: dict[str, Any] = {
        "name": name,
        "n_frames": n,
        "bytes": sum(files[f.name]["size"] for f in final[:-1]),
        "files": files,
    }
    short = short_of_frames(stats)
    if short:
        result["warning"] = f"{src}: {short}"
    return result


def _write_frames(
    fh: Any, frames: Iterator[np.ndarray], settings: StoreSettings, final: Path
) -> tuple[int, int, list[int]]:
    """Write ``frames`` to the open data file ``fh`` (of ``final``) as ``settings.storage`` says;
    return the number of frames, the file's CRC-32 and, for JPEG, each frame's end offset."""
    n, crc, offsets = 0, 0, [0]
    if settings.storage == "raw":
        # frames are copied once, into a buffer written every _WRITE_FRAMES frames
        buf = np.empty((_WRITE_FRAMES, *settings.frame_shape), dtype=np.uint8)
        k = 0
        for arr in frames:
            buf[k] = arr
            k += 1
            if k == _WRITE_FRAMES:
                crc = _write(fh, buf.data, crc, final)
                n, k = n + k, 0
        crc = _write(fh, buf[:k].data, crc, final)
        return n + k, crc, offsets
    import simplejpeg

    for arr in frames:
        blob = simplejpeg.encode_jpeg(
            np.ascontiguousarray(arr),
            quality=settings.quality,
            colorspace="RGB",
            colorsubsampling="420",
        )
        crc = _write(fh, blob, crc, final)
        offsets.append(offsets[-1] + len(blob))
        n += 1
    return n, crc, offsets


def _write(fh: Any, data: Any, crc: int, final: Path) -> int:
    """Write all of ``data`` (the buffered writer retries short writes); return the running CRC."""
    try:
        fh.write(data)
    except OSError as exc:
        raise _write_error(final, exc) from None
    return zlib.crc32(data, crc)


def _flush(fh: Any, final: Path) -> None:
    try:
        fh.flush()
    except OSError as exc:
        raise _write_error(final, exc) from None


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
    verify: bool = False,
) -> IngestReport:
    """Decode every video of ``entries`` once into the frame store ``out``.

    Parameters
    ----------
    entries
        The videos (from :func:`~tcdn.data.collection.find_videos` or a dataset reader), or a
        collection folder, whose videos :func:`~tcdn.data.collection.find_videos` lists (with
        ``labels_csv``, if given).
    out
        The store folder: new, empty, or a store. A non-empty folder that is not a tcdn frame
        store is refused (nothing in it is touched). If it holds a store built with the same
        settings, videos already there (same name, source path, size and modification time, and
        data files of the recorded sizes) are kept and only the others are decoded; a video whose
        data file is damaged is decoded again; videos no longer listed are dropped from it. Only
        files with the store's own names are ever deleted. The folder is locked while the ingest
        runs: a second ingest into it stops with a clear error.
    settings
        Size, resize mode, subsampling, storage and quality.
    workers
        Decoding processes. One video is decoded by one process; with ``workers > 1`` the decoder
        itself runs single-threaded.
    source
        The collection's description, recorded in the manifest (default: the folder, if given).
    verify
        Also check the contents (CRC-32) of every data file kept from an earlier ingest, not only
        its size, and decode again the videos whose files do not match.

    Returns
    -------
    IngestReport
        Counts, timings and the bad videos. A bad video (unreadable, corrupt, no video stream, no
        frame, unsupported codec) does not stop the ingest: it is logged, listed in the report
        and in the manifest's ``bad``, and left out of the store.

    Raises
    ------
    TcdnError
        Empty or duplicate-named collection, an output folder that is not a store, a store built
        with other settings or in use by another process, a full disk, or no video of the
        collection could be read.
    """
    if isinstance(entries, str | Path):
        source = source or str(entries)
        entries = find_videos(entries, labels_csv)
    elif labels_csv is not None:
        raise TcdnError("labels_csv applies to a collection folder, not to a list of videos")
    start = time.perf_counter()
    out = check_store_folder(out)
    entries = list(entries)
    _check_entries(entries)
    with runlock.hold(out):
        claim_folder(out, STORE_KIND)
        writer = _StoreWriter(entries, out, settings or StoreSettings(), source)
        todo = writer.plan(verify=verify)
        writer.decode(todo, workers, progress)
        return writer.finish(todo, time.perf_counter() - start)


def check_store_folder(out: str | Path, option: str = "--out") -> Path:
    """Check, before any decoding, that ``out`` can hold a frame store: missing, empty, or a
    store (see :func:`tcdn.outputs.check_output_folder`)."""
    return check_output_folder(
        out, STORE_KIND, option, recognise=looks_like_store, what="frame store"
    )


class _StoreWriter:
    """One ingest into a store folder: what is there already, what to decode, and the manifest."""

    def __init__(
        self, entries: list[VideoEntry], out: Path, settings: StoreSettings, source: str
    ) -> None:
        self.entries, self.out, self.settings, self.source = entries, out, settings, source
        self.data_dir = out / "data"
        self.records: dict[str, dict[str, Any]] = {}  # name -> the manifest's entry
        self.bad: dict[str, str] = {}  # name -> why it could not be read
        self.warnings: dict[str, str] = {}  # name -> what was odd about a video kept
        self.reused = 0  # videos kept from an earlier ingest
        self.journal: Any = None

    def _previous(self) -> dict[str, dict[str, Any]]:
        """The videos an earlier ingest finished: the manifest's, and those its journal lists."""
        done: dict[str, dict[str, Any]] = {}
        if is_store(self.out):
            try:
                old = read_manifest(self.out)
            except TcdnError as exc:
                log.warning("%s; decoding every video again", exc)
                old = None
            if old is not None:
                if old["settings"] != self.settings.to_dict():
                    raise TcdnError(
                        f"the store {self.out} was built with other settings ({describe(old['settings'])}; "
                        f"now {describe(self.settings.to_dict())}): give another --out, or remove "
                        f"{self.out} to rebuild it"
                    )
                done = {v["name"]: v for v in old["videos"]}
        journal = read_journal(self.out / JOURNAL, self.settings)
        if journal is None:  # another ingest's (other settings): of no use to this one
            (self.out / JOURNAL).unlink(missing_ok=True)
        for record in journal or []:
            done[record["name"]] = record
        return done

    def plan(self, verify: bool = False) -> list[VideoEntry]:
        """Record the videos already in the store unchanged; return the ones to decode."""
        sub_folder(self.out, self.data_dir.name)  # never a link to a folder tcdn may not own
        _remove_partials(self.data_dir)
        done = self._previous()
        todo: list[VideoEntry] = []
        damaged = 0
        for e in self.entries:
            try:
                stamp = _source_stamp(e.path)
            except OSError as exc:
                self.bad[e.name] = f"cannot read {e.path}: {exc.strerror or exc}"
                continue
            record = {"name": e.name, "label": e.label, "source": str(e.path.resolve()), **stamp}
            prev = done.get(e.name)
            if prev is not None and all(
                prev.get(k) == record[k] for k in ("source", "file_size", "mtime_ns")
            ):
                problem = data_problem(prev, self.data_dir, self.settings, verify)
                if problem is None:
                    self.records[e.name] = {**prev, "label": e.label}
                    if prev.get("warning"):
                        self.warnings[e.name] = prev["warning"]
                    continue
                log.warning("%s: %s: decoding it again", e.name, problem)
                damaged += 1
            self.records[e.name] = record
            todo.append(e)
        self.reused = len(self.records) - len(todo)
        if self.reused or damaged:
            log.info(
                "%s: %d video(s) already ingested, %d to decode (%d to repair)",
                self.out,
                self.reused,
                len(todo),
                damaged,
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

    def _journal(self, record: dict[str, Any]) -> None:
        """Append a finished video to the journal, so that a re-run keeps it even if this process
        is killed before the manifest is written again."""
        try:
            if self.journal is None:
                new = not (self.out / JOURNAL).is_file()
                self.journal = open_append(self.out / JOURNAL)
                if new:
                    self.journal.write(json.dumps({"settings": self.settings.to_dict()}) + "\n")
            self.journal.write(json.dumps(record) + "\n")
            self.journal.flush()
        except OSError as exc:
            raise _write_error(self.out / JOURNAL, exc) from None

    def decode(self, todo: list[VideoEntry], workers: int, progress: bool) -> None:
        """Decode ``todo`` into data files. Each finished video is appended to the journal at
        once, and the manifest (incomplete) is rewritten every few seconds and on any
        interruption, so a re-run skips what was finished."""
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
                    if result.get("warning"):
                        log.warning("%s", result["warning"])
                        self.warnings[name] = result["warning"]
                    record = self.records[name]
                    record.update(
                        key=video_key(name),
                        n_frames=result["n_frames"],
                        bytes=result["bytes"],
                        files=result["files"],
                    )
                    if result.get("warning"):
                        record["warning"] = result["warning"]
                    else:
                        record.pop("warning", None)
                    self._journal(record)
                bar.update(1)
                if time.monotonic() - last_write > _CHECKPOINT_SECONDS:
                    self.write_manifest(complete=False)
                    last_write = time.monotonic()
        except BaseException:
            with contextlib.suppress(TcdnError):  # keep what was finished (if there is room)
                self.write_manifest(complete=False)
            raise
        finally:
            bar.close()
            if self.journal is not None:
                with contextlib.suppress(OSError):
                    self.journal.close()

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
        (self.out / JOURNAL).unlink(missing_ok=True)  # folded into the manifest
        report = IngestReport(
            store=self.out,
            n_videos=len(final["videos"]),
            n_frames=final["n_frames"],
            decoded=len(todo) - sum(1 for e in todo if e.name in self.bad),
            reused=self.reused,
            bad=dict(self.bad),
            bytes=sum(v["bytes"] for v in final["videos"]),
            seconds=seconds,
            warnings=dict(self.warnings),
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


def _remove_partials(data_dir: Path) -> None:
    """Delete the temporary files interrupted writes left (only names an ingest gives them)."""
    for f in data_dir.iterdir():
        if f.name.endswith(".partial") and is_data_name(f.name):
            with contextlib.suppress(OSError):
                f.unlink()


def _remove_orphans(data_dir: Path, keys: set[str], storage: str) -> None:
    """Delete data files of videos no longer in the store, and leftovers of interrupted writes.

    Only files with the names an ingest gives its files are deleted: anything else in the
    folder was not written by tcdn and is left alone."""
    keep = {f.name for k in keys for f in data_files(data_dir, k, storage)}
    for f in data_dir.iterdir():
        if f.name in keep:
            continue
        if not is_data_name(f.name) or not f.is_file():
            log.warning("%s: left %s alone (tcdn did not write it)", data_dir.parent, f)
            continue
        with contextlib.suppress(OSError):
            f.unlink()
