"""Search a feature file for the frames and videos nearest a query.

A query is a row of the feature file, an image, or a video (the mean of its frames' features,
or one frame by its time). An image or video is embedded by the network the features came from
(the checkpoint and layer the feature file's ``meta`` records), at the same frame size. The
nearest rows are found by Euclidean distance, exactly: one scan of the rows, :data:`SCAN_CHUNK`
at a time in float64, so float16 or memory-mapped features of a million rows are never copied
whole (one query needs no index); a video's distance is that of its nearest row.

:func:`search_features` is ``tcdn search`` as a function: the query, the answer and its montage.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.collection import IMAGE_EXTENSIONS
from tcdn.data.decode import DecodeSettings, iter_positioned_frames
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet

log = logging.getLogger(__name__)
#: the command's messages, under the logger name they have always had
_command_log = logging.getLogger("tcdn")

#: rows whose distances are computed at a time
SCAN_CHUNK = 8192


@dataclass
class Query:
    """A query's feature vector, what it is, and (for an image or video) the frame to show."""

    vector: np.ndarray
    description: str
    picture: np.ndarray | None = None


@dataclass
class Hit:
    """One answer: a feature row (a frame, or a whole video) and its distance to the query."""

    row: int
    distance: float
    video: str
    frame: int
    time: float
    label: str


@dataclass
class Answer:
    """The nearest frames (rows) and the nearest videos (each by its nearest row)."""

    frames: list[Hit]
    videos: list[Hit]


def hit(fs: FeatureSet, row: int, distance: float) -> Hit:
    return Hit(
        int(row),
        float(distance),
        str(fs.video[row]),
        int(fs.frame[row]),
        float(fs.seconds[row]),
        str(fs.label[row]),
    )


def nearest(
    fs: FeatureSet, vector: np.ndarray, k: int = 10, *, exclude: int | None = None
) -> Answer:
    """The ``k`` rows of ``fs`` nearest ``vector`` and the ``k`` nearest videos; ``exclude``: a
    row left out (the query itself, for a row query)."""
    x = fs.features
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != x.shape[1]:
        raise TcdnError(
            f"the query has {q.shape[0]} dimensions but the features have {x.shape[1]}: embed "
            "it with the network and layer the features came from"
        )
    q64 = q.astype(np.float64)
    dist = np.empty(len(x))
    for s in range(0, len(x), SCAN_CHUNK):
        diff = np.asarray(x[s : s + SCAN_CHUNK], dtype=np.float64) - q64
        dist[s : s + SCAN_CHUNK] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    rows = np.argsort(dist, kind="stable")
    dist = dist[rows]
    if exclude is not None:
        keep = rows != exclude
        rows, dist = rows[keep], dist[keep]
    frames = [hit(fs, r, d) for r, d in zip(rows[:k].tolist(), dist[:k].tolist(), strict=True)]
    videos: list[Hit] = []
    seen: set[str] = set()
    for r, d in zip(rows.tolist(), dist.tolist(), strict=True):  # ascending: first = nearest
        name = str(fs.video[r])
        if name not in seen:
            seen.add(name)
            videos.append(hit(fs, r, d))
            if len(videos) == k:
                break
    return Answer(frames, videos)


# -- queries --------------------------------------------------------------------------------------
def row_query(fs: FeatureSet, row: int) -> Query:
    if not 0 <= row < len(fs):
        raise TcdnError(f"--row {row} is out of range: the feature file has {len(fs)} rows")
    what = f"row {row} ({fs.video[row]}, frame {fs.frame[row]})"
    return Query(fs.features[row], what)


def _embedder(meta: dict[str, Any], checkpoint: str | Path | None, device: str) -> Any:
    """``frames (N, H, W, 3) uint8 -> (N, D)`` by the network the features came from."""
    from tcdn.features.extract import extract_features
    from tcdn.training.checkpoint import load_checkpoint, model_from_checkpoint

    source = meta.get("source")
    if source not in ("trained", None) and checkpoint is None:
        raise TcdnError(
            f"the features come from the source {source!r}, which an image cannot be put "
            "through again: query with --row, or use features of a trained network"
        )
    path = checkpoint or meta.get("checkpoint")
    if not path:
        raise TcdnError(
            "the feature file names no checkpoint (its meta has none): give --checkpoint, the "
            "run the features came from, or query with --row"
        )
    ckpt = load_checkpoint(path)
    model, mean, config = model_from_checkpoint(ckpt)
    layer = meta.get("layer") or model.default_layer

    def embed(frames: np.ndarray) -> np.ndarray:
        return extract_features(model, frames, mean, layer=layer, device=device, progress=False)

    embed.size = config.image_size  # type: ignore[attr-defined]
    return embed


def media_query(
    path: str | Path,
    meta: dict[str, Any],
    *,
    at: float | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
) -> Query:
    """The query of an image, or of a video (the mean of its frames' features, or the frame
    nearest ``at`` seconds), embedded as the features of ``meta`` were."""
    path = Path(path)
    if not path.exists():
        raise TcdnError(f"the query {path} does not exist: give an image, a video or --row N")
    embed = _embedder(meta, checkpoint, device)
    size = int(embed.size)
    settings = DecodeSettings.make(size)
    if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
        if at is not None:
            raise TcdnError("--at applies to a video query, not to an image")
        from PIL import Image

        try:
            with Image.open(path) as img:
                arr = np.array(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        except OSError as exc:
            raise TcdnError(f"cannot read the query image {path}: {exc}") from exc
        return Query(embed(arr[None])[0], f"image {path}", arr)
    if at is not None:
        best: tuple[float, np.ndarray, int] | None = None
        for arr, index, seconds in iter_positioned_frames(path, settings):
            gap = abs(seconds - at) if np.isfinite(seconds) else float("inf")
            if best is None or gap < best[0]:
                best = (gap, arr, index)
            elif np.isfinite(seconds) and seconds > at:
                break
        assert best is not None  # iter_positioned_frames raises when there is no frame
        return Query(embed(best[1][None])[0], f"frame {best[2]} of {path} (at {at} s)", best[1])
    frames = np.stack([arr for arr, _, _ in iter_positioned_frames(path, settings)])
    feats = embed(frames)
    middle = frames[len(frames) // 2]
    return Query(feats.mean(axis=0), f"video {path} ({len(frames)} frames averaged)", middle)


# -- pictures of the answers ------------------------------------------------------------------------
def hit_frames(hits: list[Hit], meta: dict[str, Any]) -> list[np.ndarray | None]:
    """The frame of each hit, read from the collection the features came from (a frame store,
    or a folder of videos: only the videos named are decoded); ``None`` where unavailable."""
    from tcdn.data.store import is_store, open_store

    collection = meta.get("collection")
    size = int(meta.get("image_size") or 0)
    if not collection or not Path(collection).is_dir() or not size:
        log.warning("the features' collection is unknown or gone: the montage shows no frames")
        return [None] * len(hits)
    if is_store(collection):
        fs = open_store(collection)
        where = fs.locate(np.array([h.video for h in hits]), np.array([h.frame for h in hits]))
        return [None if w < 0 else np.asarray(fs.frames[int(w)]) for w in where.tolist()]
    settings = DecodeSettings.make(size)
    out: list[np.ndarray | None] = []
    for h in hits:
        frame: np.ndarray | None = None
        src = Path(collection) / h.video
        try:
            if h.frame < 0:  # a whole video: its middle frame
                frames = [arr for arr, _, _ in iter_positioned_frames(src, settings)]
                frame = frames[len(frames) // 2]
            else:
                for arr, index, _ in iter_positioned_frames(src, settings):
                    if index == h.frame:
                        frame = arr
                        break
        except TcdnError as exc:
            log.warning("%s", exc)
        out.append(frame)
    return out


@dataclass
class SearchResult:
    """What :func:`search_features` found: the query, the nearest frames and videos, and the
    feature set searched (``path``: its file)."""

    query: Query
    answer: Answer
    features: FeatureSet
    path: Path

    def table(self) -> str:
        """The answer as ``tcdn search`` prints it: the nearest frames, then the nearest videos."""

        def seconds(t: float) -> str:
            return "" if not math.isfinite(t) else f"{t:.2f}"

        fs = self.features
        lines = [
            f"query: {self.query.description}; {len(fs)} rows of {fs.meta.get('layer') or ''} "
            f"features in {self.path}",
            "",
            "nearest frames:",
            f"{'rank':>4}  {'distance':>10}  {'frame':>6}  {'time':>7}  video  (label)",
        ]
        for i, h in enumerate(self.answer.frames, 1):
            label = f"  ({h.label})" if h.label else ""
            lines.append(
                f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {seconds(h.time):>7}  {h.video}{label}"
            )
        lines += ["", "nearest videos (by their nearest frame):"]
        lines.append(f"{'rank':>4}  {'distance':>10}  {'frame':>6}  video  (label)")
        for i, h in enumerate(self.answer.videos, 1):
            label = f"  ({h.label})" if h.label else ""
            lines.append(f"{i:>4}  {h.distance:>10.4f}  {h.frame:>6}  {h.video}{label}")
        return "\n".join(lines)


def search_features(
    features: str | Path,
    query: str | Path | None = None,
    *,
    row: int | None = None,
    at: float | None = None,
    k: int = 10,
    checkpoint: str | Path | None = None,
    montage: str | Path | None = "search.png",
    device: str | None = None,
) -> SearchResult:
    """Find the frames and videos of a feature file nearest a query, and write their montage,
    as ``tcdn search`` does.

    Parameters
    ----------
    features
        The feature file (from ``tcdn features``).
    query
        An image, or a video (its frames' features averaged, or the frame at ``at`` seconds);
        leave it out to query with ``row`` of the feature file.
    row, at
        The row of the feature file to query with; the time of a video query's frame.
    k
        How many frames and videos.
    checkpoint
        The network that embeds an image or video (default: the one the feature file names).
    montage
        The PNG of the query and the nearest frames (checked before any work; an existing file
        is replaced only if tcdn wrote it); ``None``: none.
    device
        The torch device that embeds an image or video query (default ``auto``).

    Returns
    -------
    SearchResult
        The query and the answer; :meth:`SearchResult.table` prints it.
    """
    from tcdn.device import resolve_device
    from tcdn.report.montage import check_writable, save_montage

    if (query is None) == (row is None):
        raise TcdnError("give one query: an image or video file, or --row N of the feature file")
    if row is not None and at is not None:
        raise TcdnError("--at applies to a video query, not to --row")
    if row is not None and checkpoint is not None:
        raise TcdnError("--checkpoint embeds an image or video query; --row needs none: drop it")
    if montage is not None:
        check_writable(Path(montage))
    fs = FeatureSet.load(features)
    if row is not None:
        q = row_query(fs, row)
    else:
        assert query is not None
        q = media_query(
            Path(query),
            fs.meta,
            at=at,
            checkpoint=checkpoint,
            device=str(resolve_device(device or "auto")),
        )
    found = SearchResult(q, nearest(fs, q.vector, k, exclude=row), fs, Path(features))
    if montage is not None:
        pictures = hit_frames(found.answer.frames, fs.meta)
        if row is not None:
            pictures = [*hit_frames([hit(fs, row, 0.0)], fs.meta), *pictures]
        else:
            pictures = [q.picture, *pictures]
        captions = ["query"] + [
            f"{i}. {h.distance:.3f}\n{Path(h.video).name}\n{h.label}"
            for i, h in enumerate(found.answer.frames, 1)
        ]
        save_montage(pictures, captions, Path(montage))
        _command_log.info("wrote the montage %s", montage)
    return found
