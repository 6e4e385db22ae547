"""A feature set: features of any origin, one row per frame (or per video), joined to each row's
video, frame and label; and its file format, the ``.npz`` that carries features to discovery.

This module imports no torch: clustering given features never loads a network.
"""

from __future__ import annotations

import csv
import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.frameset import every_nth
from tcdn.errors import TcdnError
from tcdn.features.npzfile import npz_memmap, write_npz

FEATURES_FORMAT = "tcdn-features-1"
#: the feature sources computed from frames (``random_assignment`` needs no features)
FRAME_SOURCES = ("trained", "random_init", "raw_pixels")
#: the source of features given by the user (``tcdn discover --features``, :meth:`FeatureSet.from_arrays`)
GIVEN = "given"
#: the arrays every feature file holds (``meta``, a JSON text, is optional)
FEATURE_ARRAYS = ("features", "video", "frame", "label")
#: the ``frame`` of a row that stands for a whole video (see :func:`pool_by_video`)
WHOLE_VIDEO = -1
_KEPT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
_CHUNK = 16384  # rows read at a time where a whole float32/float64 copy could be large


def is_feature_file(path: str | Path) -> bool:
    """Whether ``path`` is a feature file tcdn wrote (a ``.npz`` whose ``meta`` names the format),
    which ``tcdn features --out`` may replace."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return False
    try:
        meta = json.loads(str(loaded["meta"])) if "meta" in loaded.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        meta = None
    finally:
        loaded.close()
    return isinstance(meta, dict) and str(meta.get("format", "")).startswith("tcdn-features")


#: how a numpy file begins: a .npy array, and a .npz archive (a zip file)
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def numpy_read_problem(path: Path, exc: BaseException, kind: str) -> str:
    """What a user needs to hear when numpy cannot read ``path`` (a ``kind`` of ``.npy`` or
    ``.npz``), in tcdn's words: numpy's own text suggests loading the file with pickle, which
    tcdn never does (``allow_pickle=False``: a pickle can run code)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(6)
    except OSError as err:
        return f"cannot open it ({err.strerror})"
    if "pickled" in str(exc) or "Python objects" in str(exc) or "Object arrays" in str(exc):
        if head.startswith(_NPY_MAGIC) or head.startswith(_ZIP_MAGIC):
            return (
                "it holds Python objects (an object array), which tcdn never loads (they could "
                "run code): save the features as numbers, e.g. numpy.save(path, "
                "features.astype(numpy.float32))"
            )
    if not head:
        return "the file is empty: write it again"
    if kind == ".npz" and not head.startswith(_ZIP_MAGIC):
        if head.startswith(_NPY_MAGIC):
            return "it is a single .npy array, not a feature set: give it with --features-npy"
        return (
            "it is not a numpy .npz archive (not a zip file): give a .npz written by "
            "`tcdn features` or FeatureSet.save"
        )
    if kind == ".npy" and not head.startswith(_NPY_MAGIC):
        return "it is not a numpy .npy array: write it with numpy.save"
    return (
        f"it is truncated or damaged ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
        "write it again"
    )


@dataclass
class FeatureSet:
    """Features of any origin, one row per frame (or per video), with the index that joins each row
    back to its video, frame and label.

    Attributes
    ----------
    features
        ``(N, D)`` float32 or float16 (kept as given: a million 4,096-d float16 rows take 8 GiB,
        and discovery reads them chunk by chunk; any other numbers become float32), finite.
    video
        ``(N,)`` str: the name of each row's video.
    frame
        ``(N,)`` int64: the row's frame index in its source video (among all its decoded
        frames, whatever stride or frame rate the frames were read with); :data:`WHOLE_VIDEO`
        (-1) for a row that pools a whole video.
    label
        ``(N,)`` str: the row's class, ``''`` when unlabelled. Only used to score a discovery.
    meta
        JSON-serialisable facts about the features: ``source``, ``layer``, ``checkpoint``, ...
    time
        ``(N,)`` float64: the row's time in seconds from its video's first frame; NaN when
        unknown (a folder of frame images, a whole video, a file written before tcdn recorded
        it). Optional in a feature file.

    Raises :class:`TcdnError` when the arrays do not fit together.
    """

    features: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    label: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    time: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            features = self.features
            if not (isinstance(features, np.ndarray) and features.dtype in _KEPT_DTYPES):
                features = np.asarray(features, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise TcdnError(f"the features must be numbers ({exc})") from None
        if features.ndim != 2:
            raise TcdnError(
                f"the features must be a 2-D (rows, dimensions) array, got shape {features.shape}"
            )
        n = len(features)
        columns = {}
        for name in ("video", "frame", "label"):
            arr = np.asarray(getattr(self, name))
            if arr.ndim != 1 or len(arr) != n:
                raise TcdnError(
                    f"'{name}' must hold one value per feature row ({n}), got shape {arr.shape}"
                )
            columns[name] = arr
        time = np.full(n, np.nan) if self.time is None else np.asarray(self.time)
        if time.ndim != 1 or len(time) != n:
            raise TcdnError(
                f"'time' must hold one value per feature row ({n}), got shape {time.shape}"
            )
        if n and time.dtype.kind not in "iuf":
            raise TcdnError(f"'time' must hold numbers (seconds), got {time.dtype} values")
        frame = columns["frame"]
        if n and frame.dtype.kind not in "iu":
            raise TcdnError(f"'frame' must hold whole numbers, got {frame.dtype} values")
        bad = _first_non_finite_row(features)
        if bad is not None:
            raise TcdnError(
                f"the features hold NaN or infinite values (first in row {bad}): clustering needs finite numbers"
            )
        self.features = features
        self.video = columns["video"].astype(str)
        self.frame = frame.astype(np.int64)
        self.label = columns["label"].astype(str)
        self.time = time.astype(np.float64)
        self.meta = dict(self.meta)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def videos(self) -> list[str]:
        """The distinct video names, in the order of their first row."""
        names, first = np.unique(self.video, return_index=True)
        return names[np.argsort(first)].tolist()

    @property
    def class_names(self) -> list[str]:
        """The distinct non-empty labels, sorted."""
        return sorted(set(self.label.tolist()) - {""})

    def label_codes(self) -> np.ndarray:
        """``(N,)`` class index of every row (in :attr:`class_names` order).

        Raises :class:`TcdnError` when some row has no label.
        """
        missing = self.label == ""
        if missing.any():
            videos = sorted(set(self.video[missing].tolist()))
            raise TcdnError(
                f"{int(missing.sum())} feature row(s) of {len(videos)} video(s) have no label "
                f"(e.g. {videos[0]}): scoring a discovery needs a label for every row"
            )
        lookup = {name: i for i, name in enumerate(self.class_names)}
        return np.array([lookup[lab] for lab in self.label.tolist()], dtype=np.int64)

    def rows(self, stride: int = 1, max_per_video: int | None = None) -> np.ndarray:
        """Rows to evaluate: every ``stride``-th row of each video (counted in the file's order),
        at most ``max_per_video``; in the file's order."""
        _, inverse = np.unique(self.video, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(inverse))[:-1]])
        rank = np.empty(len(self), dtype=np.int64)
        rank[order] = np.arange(len(self)) - starts[inverse[order]]
        return every_nth(rank, stride, max_per_video)

    def subset(self, rows: np.ndarray) -> FeatureSet:
        """A new feature set holding only ``rows`` (indices or a boolean mask), same meta. Every
        row in order shares the features (no copy)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        everything = len(rows) == len(self) and bool((rows == np.arange(len(self))).all())
        return replace(
            self,
            features=self.features if everything else self.features[rows],
            video=self.video[rows],
            frame=self.frame[rows],
            label=self.label[rows],
            time=self.seconds[rows],
        )

    @property
    def seconds(self) -> np.ndarray:
        """:attr:`time`, never ``None`` (``__post_init__`` fills it)."""
        assert self.time is not None
        return self.time

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` (arrays :data:`FEATURE_ARRAYS` and ``meta`` as JSON text), atomically:
        to a temporary name in the same folder, then renamed. Returns the path."""
        from tcdn.outputs import atomic_writer, check_output_file

        # a file there must be a feature file tcdn wrote; never a symbolic link
        path = check_output_file(path, "path", ours=is_feature_file)
        try:
            meta = json.dumps({**self.meta, "format": FEATURES_FORMAT})
        except (TypeError, ValueError) as exc:
            raise TcdnError(f"the feature set's meta is not JSON-serialisable: {exc}") from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TcdnError(f"cannot write feature file {path}: {exc}") from exc
        # a file object: np.savez would append '.npz' to a name
        with atomic_writer(path, "wb", ours=is_feature_file) as fh:
            write_npz(  # fixed dates: the same features, the same bytes
                fh,
                features=self.features,
                video=self.video,
                frame=self.frame,
                label=self.label,
                time=self.seconds,
                meta=np.array(meta),
            )
        return path

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> FeatureSet:
        """Read a feature file written by :meth:`save` (or by ``numpy.savez`` with the arrays
        ``features``, ``video``, ``frame``, ``label`` and, optionally, a JSON ``meta`` text).

        ``mmap=True``: the features are memory-mapped where they lie in the file (read as rows
        are used; the file must be uncompressed, as :meth:`save` writes it), and not scanned
        for NaN on loading: for search, which reads a few rows of a large file."""
        path = Path(path)
        if not path.is_file():
            raise TcdnError(
                f"feature file {path} does not exist: write one with `tcdn features` or FeatureSet.save"
            )
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise TcdnError(
                    f"{path} is a single array, not a feature set: give it with --features-npy "
                    "and its video,frame[,label] CSV with --index"
                )
            with loaded as npz:
                missing = [name for name in FEATURE_ARRAYS if name not in npz.files]
                if missing:
                    raise TcdnError(
                        f"feature file {path} lacks the array(s) {', '.join(missing)} "
                        f"(it holds: {', '.join(npz.files) or 'nothing'}); a feature file holds "
                        f"{', '.join(FEATURE_ARRAYS)}"
                    )
                arrays = {name: npz[name] for name in FEATURE_ARRAYS if name != "features"}
                if not mmap:
                    arrays["features"] = npz["features"]
                if "time" in npz.files:  # optional: files written before tcdn recorded it lack it
                    arrays["time"] = npz["time"]
                meta_text = str(npz["meta"].item()) if "meta" in npz.files else "{}"
        except TcdnError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise TcdnError(
                f"cannot read feature file {path}: {numpy_read_problem(path, exc, '.npz')}"
            ) from exc
        try:
            meta = json.loads(meta_text)
        except ValueError as exc:
            raise TcdnError(f"feature file {path}: its 'meta' is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise TcdnError(f"feature file {path}: its 'meta' must be a JSON object")
        fmt = meta.get("format", FEATURES_FORMAT)
        if fmt != FEATURES_FORMAT:
            raise TcdnError(
                f"feature file {path} has format {fmt!r}; this tcdn reads {FEATURES_FORMAT!r}"
            )
        meta["path"] = str(path)  # where it was read from, not where it was first written
        try:
            if mmap:
                features = npz_memmap(path, "features")
                if features.ndim != 2 or features.dtype not in _KEPT_DTYPES:
                    return cls(**arrays, features=np.asarray(features), meta=meta)
                fs = cls(**arrays, features=np.empty((len(features), 0), np.float32), meta=meta)
                fs.features = features  # rows checked against the index; NaN not scanned
                return fs
            return cls(**arrays, meta=meta)
        except TcdnError as exc:
            raise TcdnError(f"feature file {path}: {exc}") from None

    @classmethod
    def from_arrays(cls, features_npy: str | Path, index_csv: str | Path) -> FeatureSet:
        """Features of any origin: an ``(N, D)`` ``.npy`` array and a CSV of ``N`` rows with the
        columns ``video,frame`` and optionally ``label`` (row ``i`` describes feature row ``i``)."""
        npy, index = Path(features_npy), Path(index_csv)
        if not npy.is_file():
            raise TcdnError(f"feature array {npy} does not exist (option --features-npy)")
        if not index.is_file():
            raise TcdnError(f"index file {index} does not exist (option --index)")
        try:
            # memory-mapped: a large (float16) array is read chunk by chunk where it is used
            loaded = np.load(npy, allow_pickle=False, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            raise TcdnError(
                f"cannot read feature array {npy}: {numpy_read_problem(npy, exc, '.npy')}"
            ) from exc
        if not isinstance(loaded, np.ndarray):
            loaded.close()
            raise TcdnError(f"{npy} is a .npz archive, not one array: give it with --features")
        if loaded.ndim != 2:
            raise TcdnError(
                f"feature array {npy} must be 2-D (rows, dimensions), got shape {loaded.shape}"
            )
        video, frame, label = _read_index_csv(index)
        if len(video) != len(loaded):
            raise TcdnError(
                f"index file {index} has {len(video)} row(s) but feature array {npy} has "
                f"{len(loaded)}: they must describe the same rows, in the same order"
            )
        meta = {"source": GIVEN, "features_npy": str(npy), "index_csv": str(index)}
        try:
            return cls(
                loaded, np.array(video), np.array(frame, dtype=np.int64), np.array(label), meta
            )
        except TcdnError as exc:
            raise TcdnError(f"feature array {npy}: {exc}") from None


def _read_index_csv(path: Path) -> tuple[list[str], list[int], list[str]]:
    """The ``video``, ``frame`` and (``''`` if absent) ``label`` columns of an index CSV."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a spreadsheet's BOM
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TcdnError(f"cannot read index file {path}: {exc}") from exc
    if "video" not in header or "frame" not in header:
        raise TcdnError(
            f"index file {path} must have the columns 'video' and 'frame', and optionally 'label' "
            f"(found: {', '.join(header) or 'no header'})"
        )
    video, frame, label = [], [], []
    for line_no, row in enumerate(rows, start=2):
        name = (row["video"] or "").strip()
        if not name:
            raise TcdnError(f"index file {path}, line {line_no}: empty 'video' field")
        try:
            frame.append(int((row["frame"] or "").strip()))
        except ValueError:
            raise TcdnError(
                f"index file {path}, line {line_no}: 'frame' must be a whole number, got {row['frame']!r}"
            ) from None
        video.append(name)
        label.append((row.get("label") or "").strip())
    if not rows:
        raise TcdnError(f"index file {path} has no rows: it needs one line per feature row")
    return video, frame, label


def pool_by_video(fs: FeatureSet) -> FeatureSet:
    """One row per video, the mean of its rows' features, in the order of each video's first row.

    The pooled row's ``frame`` is :data:`WHOLE_VIDEO` and its label the video's label; ``meta``
    gains ``level: "video"``. Raises :class:`TcdnError` if a video's rows carry different labels.
    """
    names, first, inverse = np.unique(fs.video, return_index=True, return_inverse=True)
    order = np.argsort(first)  # group g of np.unique -> position rank[g] in first-row order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse.reshape(-1)]
    n_videos = len(names)
    means, _ = group_means(fs.features, group, n_videos)
    video_label = fs.label[first[order]]
    mixed = fs.label != video_label[group]
    if mixed.any():
        v = int(group[np.flatnonzero(mixed)[0]])
        labels = sorted(set(fs.label[group == v].tolist()))
        raise TcdnError(
            f"video {names[order][v]} has rows with different labels ({', '.join(map(repr, labels))}): "
            "pooling by video needs one label per video; use --level frame"
        )
    return FeatureSet(
        features=means.astype(np.float32),
        video=names[order],
        frame=np.full(n_videos, WHOLE_VIDEO, dtype=np.int64),
        label=video_label,
        meta={**fs.meta, "level": "video"},
    )


def group_means(
    features: np.ndarray, group: np.ndarray, n_groups: int, *, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_groups, D)`` float64 mean of the rows of each group (zeros for an empty one) and
    ``(n_groups,)`` row counts; ``group[i]`` in ``[0, n_groups)`` is row ``i``'s group. Summed
    ``chunk`` rows (default ``_CHUNK``) at a time in float64, so float16 or memory-mapped
    features are never copied whole."""
    from scipy import sparse

    chunk = chunk or _CHUNK
    group = np.asarray(group, dtype=np.int64)
    sums = np.zeros((n_groups, features.shape[1]), dtype=np.float64)
    for s in range(0, len(group), chunk):
        g = group[s : s + chunk]
        onehot = sparse.csr_matrix(
            (np.ones(len(g)), (g, np.arange(len(g)))), shape=(n_groups, len(g))
        )
        sums += onehot @ np.asarray(features[s : s + chunk], dtype=np.float64)
    counts = np.bincount(group, minlength=n_groups)
    return sums / np.maximum(counts, 1)[:, None], counts


def _first_non_finite_row(features: np.ndarray) -> int | None:
    """The first row holding NaN or an infinity, read ``_CHUNK`` rows at a time; ``None``."""
    for s in range(0, len(features), _CHUNK):
        finite = np.isfinite(features[s : s + _CHUNK]).all(axis=1)
        if not finite.all():
            return s + int(np.flatnonzero(~finite)[0])
    return None
