"""The affinity graphs spectral clustering cuts: distances, the nearest-neighbour search, and the
dense, kNN and video Gaussian affinities.

Which graph: with each row's video known (``tcdn discover`` always knows it), the **video graph**
(:func:`video_affinity`); without (plain arrays), the exact dense affinity up to
``DENSE_AUTO_MAX`` rows and a kNN graph beyond (:func:`resolve_affinity`).

Why a video graph. Features that keep a video's frames tightly together (what temporal coherence
trains for) make a frame's nearest neighbours the frames of its own video: the kNN graph then
falls into one piece per video, its top eigenvectors are piece indicators, and the cut groups
videos arbitrarily (1M frames at K = 101: CE 4.24 bits against K-means' 0.01). On the exact
dense affinity, the normalised cut instead cuts off a few odd videos (real features, K = 2).
Both miss what defines a class: the similarity *between* videos. The video graph is built from
that only: its nodes are pieces of consecutive rows of one video, each linked to the nearest
piece of each of its ``VIDEO_NEIGHBORS`` nearest *other* videos and to its
``TEMPORAL_NEIGHBORS`` neighbours before and after in its own video; the local scale of a piece
is its distance to its ``n_neighbors``-th nearest other video (the farthest it links to, when
that is fewer), so no bridging edge gets a weight near zero. Every video has the same number of links out, so an odd video is no cheaper to cut
off than any other.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from tcdn.errors import TcdnError
from tcdn.features.featureset import group_means

log = logging.getLogger(__name__)

DENSE_SPECTRAL_MAX = 12000  # frames; above this the dense N x N affinity is never built
DENSE_AUTO_MAX = 5000  # frames; without videos, the exact dense affinity is used up to here
EXACT_KNN_MAX = 10000  # frames; exact neighbour search up to here, HNSW beyond
# Neighbours per frame in the sparse affinity. 10 (scikit-learn's default) is too few for
# 4,096-d features: on benchmarks/bench_cluster.py's 5k-frame set (101 clusters of ~50 frames)
# the 10-NN graph splits clusters into pieces, leaves no eigengap at K and scored 0.18 bits against
# the dense affinity's 0.02; 20 and 30 neighbours both scored 0.00 with a clear gap at K.
GRAPH_NEIGHBORS = 20
#: the video graph: other videos each piece links to, and pieces on each side in its own video.
#: Fewer links to other videos cut better, as long as a class has more videos than that: CE at
#: 2, 3, 5, 10 (20, 40) links: weizmann4 `best` features (K = 4, 9 videos a class) 0.278, 0.320,
#: 0.560, 0.998 (1.223, 1.352), K-means 0.973; its raw pixels 1.462, 1.467, 1.488, 1.624,
#: K-means 1.402; bench_cluster's 300k video-like rows (K = 101, ~6 videos a class) 0.000,
#: 0.002, 0.028, 0.174, K-means 0.015. 2 leaves the graph in more pieces (91 at 300k, 75 at 3).
#: Without temporal links (0 instead of 2), weizmann4 `best` scored 0.640-0.752.
VIDEO_NEIGHBORS = 3
TEMPORAL_NEIGHBORS = 2
TEMPORAL_FLOOR = 1e-6  # the least weight of a link between pieces of one video
#: the video graph's local scales: none below this fraction of their median (0: no floor). A
#: tight group of pieces (near-duplicate shots of several videos) has tiny scales, which make
#: its links out vanish and let spectral clustering spend a cluster on it.
SCALE_FLOOR = 0.0
#: the video graph's nodes: at most this many pieces, and at most ``PIECE_PAIR_BUDGET / D``
#: squared (the exhaustive piece-to-piece search costs pieces² x D multiply-adds)
MAX_PIECES = 20000
PIECE_PAIR_BUDGET = 2e11
AFFINITIES = ("auto", "dense", "knn", "video")


@dataclass(frozen=True)
class Graph:
    """The affinity spectral clustering decomposes.

    ``matrix`` is symmetric with a zero diagonal, over the rows (``node_of_row`` is ``None``) or
    over pieces of rows (``node_of_row[i]``: the node of row ``i``; the video graph)."""

    matrix: np.ndarray | sparse.csr_matrix
    kind: str  # "dense", "knn" or "video"
    node_of_row: np.ndarray | None = None


def resolve_affinity(affinity: str, n: int, videos: np.ndarray | None = None) -> str:
    """The affinity built for ``n`` rows: ``"video"`` when ``videos`` are given (and there are at
    least two), else ``"dense"`` up to ``DENSE_AUTO_MAX`` rows and ``"knn"`` beyond."""
    if affinity not in AFFINITIES:
        raise TcdnError(f"unknown affinity {affinity!r}; choose {', '.join(AFFINITIES)}")
    if affinity == "video" and videos is None:
        raise TcdnError("the video affinity needs the video of every row")
    if affinity == "auto":
        if videos is not None and len(np.unique(videos)) >= 2:
            return "video"
        return "dense" if n <= DENSE_AUTO_MAX else "knn"
    return affinity


def squared_distances(features: np.ndarray) -> np.ndarray:
    """``(N, N)`` squared Euclidean distances between the rows, in float64 (never negative)."""
    x = features.astype(np.float64)
    sq = (x * x).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)


def median_sigma(features: np.ndarray, max_samples: int = 2000, random_state: int = 0) -> float:
    """Kernel width that needs no labels: the median Euclidean distance between sampled frame pairs."""
    rng = np.random.default_rng(random_state)
    idx = rng.choice(len(features), size=min(max_samples, len(features)), replace=False)
    x = features[idx]
    d2 = squared_distances(x)
    med = float(np.sqrt(np.median(d2[np.triu_indices(len(x), 1)]))) if len(x) > 1 else 1.0
    return med if med > 0 else 1.0


def global_width(features: np.ndarray, sigma: float | str) -> float:
    """The kernel width ``sigma`` names: a number, or ``"median"`` (:func:`median_sigma`)."""
    width = median_sigma(features) if sigma == "median" else float(sigma)
    if not width > 0:
        raise TcdnError(f"the kernel width sigma must be > 0, 'median' or 'local', got {sigma!r}")
    return width


def knn_graph(
    features: np.ndarray, n_neighbors: int = 10, *, exact: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest other rows of every row: ``(N, k)`` Euclidean distances and indices.

    faiss does the search: exact brute force (``IndexFlatL2``) up to ``EXACT_KNN_MAX`` rows, an
    HNSW graph (M = 16, efConstruction = 40, efSearch = max(64, 2k)) beyond, unless ``exact`` says
    otherwise. A missing neighbour (HNSW may find fewer than k) has index -1 and distance inf.
    """
    import faiss  # a field library for exactly this; imported here to keep start-up light

    x = np.ascontiguousarray(features, dtype=np.float32)
    n, d = x.shape
    if n < 2:
        raise TcdnError(f"a neighbour graph needs at least 2 frames, got {n}")
    k = min(n_neighbors, n - 1)
    if exact is None:
        exact = n <= EXACT_KNN_MAX
    index: Any
    if exact:
        index = faiss.IndexFlatL2(d)
    else:
        index = faiss.IndexHNSWFlat(d, 16)
        index.hnsw.efConstruction = 40
    index.add(x)
    if not exact:
        index.hnsw.efSearch = max(64, 2 * (k + 1))
    d2, idx = index.search(x, k + 1)
    # Drop each row itself (usually, but with duplicates not always, the first hit).
    rows = np.arange(n)[:, None]
    is_self = idx == rows
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(idx, order, axis=1)
    d2 = np.take_along_axis(d2, order, axis=1)
    missing = idx < 0
    dist = np.where(missing, np.inf, np.sqrt(np.maximum(d2, 0)))
    return dist.astype(np.float64), idx


def dense_affinity(features: np.ndarray, sigma: float | str, n_neighbors: int) -> np.ndarray:
    """The exact ``(N, N)`` Gaussian affinity (local scaling or a global width), zero diagonal."""
    n = len(features)
    d2 = squared_distances(features)
    if sigma == "local":
        nn_k = min(n_neighbors, n - 1)
        scale = np.sqrt(np.partition(d2, nn_k, axis=1)[:, nn_k])  # column 0 is the point itself
        scale = np.maximum(scale, max(float(scale.max()), 1.0) * 1e-12)
        a = np.exp(-d2 / (scale[:, None] * scale[None, :]))
    else:
        width = global_width(features, sigma)
        a = np.exp(-d2 / (2 * width * width))
    np.fill_diagonal(a, 0.0)
    return a


def _local_scale(dist: np.ndarray, col: int) -> np.ndarray:
    """Each node's distance in column ``col`` of its sorted neighbour distances; a missing one
    (inf) takes the median of the others, and none is 0."""
    scale = dist[:, min(col, dist.shape[1] - 1)]
    finite = np.isfinite(scale)
    fallback = float(np.median(scale[finite])) if finite.any() else 1.0
    scale = np.where(finite, scale, fallback)
    return np.maximum(scale, max(float(scale.max()), 1.0) * 1e-12)


def _gaussian_edges(
    n: int,
    dist: np.ndarray,
    idx: np.ndarray,
    scale: np.ndarray | float,
    floor: float = 0.0,
) -> sparse.csr_matrix:
    """The symmetric sparse affinity of the edges ``i -> idx[i, j]`` at distance ``dist[i, j]``
    (``idx < 0`` or an infinite distance: no edge): ``exp(-d² / (s_i s_j))`` with ``scale`` an
    array of local scales, or ``exp(-d² / (2 sigma²))`` with ``scale`` the global width; no
    weight below ``floor``."""
    safe_idx = np.where(idx < 0, 0, idx)
    if isinstance(scale, np.ndarray):
        w = np.exp(-(dist**2) / (scale[:, None] * scale[safe_idx]))
    else:
        w = np.exp(-(dist**2) / (2 * scale * scale))
    w = np.maximum(w, floor)
    keep = (idx >= 0) & np.isfinite(dist)
    rows = np.repeat(np.arange(n), idx.shape[1])[keep.ravel()]
    a = sparse.csr_matrix((w[keep], (rows, idx[keep])), shape=(n, n))
    return a.maximum(a.T).tocsr()  # symmetric: i ~ j when either is among the other's neighbours


def knn_affinity(
    features: np.ndarray, sigma: float | str, n_neighbors: int, graph_neighbors: int
) -> sparse.csr_matrix:
    """The Gaussian affinity of each row's ``max(graph_neighbors, n_neighbors)`` nearest rows
    (:func:`knn_graph`), symmetrised; the local scale is the ``n_neighbors``-th distance."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    dist, idx = knn_graph(x, max(graph_neighbors, n_neighbors))
    scale: np.ndarray | float
    if sigma == "local":
        scale = _local_scale(dist, n_neighbors - 1)
    else:
        scale = global_width(x, sigma)
    return _gaussian_edges(len(x), dist, idx, scale)


# -- the video graph -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pieces:
    """Rows cut into pieces of consecutive rows of one video (:func:`video_pieces`). The pieces
    of a video are numbered consecutively, in row order, and the videos one after another."""

    of_row: np.ndarray  # (N,) int64: the piece of each row
    video: np.ndarray  # (P,) int64: the video (a code 0..V-1) of each piece
    length: int  # at most this many rows per piece


def video_pieces(videos: np.ndarray, max_pieces: int) -> Pieces:
    """Cut the rows of each video (in the order given: a FeatureSet's rows of a video are in
    frame order) into runs of at most ``length`` rows, nearly equal within a video, with
    ``length`` the smallest that makes at most ``max_pieces`` pieces (one piece per video if
    even that is more)."""
    _, code = np.unique(np.asarray(videos), return_inverse=True)
    code = code.astype(np.int64).ravel()
    lens = np.bincount(code)
    length = max(1, math.ceil(len(code) / max_pieces))
    while length < lens.max() and int(np.ceil(lens / length).sum()) > max_pieces:
        length = max(length + 1, int(length * 1.1))
    length = min(length, int(lens.max()))
    per_video = np.ceil(lens / length).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(per_video)])
    order = np.argsort(code, kind="stable")
    starts = np.concatenate([[0], np.cumsum(lens)])
    rank = np.empty(len(code), dtype=np.int64)
    rank[order] = np.arange(len(code)) - starts[code[order]]
    of_row = offset[code] + rank * per_video[code] // lens[code]
    return Pieces(of_row, np.repeat(np.arange(len(lens)), per_video), length)


def nearest_other_videos(
    means: np.ndarray, piece_video: np.ndarray, k: int, block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """For every piece, the nearest piece of each of its ``k`` nearest other videos (a video's
    distance: that of its nearest piece), exhaustively: ``(P, k)`` distances (ascending) and
    piece indices. ``piece_video`` must be sorted (a video's pieces consecutive)."""
    x = np.ascontiguousarray(means, dtype=np.float32)
    p = len(x)
    starts = np.flatnonzero(np.r_[True, piece_video[1:] != piece_video[:-1]])
    n_videos = len(starts)
    k = min(k, n_videos - 1)
    sq = (x * x).sum(1)
    columns = np.arange(p)
    dist = np.empty((p, k))
    idx = np.empty((p, k), dtype=np.int64)
    for a in range(0, p, block):
        b = min(p, a + block)
        d2 = np.maximum(sq[a:b, None] + sq[None, :] - 2 * (x[a:b] @ x.T), 0)
        per_video = np.minimum.reduceat(d2, starts, axis=1)  # (rows, V): nearest piece's d²
        own = piece_video[a:b]
        per_video[np.arange(b - a), own] = np.inf
        near = np.argpartition(per_video, k - 1, axis=1)[:, :k]
        near_d2 = np.take_along_axis(per_video, near, axis=1)
        order = np.argsort(near_d2, axis=1, kind="stable")
        near = np.take_along_axis(near, order, axis=1)
        # the first piece of each video that reaches its video's minimum
        first = np.where(d2 == per_video[:, piece_video], columns, p)
        first = np.minimum.reduceat(first, starts, axis=1)
        idx[a:b] = np.take_along_axis(first, near, axis=1)
        dist[a:b] = np.sqrt(np.take_along_axis(near_d2, order, axis=1))
    return dist, idx


def video_affinity(
    features: np.ndarray,
    videos: np.ndarray,
    sigma: float | str = "local",
    n_neighbors: int = 7,
    *,
    video_neighbors: int = VIDEO_NEIGHBORS,
    temporal_neighbors: int = TEMPORAL_NEIGHBORS,
    max_pieces: int = MAX_PIECES,
) -> Graph:
    """The video graph of the module's docstring over ``features`` (rows) of ``videos``.

    Nodes are :func:`video_pieces` (at most ``max_pieces``, and at most
    ``sqrt(PIECE_PAIR_BUDGET / D)``), each the mean of its rows. Edges: the nearest piece of
    each of the ``video_neighbors`` (at most half the others) nearest other videos
    (:func:`nearest_other_videos`; when
    even one piece per video is too many, the pieces are the videos and faiss's
    :func:`knn_graph` finds them), and the ``temporal_neighbors`` pieces on each side in the
    same video. Weights: ``exp(-d² / (s_p s_q))``, ``s_p`` the distance of piece ``p`` to its
    ``min(n_neighbors, video_neighbors)``-th nearest other video (``sigma="local"``), or a
    global width.
    """
    videos = np.asarray(videos)
    if len(videos) != len(features):
        raise TcdnError(f"{len(videos)} video ids for {len(features)} rows")
    cap = max(2, min(max_pieces, int(math.sqrt(PIECE_PAIR_BUDGET / max(1, features.shape[1])))))
    pieces = video_pieces(videos, cap)
    n_pieces = len(pieces.video)
    means = group_means(features, pieces.of_row, n_pieces)[0].astype(np.float32)
    # links to at most half the other videos: with a handful of videos (4, 2 a class), links to
    # all of them would tie every video to the other class as strongly as to its own
    n_videos = int(pieces.video.max()) + 1
    links = max(1, min(video_neighbors, (n_videos - 1) // 2))
    if n_pieces <= cap:
        dist, idx = nearest_other_videos(means, pieces.video, links)
    else:  # one piece per video, and more videos than an exhaustive search affords
        dist, idx = knn_graph(means, links)
    scale: np.ndarray | float
    if sigma == "local":
        scale = _local_scale(dist, n_neighbors - 1)
        scale = np.maximum(scale, SCALE_FLOOR * float(np.median(scale)))
    else:
        scale = global_width(means, sigma)
    t_dist, t_idx = _temporal_edges(means, pieces.video, temporal_neighbors)
    a = _gaussian_edges(n_pieces, dist, idx, scale)
    # a video's own links never vanish: when its frames are farther apart than other videos
    # are from it, they would underflow to 0 and cut the video into pieces of the graph
    a = a.maximum(_gaussian_edges(n_pieces, t_dist, t_idx, scale, TEMPORAL_FLOOR)).tocsr()
    log.info(
        "video graph: %d rows of %d videos in %d pieces of at most %d rows, %d edges",
        len(videos),
        n_videos,
        n_pieces,
        pieces.length,
        a.nnz // 2,
    )
    return Graph(a, "video", pieces.of_row)


def _temporal_edges(
    means: np.ndarray, piece_video: np.ndarray, t: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(P, 2t)`` distances and indices of the ``t`` pieces before and after each piece in its
    own video (index -1 where there is none)."""
    p = len(means)
    dist = np.full((p, 2 * t), np.inf)
    idx = np.full((p, 2 * t), -1, dtype=np.int64)
    here = np.arange(p)
    for j, step in enumerate([s for s in range(1, t + 1)] + [-s for s in range(1, t + 1)]):
        other = here + step
        ok = (other >= 0) & (other < p)
        ok[ok] &= piece_video[other[ok]] == piece_video[here[ok]]
        diff = means[here[ok]] - means[other[ok]]
        dist[ok, j] = np.sqrt((diff.astype(np.float64) ** 2).sum(1))
        idx[ok, j] = other[ok]
    return dist, idx
