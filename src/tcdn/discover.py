"""Discovering actions and scenes: cluster frame features, score the clusters (SPEC §5).

Scores are plain functions in the style of :mod:`sklearn.metrics.cluster`. The main one is the
paper's conditional entropy ``H(X | Y)`` of the true class ``X`` given the cluster ``Y``, in bits:
0 when every cluster holds one class, ``log2(#classes)`` for a random assignment of balanced classes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.linalg import eigsh
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, homogeneity_score, normalized_mutual_info_score

from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

METHODS = ("kmeans", "spectral")
DENSE_SPECTRAL_MAX = 12000  # frames; above this the dense N x N affinity is never built
DENSE_AUTO_MAX = 5000  # frames; spectral clustering uses the exact dense affinity up to here
EXACT_KNN_MAX = 10000  # frames; exact neighbour search up to here, HNSW beyond
# Neighbours per frame in the sparse affinity. 10 (scikit-learn's default) is too few for
# 4,096-d features: on benchmarks/bench_cluster.py's 5k-frame set (101 clusters of ~50 frames)
# the 10-NN graph splits clusters into pieces, leaves no eigengap at K and scored 0.18 bits against
# the dense affinity's 0.02; 20 and 30 neighbours both scored 0.00 with a clear gap at K.
GRAPH_NEIGHBORS = 20


def _as_labels(labels: object, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def contingency(labels_true: object, labels_pred: object) -> np.ndarray:
    """``(#classes, #clusters)`` counts of frames of each class in each cluster."""
    t = _as_labels(labels_true, "labels_true")
    p = _as_labels(labels_pred, "labels_pred")
    if t.shape != p.shape:
        raise ValueError(f"labels_true and labels_pred differ in length: {len(t)} vs {len(p)}")
    if len(t) == 0:
        raise ValueError("labels are empty: there is nothing to score")
    _, ti = np.unique(t, return_inverse=True)
    _, pi = np.unique(p, return_inverse=True)
    c = np.zeros((ti.max() + 1, pi.max() + 1), dtype=np.int64)
    np.add.at(c, (ti, pi), 1)
    return c


def conditional_entropy(labels_true: object, labels_pred: object, base: float = 2) -> float:
    """Conditional entropy ``H(X | Y)`` of the true classes ``X`` given the clusters ``Y``.

    ``H(X|Y) = sum_y p(y) sum_x p(x|y) log(1 / p(x|y))``, in units of ``log(base)`` (bits by
    default). Lower is better: 0 means every cluster is pure. It is invariant to renaming
    classes or clusters. Note that it rewards many small clusters; compare at equal ``K``.

    Parameters
    ----------
    labels_true
        ``(N,)`` class of each sample (any hashable values).
    labels_pred
        ``(N,)`` cluster of each sample.
    base
        Logarithm base (2: bits, e: nats).
    """
    if not (base > 0 and base != 1 and np.isfinite(base)):
        raise ValueError(f"base must be positive and not 1, got {base}")
    c = contingency(labels_true, labels_pred).astype(np.float64)
    n = c.sum()
    cluster_size = c.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_x_given_y = np.where(c > 0, c / cluster_size, 1.0)
        h = -(c / n * np.log(p_x_given_y)).sum()
    return float(h / np.log(base)) + 0.0  # + 0.0 turns -0.0 into 0.0


def purity(labels_true: object, labels_pred: object) -> float:
    """Share of samples that belong to the majority class of their cluster (1 is best).

    Like conditional entropy it rewards many small clusters; compare at equal ``K``.
    """
    c = contingency(labels_true, labels_pred)
    return float(c.max(axis=0).sum() / c.sum())


def clustering_accuracy(labels_true: object, labels_pred: object) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes (Hungarian algorithm).

    Clusters left without a class (``K > #classes``) count as wrong.
    """
    c = contingency(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(-c)
    return float(c[rows, cols].sum() / c.sum())


def cluster_scores(labels_true: object, labels_pred: object) -> dict[str, float]:
    """Every score of one clustering: ``ce`` (bits, lower is better), and ``nmi``, ``ari``,
    ``homogeneity``, ``purity``, ``accuracy`` (higher is better)."""
    t = _as_labels(labels_true, "labels_true")
    p = _as_labels(labels_pred, "labels_pred")
    return {
        "ce": conditional_entropy(t, p),
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
        "homogeneity": float(homogeneity_score(t, p)),
        "purity": purity(t, p),
        "accuracy": clustering_accuracy(t, p),
    }


SCORES = ("ce", "nmi", "ari", "homogeneity", "purity", "accuracy")


# -- clustering ----------------------------------------------------------------------------------
def kmeans(features: np.ndarray, k: int, seed: int, n_init: int = 1) -> np.ndarray:
    """Seeded K-means (k-means++ init; the best of ``n_init`` runs) -> ``(N,)`` cluster labels."""
    return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(features)


def _squared_distances(features: np.ndarray) -> np.ndarray:
    """``(N, N)`` squared Euclidean distances between the rows, in float64 (never negative)."""
    x = features.astype(np.float64)
    sq = (x * x).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)


def median_sigma(features: np.ndarray, max_samples: int = 2000, seed: int = 0) -> float:
    """Kernel width that needs no labels: the median Euclidean distance between sampled frame pairs."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(features), size=min(max_samples, len(features)), replace=False)
    x = features[idx]
    d2 = _squared_distances(x)
    med = float(np.sqrt(np.median(d2[np.triu_indices(len(x), 1)]))) if len(x) > 1 else 1.0
    return med if med > 0 else 1.0


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


def _embed(affinity: np.ndarray | sparse.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` eigenpairs of ``D^-1/2 A D^-1/2`` (eigenvalues descending), rows normalised."""
    n = affinity.shape[0]
    deg = np.asarray(affinity.sum(axis=1)).ravel()
    inv = 1.0 / np.sqrt(np.maximum(deg, 1e-300))
    if sparse.issparse(affinity):
        scale = sparse.diags(inv)
        lap = (scale @ affinity @ scale).tocsr()
    else:
        lap = affinity * inv[:, None] * inv[None, :]
    if k >= n - 1:
        dense_lap = lap.toarray() if sparse.issparse(lap) else lap
        vals, vecs = np.linalg.eigh(dense_lap)
        vals, vecs = vals[-k:], vecs[:, -k:]
    else:
        # A seeded random start: a constant one is special for a graph Laplacian, and with it
        # Lanczos misses repeated eigenvalues (one per connected component).
        v0 = np.random.default_rng(0).standard_normal(n)
        vals, vecs = eigsh(lap, k=k, which="LA", v0=v0)
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    norm = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norm, 1e-12), vals


def _dense_affinity(features: np.ndarray, sigma: float | str, n_neighbors: int) -> np.ndarray:
    n = len(features)
    d2 = _squared_distances(features)
    if sigma == "local":
        nn_k = min(n_neighbors, n - 1)
        scale = np.sqrt(np.partition(d2, nn_k, axis=1)[:, nn_k])  # column 0 is the point itself
        scale = np.maximum(scale, max(float(scale.max()), 1.0) * 1e-12)
        a = np.exp(-d2 / (scale[:, None] * scale[None, :]))
    else:
        width = _global_width(features, sigma)
        a = np.exp(-d2 / (2 * width * width))
    np.fill_diagonal(a, 0.0)
    return a


def _global_width(features: np.ndarray, sigma: float | str) -> float:
    width = median_sigma(features) if sigma == "median" else float(sigma)
    if not width > 0:
        raise TcdnError(f"the kernel width sigma must be > 0, 'median' or 'local', got {sigma!r}")
    return width


def _knn_affinity(
    features: np.ndarray, sigma: float | str, n_neighbors: int, graph_neighbors: int
) -> sparse.csr_matrix:
    n = len(features)
    dist, idx = knn_graph(features, max(graph_neighbors, n_neighbors))
    if sigma == "local":
        col = min(n_neighbors, dist.shape[1]) - 1  # the n_neighbors-th other point
        scale = dist[:, col]
        finite = np.isfinite(scale)
        fallback = float(np.median(scale[finite])) if finite.any() else 1.0
        scale = np.where(finite, scale, fallback)
        scale = np.maximum(scale, max(float(scale.max()), 1.0) * 1e-12)
        safe_idx = np.where(idx < 0, 0, idx)
        w = np.exp(-(dist**2) / (scale[:, None] * scale[safe_idx]))
    else:
        width = _global_width(features, sigma)
        w = np.exp(-(dist**2) / (2 * width * width))
    keep = (idx >= 0) & np.isfinite(dist)
    rows = np.repeat(np.arange(n), idx.shape[1])[keep.ravel()]
    a = sparse.csr_matrix((w[keep], (rows, idx[keep])), shape=(n, n))
    return a.maximum(a.T).tocsr()  # symmetric: i ~ j when either is among the other's neighbours


def spectral_embedding(
    features: np.ndarray,
    k: int,
    sigma: float | str = "local",
    n_neighbors: int = 7,
    *,
    affinity: str = "auto",
    graph_neighbors: int = GRAPH_NEIGHBORS,
) -> np.ndarray:
    """Ng-Jordan-Weiss embedding: top-``k`` eigenvectors of ``D^-1/2 A D^-1/2``, rows normalised.

    The Gaussian affinity's width needs no labels:

    - ``sigma="local"`` (default): local scaling (Zelnik-Manor & Perona 2004),
      ``A_ij = exp(-||x_i - x_j||² / (s_i s_j))`` with ``s_i`` the distance from ``x_i`` to its
      ``n_neighbors``-th nearest neighbour; it adapts to clusters of different density;
    - ``sigma="median"``: one global width, the median pairwise distance (:func:`median_sigma`),
      ``A_ij = exp(-||x_i - x_j||² / (2 sigma²))``;
    - a number: that global width.

    ``affinity``: ``"dense"`` builds the exact ``N x N`` matrix (at most ``DENSE_SPECTRAL_MAX``
    frames); ``"knn"`` keeps only each frame's ``graph_neighbors`` nearest neighbours (found by
    :func:`knn_graph`), symmetrised, and solves the sparse eigenproblem with ARPACK; ``"auto"``
    (default) is dense up to ``DENSE_AUTO_MAX`` frames and kNN beyond. ``A_ii = 0``.
    """
    n = len(features)
    affinity = resolve_affinity(affinity, n)
    if affinity == "dense":
        if n > DENSE_SPECTRAL_MAX:
            raise TcdnError(
                f"dense spectral clustering of {n} frames needs an {n}x{n} affinity: use the kNN "
                f"affinity, or --frame-stride / --max-per-video to take at most {DENSE_SPECTRAL_MAX} frames"
            )
        a: np.ndarray | sparse.csr_matrix = _dense_affinity(features, sigma, n_neighbors)
    else:
        a = _knn_affinity(features, sigma, n_neighbors, graph_neighbors)
    return _embed(a, k)[0]


def resolve_affinity(affinity: str, n: int) -> str:
    """The affinity :func:`spectral_embedding` builds for ``n`` frames: ``"dense"`` or ``"knn"``."""
    if affinity == "auto":
        return "dense" if n <= DENSE_AUTO_MAX else "knn"
    if affinity not in ("dense", "knn"):
        raise TcdnError(f"unknown affinity {affinity!r}; choose auto, dense or knn")
    return affinity


def spectral_eigenvalues(features: np.ndarray, k: int, *, affinity: str = "auto") -> np.ndarray:
    """The top-``k`` eigenvalues (descending) of the normalised affinity of :func:`spectral_embedding`."""
    n = len(features)
    if resolve_affinity(affinity, n) == "dense" and n <= DENSE_SPECTRAL_MAX:
        return _embed(_dense_affinity(features, "local", 7), k)[1]
    return _embed(_knn_affinity(features, "local", 7, GRAPH_NEIGHBORS), k)[1]


def estimate_k_eigengap(
    features: np.ndarray, max_k: int = 50, *, min_k: int = 2, affinity: str = "auto"
) -> tuple[int, np.ndarray]:
    """Choose the number of clusters without labels: the largest eigengap of the normalised affinity.

    With ``λ_1 >= λ_2 >= ...`` the top eigenvalues of ``D^-1/2 A D^-1/2`` (the same affinity as
    :func:`spectral_embedding`), ``K = argmax_{min_k <= i < max_k} (λ_i - λ_{i+1})``: ``K`` nearly
    disconnected groups give ``K`` eigenvalues near 1 and a gap after them. Returns ``K`` and the
    eigenvalues.
    """
    n = len(features)
    max_k = int(min(max_k, n - 2))
    if max_k <= min_k:
        raise TcdnError(f"too few frames ({n}) to estimate the number of clusters")
    vals = spectral_eigenvalues(features, max_k + 1, affinity=affinity)
    gaps = vals[:-1] - vals[1:]  # gaps[i - 1] = λ_i - λ_{i+1}
    best = int(np.argmax(gaps[min_k - 1 : max_k])) + min_k
    return best, vals


def estimate_k_silhouette(
    features: np.ndarray,
    max_k: int = 50,
    *,
    min_k: int = 2,
    max_candidates: int = 16,
    sample: int = 2000,
    seed: int = 0,
) -> tuple[int, dict[int, float]]:
    """Choose the number of clusters without labels: the K-means clustering with the best silhouette.

    The candidates are every ``K`` in ``[min_k, max_k]`` when there are at most ``max_candidates``
    of them, else ``max_candidates`` values spaced geometrically over that range (the known K is
    not slipped in). For each, K-means (seeded) on at most ``sample`` frames drawn at random, then
    the mean silhouette (Rousseeuw 1987, Euclidean) of those frames. Returns the best ``K`` and
    the score of every candidate.
    """
    from sklearn.metrics import silhouette_score

    n = len(features)
    rng = np.random.default_rng(seed)
    x = features[np.sort(rng.choice(n, size=min(sample, n), replace=False))]
    max_k = int(min(max_k, len(x) - 1))
    if max_k < min_k:
        raise TcdnError(f"too few frames ({n}) to estimate the number of clusters")
    if max_k - min_k + 1 <= max_candidates:
        candidates = list(range(min_k, max_k + 1))
    else:
        grid = np.geomspace(min_k, max_k, max_candidates)
        candidates = sorted({int(v) for v in np.rint(grid)})
    scores: dict[int, float] = {}
    for k in candidates:
        pred = kmeans(x, k, seed)
        if len(np.unique(pred)) < 2:  # all frames identical: no structure to score
            scores[k] = -1.0
            continue
        scores[k] = float(silhouette_score(x, pred))
    best = max(scores, key=lambda k: scores[k])
    return best, scores


# -- experiments ---------------------------------------------------------------------------------
@dataclass
class Score:
    """The scores of repeated clusterings: ``values`` holds the conditional entropy of each
    repeat, ``others`` every other score of :func:`cluster_scores` per repeat."""

    values: list[float]
    n_frames: int
    n_classes: int
    k: int
    first_assignment: np.ndarray | None = None  # the clusters of the first repeat
    others: dict[str, list[float]] = field(default_factory=dict)
    k_eigengap: int | None = None  # K chosen without labels (first repeat's features)
    k_silhouette: int | None = None  # the same, by the best K-means silhouette
    affinity: str | None = None  # spectral only: the affinity used, "dense" or "knn"

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    def to_dict(self) -> dict[str, object]:
        return {
            "ce_mean": self.mean,
            "ce_std": self.std,
            "ce_values": self.values,
            "n_frames": self.n_frames,
            "n_classes": self.n_classes,
            "k": self.k,
            "repeats": len(self.values),
            "k_eigengap": self.k_eigengap,
            "k_silhouette": self.k_silhouette,
            "affinity": self.affinity,
            **{
                f"{name}_{stat}": float(fn(vals))
                for name, vals in self.others.items()
                for stat, fn in (("mean", np.mean), ("std", np.std))
            },
        }


def score_clusterings(
    features_for_seed: Callable[[int], np.ndarray],
    labels: np.ndarray,
    *,
    k: int | None = None,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    seed: int = 0,
    estimate_k: bool = True,
) -> dict[str, Score]:
    """Cluster ``repeats`` times per method and score each run with :func:`cluster_scores`.

    ``features_for_seed(r)`` gives the features of repeat ``r``: the same array every time for a
    fixed feature source, a new one for e.g. a freshly initialised network per repeat. With
    ``estimate_k``, the number of clusters the data suggest without labels, by the largest
    eigengap (:func:`estimate_k_eigengap`) and by the best silhouette
    (:func:`estimate_k_silhouette`), each on the first repeat's features looking up to
    ``max(2K, 10)``, is reported beside the scores at the known ``K``.
    """
    for m in methods:
        if m not in METHODS:
            raise TcdnError(f"unknown clustering method {m!r}; choose from {', '.join(METHODS)}")
    n_classes = len(np.unique(labels))
    k = k or n_classes
    if k < 2 or k > len(labels):
        raise TcdnError(f"the number of clusters must be in [2, {len(labels)}], got {k}")
    values: dict[str, dict[str, list[float]]] = {m: {} for m in methods}
    first: dict[str, np.ndarray] = {}
    last_feats: np.ndarray | None = None
    embedding: np.ndarray | None = None
    k_est: dict[str, int] = {}
    for r in range(repeats):
        feats = features_for_seed(r)
        if estimate_k and r == 0 and len(feats) > 4:
            k_est["eigengap"] = estimate_k_eigengap(feats, max_k=max(2 * k, 10))[0]
            k_est["silhouette"] = estimate_k_silhouette(feats, max_k=max(2 * k, 10), seed=seed)[0]
        for m in methods:
            if m == "kmeans":
                pred = kmeans(feats, k, seed + r)
            else:
                if embedding is None or feats is not last_feats:  # depends only on the features
                    embedding, last_feats = spectral_embedding(feats, k), feats
                # Best of 10 K-means runs on the K-dim embedding (cheap), as NJW/scikit-learn do.
                pred = kmeans(embedding, k, seed + r, n_init=10)
            for name, value in cluster_scores(labels, pred).items():
                values[m].setdefault(name, []).append(value)
            if r == 0:
                first[m] = pred
    affinity = resolve_affinity("auto", len(labels))
    return {
        m: _score(values[m], labels, k, first[m], k_est, affinity if m == "spectral" else None)
        for m in methods
    }


def _score(
    per_name: dict[str, list[float]],
    labels: np.ndarray,
    k: int,
    first: np.ndarray | None = None,
    k_est: dict[str, int] | None = None,
    affinity: str | None = None,
) -> Score:
    others = {name: vals for name, vals in per_name.items() if name != "ce"}
    k_est = k_est or {}
    return Score(
        per_name["ce"],
        len(labels),
        len(np.unique(labels)),
        k,
        first,
        others,
        k_est.get("eigengap"),
        k_est.get("silhouette"),
        affinity,
    )


def random_assignment_scores(
    labels: np.ndarray,
    *,
    k: int | None = None,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    seed: int = 0,
) -> dict[str, Score]:
    """The random-assignment baseline, computed: each frame gets a uniformly random cluster."""
    k = k or len(np.unique(labels))
    per_name: dict[str, list[float]] = {}
    for r in range(repeats):
        pred = np.random.default_rng([seed, r]).integers(0, k, len(labels))
        for name, value in cluster_scores(labels, pred).items():
            per_name.setdefault(name, []).append(value)
    return {m: _score(per_name, labels, k) for m in methods}
