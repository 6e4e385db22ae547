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
    return ranked_answer(fs, rows, dist, k)


def ranked_answer(fs: FeatureSet, rows: np.ndarray, dist: np.ndarray, k: int) -> Answer:
    """The answer of rows already ranked by ``dist`` (ascending): the first ``k`` rows, and the
    first ``k`` videos, each by its nearest row."""
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
    l2 = meta.get("norm", "none") == "l2"  # the query is read as the features were

    def embed(frames: np.ndarray) -> np.ndarray:
        return extract_features(
            model, frames, mean, layer=layer, device=device, progress=False, l2=l2
        )

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
