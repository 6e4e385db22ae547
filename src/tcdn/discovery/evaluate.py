"""Repeated clusterings of a feature source, scored against the true classes: mean ± std over
repeats (SPEC §5: each experiment is repeated 10 times)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from tcdn.discovery.cluster import (
    Graph,
    Spectrum,
    affinity_graph,
    estimate_k_eigengap,
    estimate_k_silhouette,
    kmeans,
    spectral_decomposition,
    working_space,
)
from tcdn.discovery.config import METHODS
from tcdn.discovery.metrics import cluster_scores
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)


@dataclass
class Score:
    """The scores of repeated clusterings: ``values`` holds the conditional entropy of each
    repeat, ``others`` every other score of :func:`cluster_scores` per repeat."""

    values: list[float]
    n_rows: int  # the rows clustered: frames, or videos at level 'video'
    n_classes: int
    k: int
    first_assignment: np.ndarray | None = None  # the clusters of the first repeat
    others: dict[str, list[float]] = field(default_factory=dict)
    k_eigengap: int | None = None  # K chosen without labels (first repeat's features)
    k_silhouette: int | None = None  # the same, by the best K-means silhouette
    affinity: str | None = None  # spectral only: the affinity used, "video", "dense" or "knn"
    graph_components: int | None = None  # spectral only: the pieces of the affinity's graph

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
            "n_rows": self.n_rows,
            "n_classes": self.n_classes,
            "k": self.k,
            "repeats": len(self.values),
            "k_eigengap": self.k_eigengap,
            "k_silhouette": self.k_silhouette,
            "affinity": self.affinity,
            "graph_components": self.graph_components,
            **{
                f"{name}_{stat}": float(fn(vals))
                for name, vals in self.others.items()
                for stat, fn in (("mean", np.mean), ("std", np.std))
            },
        }


def no_information(features: np.ndarray) -> bool:
    """Whether every row of ``features`` is the same (to float precision): such features carry
    no information, every partition of them is as good as any other, and spectral clustering's
    would depend on the order of the rows."""
    f = np.asarray(features, dtype=np.float64)
    if len(f) < 2:
        return False
    spread = float(np.max(np.ptp(f.reshape(len(f), -1), axis=0)))
    return not spread > 1e-12 * max(1.0, float(np.max(np.abs(f))))


def _warn_no_information(features: np.ndarray, what: str) -> None:
    log.warning(
        "%s carry no information (all %d rows are the same): every row is put in one cluster, "
        "whatever the method; the scores are those of a single cluster",
        what,
        len(features),
    )


def cluster_once(
    features: np.ndarray,
    k: int,
    method: str,
    *,
    random_state: int = 0,
    embedding: np.ndarray | None = None,
    videos: np.ndarray | None = None,
) -> np.ndarray:
    """``(N,)`` clusters of ``features`` by ``method``, exactly as repeat 0 of
    :func:`score_clusterings` seeded ``random_state`` makes them (no labels needed).
    ``embedding``: a spectral embedding of ``features`` already computed; ``videos``: the video
    of each row, where known (spectral clustering then cuts the video graph). Features with
    :func:`no_information` are put in one cluster (0), whatever the method and row order."""
    if no_information(features):
        return np.zeros(len(features), dtype=np.int64)
    if method == "kmeans":
        return kmeans(features, k, random_state=random_state)
    if method != "spectral":
        raise TcdnError(f"unknown clustering method {method!r}; choose from {', '.join(METHODS)}")
    if embedding is None:
        spectrum = spectral_decomposition(features, k, videos=videos)
        spectrum.warn_if_split(k)
        embedding = spectrum.embedding
    # Best of 10 K-means runs on the K-dim embedding (cheap), as NJW/scikit-learn do.
    return kmeans(embedding, k, random_state=random_state, n_init=10)


def score_clusterings(
    features_for_repeat: Callable[[int], np.ndarray],
    labels: np.ndarray,
    *,
    k: int,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    random_state: int = 0,
    estimate_k: bool = True,
    groups: dict[str, np.ndarray] | None = None,
    videos: np.ndarray | None = None,
    what: str = "the features",
) -> dict[str, Score]:
    """Cluster ``repeats`` times per method into ``k`` clusters and score each run with
    :func:`~tcdn.discovery.metrics.cluster_scores`; repeat ``r`` is seeded by ``random_state + r``.
    ``groups`` (name -> ``(N,)`` values, e.g. the performer of each row) adds the NMI of the
    clusters with each: ``nmi_<name>``.

    ``features_for_repeat(r)`` gives the features of repeat ``r``: the same array every time for
    a fixed feature source (its :func:`~tcdn.discovery.cluster.working_space`, affinity graph
    and spectral embedding are then computed once), a new one for e.g. a freshly initialised
    network per repeat. With ``estimate_k``, the number of clusters the data suggest without
    labels, by the largest eigengap (:func:`estimate_k_eigengap`) and by the best
    silhouette (:func:`estimate_k_silhouette`), each on the first repeat's features looking up to
    ``max(2K, 10)``, is reported beside the scores at ``k``. ``videos``: the video of each row,
    where known: the spectral embedding and the eigengap then use the video graph
    (:func:`~tcdn.discovery.graph.video_affinity`).

    Features with :func:`no_information` (``what`` names them in the warning) are put in one
    cluster, without a decomposition or an estimate of K.
    """
    for m in methods:
        if m not in METHODS:
            raise TcdnError(f"unknown clustering method {m!r}; choose from {', '.join(METHODS)}")
    if k < 2 or k > len(labels):
        raise TcdnError(f"the number of clusters must be in [2, {len(labels)}], got {k}")
    values: dict[str, dict[str, list[float]]] = {m: {} for m in methods}
    first: dict[str, np.ndarray] = {}
    last_feats: np.ndarray | None = None
    space = np.empty((0, 0), dtype=np.float32)
    spectrum: Spectrum | None = None
    graph: Graph | None = None
    k_est: dict[str, int] = {}
    blank = False
    for r in range(repeats):
        feats = features_for_repeat(r)
        if feats is not last_feats:  # a new feature set: reduce it (at scale), graph and embed once
            space, last_feats, spectrum, graph = working_space(feats), feats, None, None
            blank = no_information(feats)
            if blank:
                _warn_no_information(feats, f"{what} (repeat {r})" if r else what)
        if estimate_k and r == 0 and len(feats) > 4 and not blank:
            graph = graph or affinity_graph(space, videos=videos)
            k_est["eigengap"] = estimate_k_eigengap(space, max_k=max(2 * k, 10), graph=graph)[0]
            k_est["silhouette"] = estimate_k_silhouette(
                space, max_k=max(2 * k, 10), random_state=random_state
            )[0]
        for m in methods:
            if m == "spectral" and spectrum is None and not blank:
                graph = graph or affinity_graph(space, videos=videos)
                spectrum = spectral_decomposition(space, k, graph=graph)  # features only
                if r == 0:
                    spectrum.warn_if_split(k)
            embedding = spectrum.embedding if m == "spectral" and spectrum is not None else None
            pred = cluster_once(space, k, m, random_state=random_state + r, embedding=embedding)
            for name, value in _all_scores(labels, pred, groups).items():
                values[m].setdefault(name, []).append(value)
            if r == 0:
                first[m] = pred
    return {
        m: _score(values[m], labels, k, first[m], k_est, spectrum if m == "spectral" else None)
        for m in methods
    }


def _all_scores(
    labels: np.ndarray, pred: np.ndarray, groups: dict[str, np.ndarray] | None
) -> dict[str, float]:
    """:func:`cluster_scores` against the classes, and the NMI against each group."""
    scores = cluster_scores(labels, pred)
    for name, values in (groups or {}).items():
        scores[f"nmi_{name}"] = float(normalized_mutual_info_score(values, pred))
    return scores


def _score(
    per_name: dict[str, list[float]],
    labels: np.ndarray,
    k: int,
    first: np.ndarray | None = None,
    k_est: dict[str, int] | None = None,
    spectrum: Spectrum | None = None,
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
        None if spectrum is None else spectrum.affinity,
        None if spectrum is None else spectrum.eigen.n_components,
    )


def random_assignment_scores(
    labels: np.ndarray,
    *,
    k: int,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    random_state: int = 0,
    groups: dict[str, np.ndarray] | None = None,
) -> dict[str, Score]:
    """The random-assignment baseline, computed: each row gets a uniformly random one of ``k``
    clusters; repeat ``r`` draws from ``numpy.random.default_rng([random_state, r])``."""
    per_name: dict[str, list[float]] = {}
    for r in range(repeats):
        pred = np.random.default_rng([random_state, r]).integers(0, k, len(labels))
        for name, value in _all_scores(labels, pred, groups).items():
            per_name.setdefault(name, []).append(value)
    return {m: _score(per_name, labels, k) for m in methods}
