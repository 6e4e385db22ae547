"""A store's settings and its manifest: what decides its bytes, and what it holds.

Every file of a store is written under a temporary name beside its final one and renamed, so a
crash never leaves a half-written file under a final name. The manifest records each data file's
size and CRC-32 (``files`` of each video), so a damaged file is found: by size whenever a store
is opened or ingested again, by content with ``tcdn ingest --verify``.

A store folder carries the marker :data:`tcdn.outputs.MARKER` (kind :data:`STORE_KIND`); tcdn
only ever deletes files of a store that carry its own names (:func:`is_data_name`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.decode import DecodeSettings
from tcdn.errors import TcdnError
from tcdn.outputs import write_atomic

MANIFEST = "manifest.json"
#: videos finished by an ingest in progress, one JSON line each (folded into the manifest at the end)
JOURNAL = "journal.jsonl"
#: the kind of folder a store is, in its marker file (:func:`tcdn.outputs.claim_folder`)
STORE_KIND = "frame-store"
STORE_FORMAT = "tcdn-frame-store"
#: 2: each video's data files include ``KEY.pos``, where each stored frame sits in its source video
STORE_VERSION = 2
#: the store versions this tcdn reads (a version-1 store has no ``.pos`` files: see
#: :func:`derived_positions`)
READABLE_VERSIONS = (1, 2)
STORAGES = ("raw", "jpeg")
DEFAULT_QUALITY = 90


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


def looks_like_store(path: Path) -> bool:
    """Whether ``path`` holds a tcdn frame store's manifest (a store made before marker files)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == STORE_FORMAT


#: the names of the files an ingest writes in ``data/``, and of their temporary versions
_DATA_NAME = re.compile(r"^(?:\.)?[0-9a-f]{20}\.(?:u8|jpg|jpg\.idx|pos)(?:\.partial)?$")


def is_data_name(name: str) -> bool:
    """Whether ``name`` is the name of a data file (or its temporary file) an ingest writes."""
    return _DATA_NAME.match(name) is not None


def video_key(name: str) -> str:
    """The file stem of a video's data: a hash of its name, stable across ingests."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:20]


#: one record per stored frame in ``KEY.pos``: its index among the source video's decoded
#: frames, and its time in seconds from the video's first frame (NaN: unknown)
POSITION_DTYPE = np.dtype([("index", "<i8"), ("seconds", "<f8")])


def data_files(data_dir: Path, key: str, storage: str) -> list[Path]:
    """The files that hold one video's frames; the last is its ``.pos`` (frame positions)."""
    frames = (
        [data_dir / f"{key}.u8"]
        if storage == "raw"
        else [data_dir / f"{key}.jpg", data_dir / f"{key}.jpg.idx"]
    )
    return [*frames, data_dir / f"{key}.pos"]


def derived_positions(settings: dict[str, Any], n_frames: int) -> np.ndarray:
    """The positions a version-1 store (no ``.pos`` files) implies for a video's ``n_frames``
    frames: with a stride S, frame ``i`` is the source's ``i * S``; with ``--fps`` the index is
    unknown (-1). The time is unknown (NaN) either way."""
    out = np.empty(n_frames, dtype=POSITION_DTYPE)
    stride = int(settings["decode"]["stride"])
    fps = settings["decode"]["fps"]
    out["index"] = -1 if fps else np.arange(n_frames, dtype=np.int64) * stride
    out["seconds"] = np.nan
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1))


def crc32_hex(value: int) -> str:
    return f"{value & 0xFFFFFFFF:08x}"


def expected_files(
    record: dict[str, Any], data_dir: Path, settings: StoreSettings, *, version: int = STORE_VERSION
) -> dict[Path, dict[str, Any]]:
    """The data files of a video's manifest ``record`` and what each must hold: ``size`` (bytes)
    and ``crc32`` where known. Stores written before sizes were recorded get the sizes their
    frame count implies (a raw file's, a JPEG index's, a ``.pos`` file's). A store of
    ``version`` 1 has no ``.pos`` files."""
    files = data_files(data_dir, record["key"], settings.storage)
    if version < 2:
        files = files[:-1]
    recorded = record.get("files") or {}
    out: dict[Path, dict[str, Any]] = {}
    n = int(record["n_frames"])
    for f in files:
        known = dict(recorded.get(f.name) or {})
        if "size" not in known:
            if f.suffix == ".u8":
                known["size"] = n * math.prod(settings.frame_shape)
            elif f.name.endswith(".idx"):
                known["size"] = (n + 1) * 8
            elif f.suffix == ".pos":
                known["size"] = n * POSITION_DTYPE.itemsize
        out[f] = known
    return out


def file_problem(path: Path, expected: dict[str, Any], *, content: bool = False) -> str | None:
    """What is wrong with a data file (missing, wrong size, and with ``content`` a wrong CRC-32),
    or ``None`` when it matches."""
    try:
        size = path.stat().st_size
    except OSError:
        return f"{path.name} is missing"
    if "size" in expected and size != int(expected["size"]):
        return f"{path.name} holds {size:,} bytes instead of {int(expected['size']):,}"
    if content and expected.get("crc32"):
        crc = 0
        try:
            with path.open("rb") as fh:
                while block := fh.read(1 << 22):
                    crc = zlib.crc32(block, crc)
        except OSError as exc:
            return f"{path.name} cannot be read ({exc.strerror})"
        if crc32_hex(crc) != expected["crc32"]:
            return f"{path.name} has other contents than were written (CRC-32 {crc32_hex(crc)}, not {expected['crc32']})"
    return None


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
    if manifest.get("format") != STORE_FORMAT or manifest.get("version") not in READABLE_VERSIONS:
        raise TcdnError(
            f"{path} is not a tcdn frame store of version {' or '.join(map(str, READABLE_VERSIONS))} "
            f"(format {manifest.get('format')!r}, version {manifest.get('version')!r}): ingest again"
        )
    return manifest


def describe(settings: dict[str, Any]) -> str:
    d = settings["decode"]
    every = f"fps {d['fps']}" if d["fps"] else f"stride {d['stride']}"
    return (
        f"{d['size'][0]}x{d['size'][1]} {d['resize']}, {every}, max-frames {d['max_frames']}, "
        f"{settings['storage']}"
        + (f" q{settings['quality']}" if settings["storage"] == "jpeg" else "")
    )


def read_journal(path: Path, settings: StoreSettings) -> list[dict[str, Any]] | None:
    """The finished videos an interrupted ingest appended to its journal (a line cut short by a
    kill is ignored); ``None`` for a journal of other settings or one that cannot be read."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError):
        return None
    if not lines:
        return None
    try:
        header = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("settings") != settings.to_dict():
        return None
    records = []
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # the last line, cut short by a kill
        if isinstance(rec, dict) and {"name", "key", "n_frames", "files"} <= rec.keys():
            records.append(rec)
    return records


def data_problem(
    record: dict[str, Any], data_dir: Path, settings: StoreSettings, content: bool
) -> str | None:
    """What is wrong with the data files of a video already in the store (``None``: nothing)."""
    for path, expected in expected_files(record, data_dir, settings).items():
        problem = file_problem(path, expected, content=content)
        if problem is not None:
            return problem
    return None
