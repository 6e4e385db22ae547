"""Clustering feature rows without labels: K-means, Ng-Jordan-Weiss spectral clustering of an
affinity graph (:mod:`tcdn.discovery.graph`: the video graph when each row's video is known, else
the dense or kNN Gaussian affinity), and two label-free estimates of the number of clusters.

The functions are the building blocks; :class:`KMeans` and :class:`SpectralClustering` wrap them
as scikit-learn-style estimators (``fit`` returns ``self``, fitted attributes end in ``_``).
Every random choice takes ``random_state``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans as _SklearnKMeans
from sklearn.metrics import silhouette_score

from tcdn.discovery import graph as _graph
from tcdn.discovery.eigen import EigenInfo, normalized_affinity, top_eigenpairs
from tcdn.discovery.graph import (
    DENSE_AUTO_MAX,
    DENSE_SPECTRAL_MAX,
    EXACT_KNN_MAX,
    GRAPH_NEIGHBORS,
    Graph,
    knn_graph,
    median_sigma,
    resolve_affinity,
)
from tcdn.errors import TcdnError
from tcdn.features.featureset import group_means

log = logging.getLogger(__name__)

__all__ = [  # the graph's names, still importable from here
    "DENSE_AUTO_MAX",
    "DENSE_SPECTRAL_MAX",
    "EXACT_KNN_MAX",
    "GRAPH_NEIGHBORS",
    "Graph",
    "knn_graph",
    "median_sigma",
    "resolve_affinity",
]

#: Discovery at scale. From ``LARGE_ROWS`` rows, features of more than ``LARGE_PCA_DIMS`` dims are
#: clustered in a ``LARGE_PCA_DIMS``-d PCA fitted on ``LARGE_PCA_SAMPLE`` sampled rows
#: (:func:`working_space`; seeded 0, so the neighbour graph, K-means of every seed and a caller that
#: reduces once all see the same space), and :class:`KMeans` (``backend="auto"``) runs faiss. At
#: 4,096 dims the graph of 100k+ rows and the Lloyd steps are what cost, and float16 features of a
#: million rows are never turned into one float32 copy. K-means in a 128-d PCA against K-means on
#: all 4,096 dims (CE in bits, mean ± std over 10 seeds): bench_cluster's 100k blobs at K = 101,
#: 0.103 ± 0.021 in 17 s for the 10 seeds and the PCA vs faiss 0.133 ± 0.020 in 144 s (scikit-learn:
#: 0.105, one seed, 206 s); its 100k video-like features at K = 101, 0.021 ± 0.007 vs 0.024 ±
#: 0.012; tcdn's weizmann4 features (2,645 frames) at K = 4, 1.013 ± 0.231 vs 1.066 ± 0.132
#: (scikit-learn 1.085 ± 0.140), and with the 36 videos as classes, 1.600 ± 0.061 vs 1.603 ± 0.054.
LARGE_ROWS = 20000
LARGE_PCA_DIMS = 128
LARGE_PCA_SAMPLE = 20000
#: faiss's K-means (k-means++ on 40 rows per cluster, 25 Lloyd steps on 256): on 30k x 4,096
#: features of 101 clusters it scored 0.12 bits in 16-19 s of CPU, scikit-learn 0.122-0.154 in ~72 s
#: per seed. Seeding on 10 rows per cluster was faster but worse on small overlapping clusters
#: (0.18 vs 0.13 bits).
FAISS_ROWS_PER_CLUSTER = 256  # rows sampled per cluster for faiss's Lloyd iterations
FAISS_INIT_PER_CLUSTER = 40  # rows sampled per cluster for the k-means++ seeding
FAISS_ITERATIONS = 25
#: Regularised spectral clustering (Qin & Rohe 2013): ``tau`` = this x the graph's mean degree is
#: added to every degree before normalising (:func:`_embed`). 0: plain Ng-Jordan-Weiss.
SPECTRAL_REGULARIZATION = 0.0


def kmeans(
    features: np.ndarray, k: int, *, random_state: int, n_init: int = 1, backend: str = "auto"
) -> np.ndarray:
    """Seeded K-means (k-means++ init; the best of ``n_init`` runs) -> ``(N,)`` cluster labels."""
    return (
        KMeans(k, n_init=n_init, random_state=random_state, backend=backend).fit(features).labels_
    )


def _embed(
    affinity: np.ndarray | sparse.spmatrix,
    k: int,
    random_state: int = 0,
    regularization: float | None = None,
) -> tuple[np.ndarray, np.ndarray, EigenInfo]:
    """Top-``k`` eigenpairs of ``D_tau^-1/2 A D_tau^-1/2``, ``D_tau = D + tau I``, ``tau`` =
    ``regularization`` (default :data:`SPECTRAL_REGULARIZATION`) x the mean degree
    (:func:`~tcdn.discovery.eigen.top_eigenpairs`): the eigenvectors' rows normalised, the
    eigenvalues descending, and what the solver did."""
    c = SPECTRAL_REGULARIZATION if regularization is None else float(regularization)
    if not c >= 0:
        raise TcdnError(f"the spectral regularisation must be >= 0, got {regularization!r}")
    degrees = np.asarray(affinity.sum(axis=1), dtype=np.float64).ravel()
    tau = c * float(degrees.mean()) if len(degrees) else 0.0
    vals, vecs, info = top_eigenpairs(
        normalized_affinity(affinity, tau),
        min(k, affinity.shape[0]),
        random_state=random_state,
        sqrt_degrees=None if tau > 0 else np.sqrt(np.maximum(degrees, 0)),
        unit_top=not tau > 0,
    )
    norm = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.maximum(norm, 1e-12), vals, info


def _sample_rows(features: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` rows drawn without replacement (in row order), as contiguous float32."""
    n = len(features)
    rows = np.sort(rng.choice(n, size=size, replace=False)) if size < n else np.arange(n)
    return np.ascontiguousarray(features[rows], dtype=np.float32)


@dataclass(frozen=True)
class Projection:
    """A fitted PCA: ``(x - mean) @ axes`` projects rows of ``D`` dims on ``axes.shape[1]``."""

    mean: np.ndarray  # (D,) float32
    axes: np.ndarray  # (D, dims) float32

    def transform(self, features: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """``(N, dims)`` float32, chunk by chunk, so that ``features`` (e.g. float16 or a memory
        map) is never copied whole."""
        out = np.empty((len(features), self.axes.shape[1]), dtype=np.float32)
        for s in range(0, len(features), chunk):
            rows = np.asarray(features[s : s + chunk], dtype=np.float32)
            out[s : s + chunk] = (rows - self.mean) @ self.axes
        return out


def fit_pca(
    features: np.ndarray, dims: int, *, sample: int = LARGE_PCA_SAMPLE, random_state: int = 0
) -> Projection:
    """The top ``dims`` principal axes of at most ``sample`` rows drawn at random (randomised
    SVD, seeded by ``random_state``)."""
    from sklearn.decomposition import PCA

    drawn = _sample_rows(features, sample, np.random.default_rng(random_state))
    fitted = PCA(n_components=dims, svd_solver="randomized", random_state=random_state).fit(drawn)
    return Projection(fitted.mean_.astype(np.float32), fitted.components_.T.astype(np.float32))


def pca_reduce(
    features: np.ndarray,
    dims: int,
    *,
    sample: int = LARGE_PCA_SAMPLE,
    random_state: int = 0,
    chunk: int = 65536,
) -> np.ndarray:
    """``(N, dims)`` float32: the rows projected on the top ``dims`` principal axes of at most
    ``sample`` rows drawn at random (:func:`fit_pca`), chunk by chunk."""
    projection = fit_pca(features, dims, sample=sample, random_state=random_state)
    return projection.transform(features, chunk)


def working_projection(features: np.ndarray) -> Projection | None:
    """The PCA discovery clusters ``features`` in: ``LARGE_PCA_DIMS`` axes from ``LARGE_ROWS``
    rows of more dims (fitted on ``LARGE_PCA_SAMPLE`` rows, seeded 0), else ``None``."""
    n, d = features.shape
    if n < LARGE_ROWS or d <= LARGE_PCA_DIMS:
        return None
    log.info("clustering %d rows in a %d-d PCA of their %d dims", n, LARGE_PCA_DIMS, d)
    return fit_pca(features, LARGE_PCA_DIMS, random_state=0)


def working_space(features: np.ndarray) -> np.ndarray:
    """The features as discovery clusters them: their :func:`working_projection` (float32) where
    there is one, else themselves. A caller that clusters the same features several times
    (seeds, methods) reduces them once with this and passes the result on: the graph and
    :class:`KMeans` leave features already in the working space as they are, so the clusters are
    the same."""
    projection = working_projection(features)
    return features if projection is None else projection.transform(features)


@dataclass
class Spectrum:
    """What :func:`spectral_decomposition` found."""

    embedding: np.ndarray  # (N, k): the top-k eigenvectors, rows normalised
    eigenvalues: np.ndarray  # (k,), descending
    affinity: str  # "dense" or "knn"
    eigen: EigenInfo  # what the eigensolver did, and the graph's connected components

    def warn_if_split(self, k: int) -> None:
        """Warn when the graph falls into at least ``k`` pieces: the top-``k`` eigenvectors are
        then indicators of pieces (eigenvalue 1 each), and which pieces end up together is
        arbitrary."""
        pieces = self.eigen.n_components
        if pieces > 1 and pieces >= k:
            log.warning(
                "the neighbour graph of the %d rows falls into %d disconnected pieces, at least "
                "as many as the %d clusters: spectral clustering can only put whole pieces "
                "together, and which ones is arbitrary (typical of features that keep each "
                "video's frames tightly together); K-means does not have this limit",
                len(self.embedding),
                pieces,
                k,
            )


def affinity_graph(
    features: np.ndarray,
    sigma: float | str = "local",
    n_neighbors: int = 7,
    *,
    affinity: str = "auto",
    graph_neighbors: int = GRAPH_NEIGHBORS,
    videos: np.ndarray | None = None,
) -> Graph:
    """The affinity of :func:`spectral_decomposition` (see there for the parameters), built once
    so that several decompositions of the same features (the eigengap's and the clustering's)
    can share it."""
    n = len(features)
    kind = resolve_affinity(affinity, n, videos)
    if kind == "dense":
        if n > DENSE_SPECTRAL_MAX:
            raise TcdnError(
                f"dense spectral clustering of {n} frames needs an {n}x{n} affinity: use the kNN "
                f"affinity, or --frame-stride / --max-per-video to take at most {DENSE_SPECTRAL_MAX} frames"
            )
        return Graph(_graph.dense_affinity(features, sigma, n_neighbors), kind)
    space = working_space(features)
    if kind == "video":
        assert videos is not None
        return _graph.video_affinity(space, videos, sigma, n_neighbors)
    matrix = _graph.knn_affinity(space, sigma, n_neighbors, graph_neighbors)
    return Graph(matrix, kind)


def spectral_decomposition(
    features: np.ndarray,
    k: int,
    sigma: float | str = "local",
    n_neighbors: int = 7,
    *,
    affinity: str = "auto",
    graph_neighbors: int = GRAPH_NEIGHBORS,
    random_state: int = 0,
    graph: Graph | None = None,
    videos: np.ndarray | None = None,
) -> Spectrum:
    """Ng-Jordan-Weiss embedding: top-``k`` eigenvectors of ``D^-1/2 A D^-1/2``, rows normalised.

    The Gaussian affinity's width needs no labels:

    - ``sigma="local"`` (default): local scaling (Zelnik-Manor & Perona 2004),
      ``A_ij = exp(-||x_i - x_j||² / (s_i s_j))`` with ``s_i`` the distance from ``x_i`` to its
      ``n_neighbors``-th nearest neighbour (in the video graph: nearest other video); it adapts
      to clusters of different density;
    - ``sigma="median"``: one global width, the median pairwise distance (:func:`median_sigma`),
      ``A_ij = exp(-||x_i - x_j||² / (2 sigma²))``;
    - a number: that global width.

    ``affinity`` (:mod:`tcdn.discovery.graph`): ``"video"`` links pieces of each video to the
    nearest pieces of other videos and to their temporal neighbours
    (:func:`~tcdn.discovery.graph.video_affinity`; needs ``videos``, the video of each row);
    ``"dense"`` builds the exact ``N x N`` matrix (at most ``DENSE_SPECTRAL_MAX`` frames);
    ``"knn"`` keeps only each frame's ``graph_neighbors`` nearest neighbours (found by
    :func:`knn_graph`), symmetrised; ``"auto"`` (default) is ``"video"`` when ``videos`` are
    given (of at least two videos), else dense up to ``DENSE_AUTO_MAX`` frames and kNN beyond.
    Sparse eigenproblems are solved by :func:`~tcdn.discovery.eigen.top_eigenpairs` (exact,
    bounded, never stalling). ``A_ii = 0``. Above ``LARGE_ROWS`` rows the sparse graphs are built
    in a ``LARGE_PCA_DIMS``-d PCA of the features (:func:`working_space`), which float16 or
    memory-mapped features reach chunk by chunk. ``random_state`` seeds the eigensolver's start
    vectors. ``graph``: the affinity :func:`affinity_graph` built from these features with these
    options, already at hand. Returns a :class:`Spectrum`; its embedding has one row per
    feature row (the video graph's pieces give each of their rows their own row).
    """
    if graph is None:
        graph = affinity_graph(
            features,
            sigma,
            n_neighbors,
            affinity=affinity,
            graph_neighbors=graph_neighbors,
            videos=videos,
        )
    rows = graph.matrix.shape[0] if graph.node_of_row is None else len(graph.node_of_row)
    if rows != len(features):
        raise TcdnError(f"the graph is of {rows} rows, not of the {len(features)} given")
    embedding, vals, info = _embed(graph.matrix, k, random_state)
    if graph.node_of_row is not None:
        embedding = embedding[graph.node_of_row]
    return Spectrum(embedding, vals, graph.kind, info)


def spectral_embedding(
    features: np.ndarray,
    k: int,
    sigma: float | str = "local",
    n_neighbors: int = 7,
    *,
    affinity: str = "auto",
    graph_neighbors: int = GRAPH_NEIGHBORS,
    random_state: int = 0,
    videos: np.ndarray | None = None,
) -> np.ndarray:
    """The ``(N, k)`` embedding of :func:`spectral_decomposition`, rows normalised."""
    return spectral_decomposition(
        features,
        k,
        sigma,
        n_neighbors,
        affinity=affinity,
        graph_neighbors=graph_neighbors,
        random_state=random_state,
        videos=videos,
    ).embedding


def spectral_eigenvalues(
    features: np.ndarray,
    k: int,
    *,
    affinity: str = "auto",
    graph: Graph | None = None,
    videos: np.ndarray | None = None,
) -> np.ndarray:
    """The top-``k`` eigenvalues (descending) of the normalised affinity of :func:`spectral_embedding`
    (``graph``: that affinity, already built by :func:`affinity_graph`)."""
    n = len(features)
    if resolve_affinity(affinity, n, videos) == "dense" and n > DENSE_SPECTRAL_MAX:
        affinity = "knn"
    return spectral_decomposition(
        features, k, affinity=affinity, graph=graph, videos=videos
    ).eigenvalues


def estimate_k_eigengap(
    features: np.ndarray,
    max_k: int = 50,
    *,
    min_k: int = 2,
    affinity: str = "auto",
    graph: Graph | None = None,
    videos: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """Choose the number of clusters without labels: the largest eigengap of the normalised affinity.

    With ``λ_1 >= λ_2 >= ...`` the top eigenvalues of ``D^-1/2 A D^-1/2`` (the same affinity as
    :func:`spectral_embedding`), ``K = argmax_{min_k <= i < max_k} (λ_i - λ_{i+1})``: ``K`` nearly
    disconnected groups give ``K`` eigenvalues near 1 and a gap after them. ``videos``: the
    video of each row (the video graph; see :func:`spectral_decomposition`). Returns ``K`` and
    the eigenvalues.
    """
    n = len(features)
    if graph is None and videos is not None:
        graph = affinity_graph(features, affinity=affinity, videos=videos)
    nodes = n if graph is None else graph.matrix.shape[0]
    max_k = int(min(max_k, nodes - 2))
    if max_k <= min_k:
        raise TcdnError(f"too few frames ({n}) to estimate the number of clusters")
    vals = spectral_eigenvalues(features, max_k + 1, affinity=affinity, graph=graph)
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
    random_state: int = 0,
) -> tuple[int, dict[int, float]]:
    """Choose the number of clusters without labels: the K-means clustering with the best silhouette.

    The candidates are every ``K`` in ``[min_k, max_k]`` when there are at most ``max_candidates``
    of them, else ``max_candidates`` values spaced geometrically over that range (the known K is
    not slipped in). For each, K-means (seeded) on at most ``sample`` frames drawn at random, then
    the mean silhouette (Rousseeuw 1987, Euclidean) of those frames. Returns the best ``K`` and
    the score of every candidate. ``random_state`` seeds the sample and K-means.
    """
    n = len(features)
    rng = np.random.default_rng(random_state)
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
        pred = kmeans(x, k, random_state=random_state)
        if len(np.unique(pred)) < 2:  # all frames identical: no structure to score
            scores[k] = -1.0
            continue
        scores[k] = float(silhouette_score(x, pred))
    best = max(scores, key=lambda k: scores[k])
    return best, scores


KMEANS_BACKENDS = ("auto", "sklearn", "faiss")


class KMeans:
    """K-means (k-means++ init, the best of ``n_init`` runs), seeded by ``random_state``.

    From ``LARGE_ROWS`` rows of more than ``LARGE_PCA_DIMS`` dims it clusters the rows'
    :func:`working_projection` (the same PCA for every seed), whichever the backend.
    ``backend="sklearn"`` is scikit-learn's exact Lloyd on every row. ``"faiss"`` seeds k-means++
    on ``FAISS_INIT_PER_CLUSTER`` x K sampled rows, runs ``FAISS_ITERATIONS`` Lloyd steps with
    faiss on ``FAISS_ROWS_PER_CLUSTER`` x K sampled rows, keeps the restart of least inertia on
    that sample and then assigns every row chunk by chunk (float16 or memory-mapped features are
    never copied whole). ``"auto"`` takes faiss from ``LARGE_ROWS`` rows.

    Attributes after :meth:`fit`: ``labels_`` ``(N,)``; ``cluster_centers_`` ``(K, D)``, the
    mean of each cluster's rows in the features' own ``D`` dims; ``projection_``, the PCA the
    rows were clustered in (a :class:`Projection`) or ``None``; and ``backend_`` (the backend that
    ran). :meth:`predict` gives the nearest centre in the space K-means ran in.
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        n_init: int = 1,
        random_state: int | None = None,
        backend: str = "auto",
    ) -> None:
        if n_clusters < 1:
            raise TcdnError(f"the number of clusters must be >= 1, got {n_clusters}")
        if backend not in KMEANS_BACKENDS:
            raise TcdnError(f"K-means backend must be one of {KMEANS_BACKENDS}, got {backend!r}")
        self.n_clusters, self.n_init, self.random_state = n_clusters, n_init, random_state
        self.backend = backend

    def fit(self, features: np.ndarray) -> KMeans:
        n = len(features)
        if n < self.n_clusters:
            raise TcdnError(f"K-means needs at least K = {self.n_clusters} rows, got {n}")
        backend = self.backend
        if backend == "auto":
            backend = "faiss" if n >= LARGE_ROWS else "sklearn"
        self.backend_ = backend
        self.projection_ = working_projection(features)
        x = features if self.projection_ is None else self.projection_.transform(features)
        if backend == "faiss":
            self._centres = self._fit_faiss(x)
            self.labels_: np.ndarray = self._assign(x)
        else:
            est = _SklearnKMeans(
                self.n_clusters, n_init=self.n_init, random_state=self.random_state
            )
            est.fit(x)
            self.labels_, self._centres = est.labels_, est.cluster_centers_
        self.cluster_centers_: np.ndarray = (
            self._centres
            if self.projection_ is None
            else _cluster_means(features, self.labels_, self._centres, self.projection_)
        )
        return self

    def _fit_faiss(self, features: np.ndarray) -> np.ndarray:
        import faiss
        from sklearn.cluster import kmeans_plusplus

        d = features.shape[1]
        k = self.n_clusters
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        best: tuple[float, np.ndarray] | None = None
        for restart in range(max(1, self.n_init)):
            train = _sample_rows(features, k * FAISS_ROWS_PER_CLUSTER, rng)
            seeds = train[
                rng.choice(len(train), min(len(train), k * FAISS_INIT_PER_CLUSTER), replace=False)
            ]
            init, _ = kmeans_plusplus(seeds, k, random_state=seed * 1009 + restart)
            km = faiss.Kmeans(
                d,
                k,
                niter=FAISS_ITERATIONS,
                seed=seed * 1009 + restart,
                max_points_per_centroid=len(train) // k + 1,
                min_points_per_centroid=1,
            )
            km.train(train, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
            d2, _ = km.index.search(train, 1)
            inertia = float(d2.sum())
            if best is None or inertia < best[0]:
                best = (inertia, np.array(km.centroids, dtype=np.float32))
        assert best is not None
        return best[1]

    def _assign(self, features: np.ndarray, chunk: int = 65536) -> np.ndarray:
        import faiss

        centres = np.ascontiguousarray(self._centres, dtype=np.float32)
        index = faiss.IndexFlatL2(centres.shape[1])
        index.add(centres)
        labels = np.empty(len(features), dtype=np.int64)
        for s in range(0, len(features), chunk):
            rows = np.ascontiguousarray(features[s : s + chunk], dtype=np.float32)
            labels[s : s + chunk] = index.search(rows, 1)[1][:, 0]
        return labels

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The nearest fitted centre of each row (in the space K-means ran in)."""
        if not hasattr(self, "_centres"):
            raise TcdnError("this KMeans is not fitted yet: call fit(features) first")
        if self.projection_ is not None:
            features = self.projection_.transform(features)
        if self.backend_ == "faiss":
            return self._assign(features)
        x = np.asarray(features, dtype=np.float64)
        c = self._centres.astype(np.float64)
        d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
        return np.argmin(d2, axis=1)

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        return self.fit(features).labels_


def _cluster_means(
    features: np.ndarray, labels: np.ndarray, reduced_centres: np.ndarray, projection: Projection
) -> np.ndarray:
    """``(K, D)`` float32: the mean of each cluster's rows (:func:`group_means`); an empty
    cluster gets its reduced centre mapped back (``mean + centre @ axes.T``)."""
    means, counts = group_means(features, labels, len(reduced_centres))
    back = projection.mean[None, :] + reduced_centres @ projection.axes.T
    return np.where(counts[:, None] > 0, means, back).astype(np.float32)


class SpectralClustering:
    """Ng-Jordan-Weiss spectral clustering: :func:`spectral_embedding` of the features, then
    K-means (best of ``n_init`` runs) on the embedding's rows, both seeded by ``random_state``.

    Parameters are those of :func:`spectral_embedding`; :meth:`fit` takes the video of each row
    where it is known (``videos``: the video graph). Attributes after :meth:`fit`:
    ``labels_`` ``(N,)``, ``embedding_`` ``(N, K)``, ``eigenvalues_`` ``(K,)``, ``affinity_``
    (``"video"``, ``"dense"`` or ``"knn"``) and ``eigen_info_`` (what the eigensolver did; its
    ``n_components`` is the number of pieces of the graph: a warning says when they are at
    least K).
    """

    def __init__(
        self,
        n_clusters: int,
        *,
        affinity: str = "auto",
        sigma: float | str = "local",
        n_neighbors: int = 7,
        graph_neighbors: int = GRAPH_NEIGHBORS,
        n_init: int = 10,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters, self.affinity, self.sigma = n_clusters, affinity, sigma
        self.n_neighbors, self.graph_neighbors = n_neighbors, graph_neighbors
        self.n_init, self.random_state = n_init, random_state

    def fit(self, features: np.ndarray, videos: np.ndarray | None = None) -> SpectralClustering:
        seed = 0 if self.random_state is None else self.random_state
        spectrum = spectral_decomposition(
            features,
            self.n_clusters,
            self.sigma,
            self.n_neighbors,
            affinity=self.affinity,
            graph_neighbors=self.graph_neighbors,
            random_state=seed,
            videos=videos,
        )
        spectrum.warn_if_split(self.n_clusters)
        self.affinity_ = spectrum.affinity
        self.embedding_: np.ndarray = spectrum.embedding
        self.eigenvalues_: np.ndarray = spectrum.eigenvalues
        self.eigen_info_: EigenInfo = spectrum.eigen
        self.labels_: np.ndarray = kmeans(
            self.embedding_, self.n_clusters, random_state=seed, n_init=self.n_init
        )
        return self

    def fit_predict(self, features: np.ndarray, videos: np.ndarray | None = None) -> np.ndarray:
        return self.fit(features, videos).labels_
