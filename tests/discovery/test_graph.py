"""The video graph (``tcdn.discovery.graph``) against slow obvious references, and spectral
clustering on it finding classes, not videos (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest

from tcdn.discovery.cluster import SpectralClustering, estimate_k_eigengap, kmeans
from tcdn.discovery.graph import (
    nearest_other_videos,
    resolve_affinity,
    video_affinity,
    video_pieces,
)
from tcdn.discovery.metrics import conditional_entropy
from tcdn.discovery.synthetic import video_structured_features
from tcdn.errors import TcdnError


def _videos(seed: int = 0) -> np.ndarray:
    """Rows of 7 videos of 1 to 40 rows, the videos interleaved (ids are strings)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 41, 7)
    ids = np.concatenate([[f"v{i}"] * n for i, n in enumerate(lens)])
    return ids[rng.permutation(len(ids))]


@pytest.mark.parametrize("max_pieces", [7, 20, 50, 1000])
def test_video_pieces_are_runs_of_one_video_in_row_order(max_pieces: int) -> None:
    videos = _videos()
    pieces = video_pieces(videos, max_pieces)
    assert len(pieces.video) <= max(max_pieces, len(set(videos)))
    for name in sorted(set(videos)):
        rows = np.flatnonzero(videos == name)  # in row order
        got = pieces.of_row[rows]
        assert (np.diff(got) >= 0).all() and (np.diff(got) <= 1).all()  # consecutive runs
        assert set(pieces.video[got]) == {pieces.video[got[0]]}  # one video per piece
        sizes = np.bincount(got - got[0])
        assert sizes.max() <= pieces.length and sizes.max() - sizes.min() <= 1
    # no piece is shared by two videos, and the pieces of a video are numbered consecutively
    assert (np.diff(pieces.video) >= 0).all()
    owner = {p: v for p, v in zip(pieces.of_row.tolist(), videos.tolist(), strict=True)}
    assert len(owner) == len(pieces.video)


def test_nearest_other_videos_matches_a_loop() -> None:
    rng = np.random.default_rng(1)
    piece_video = np.sort(rng.integers(0, 9, 60))
    x = rng.normal(size=(60, 5)).astype(np.float32)
    k = 4
    dist, idx = nearest_other_videos(x, piece_video, k, block=7)
    for p in range(60):
        best: dict[int, tuple[float, int]] = {}
        for q in range(60):
            v = int(piece_video[q])
            if v == piece_video[p]:
                continue
            d = float(np.linalg.norm(x[p].astype(np.float64) - x[q]))
            if v not in best or d < best[v][0]:
                best[v] = (d, q)
        want = sorted(best.values())[:k]
        np.testing.assert_allclose(dist[p], [d for d, _ in want], rtol=1e-4)
        assert [piece_video[q] for q in idx[p]] == [piece_video[q] for _, q in want]
        assert len(set(piece_video[idx[p]])) == k  # k different videos, none its own


def test_video_affinity_links_other_videos_and_temporal_neighbours_only() -> None:
    x, _, video = video_structured_features(12, 10, 2, 16)
    graph = video_affinity(x, video, video_neighbors=3, temporal_neighbors=1, max_pieces=60)
    a = graph.matrix.toarray()
    assert graph.kind == "video" and graph.node_of_row is not None
    n_pieces = a.shape[0]
    assert n_pieces <= 60 and np.allclose(a, a.T) and (np.diag(a) == 0).all()
    piece_video = np.zeros(n_pieces, dtype=int)
    piece_video[graph.node_of_row] = video
    for p, q in zip(*np.nonzero(a), strict=True):
        if piece_video[p] == piece_video[q]:
            assert abs(p - q) == 1  # within a video: only the temporal neighbour
    cross = a * (piece_video[:, None] != piece_video[None, :])
    # every piece reaches 3 other videos, and local scaling leaves those bridges weight
    assert ((cross > 0).sum(1) >= 3).all()
    assert cross[cross > 0].min() > 1e-3


def test_resolve_affinity_takes_the_video_graph_when_videos_are_known() -> None:
    assert resolve_affinity("auto", 100, np.array(["a", "b"] * 50)) == "video"
    assert resolve_affinity("auto", 100, np.array(["a"] * 100)) == "dense"  # one video
    assert resolve_affinity("auto", 100) == "dense"
    with pytest.raises(TcdnError, match="video"):
        resolve_affinity("video", 100)


def test_spectral_on_the_video_graph_finds_classes_where_the_plain_graph_finds_videos() -> None:
    """A small version of issue 20's set: 120 tight videos of 4 classes."""
    x, y, video = video_structured_features(120, 20, 4, 64)
    km = conditional_entropy(y, kmeans(x, 4, random_state=0))
    est = SpectralClustering(4, random_state=0).fit(x, video)
    assert est.affinity_ == "video"
    assert conditional_entropy(y, est.labels_) <= km + 0.05
    plain = SpectralClustering(4, random_state=0).fit(x)  # no videos: the dense affinity
    assert plain.affinity_ == "dense"
    assert conditional_entropy(y, plain.labels_) > km + 0.5  # what issue 20 is about


@pytest.mark.parametrize("k", [2, 5])
def test_eigengap_on_the_video_graph_finds_the_number_of_classes(k: int) -> None:
    x, _, video = video_structured_features(30 * k, 10, k, 64, seed=k)
    found, _ = estimate_k_eigengap(x, 12, videos=video)
    assert abs(found - k) <= 1


@pytest.mark.slow
def test_issue_20_set_spectral_scores_within_005_bits_of_kmeans() -> None:
    """The exact 32,000-row set of issue 20 (320 videos, K = 2, 512 dims, seed 0)."""
    x, y, video = video_structured_features()
    assert x.shape == (32000, 512) and x.dtype == np.float32
    km = conditional_entropy(y, kmeans(x, 2, random_state=0))
    sc = conditional_entropy(y, SpectralClustering(2, random_state=0).fit(x, video).labels_)
    assert sc <= km + 0.05


def test_discover_clusters_frames_on_the_video_graph_and_videos_without_it() -> None:
    from tcdn.discovery.config import DiscoverConfig
    from tcdn.discovery.pipeline import discover_features
    from tcdn.features.featureset import FeatureSet

    x, y, video = video_structured_features(40, 10, 2, 64, seed=3)
    names = np.array([f"clip{v:02d}" for v in video])
    fs = FeatureSet(x, names, np.tile(np.arange(10), 40), np.array(["a", "b"])[y])
    frames = discover_features(fs, DiscoverConfig(repeats=2)).results["results"]["given"]
    assert frames["spectral"]["affinity"] == "video"
    assert frames["spectral"]["ce_mean"] <= frames["kmeans"]["ce_mean"] + 0.05
    assert frames["spectral"]["k_eigengap"] == 2
    pooled = discover_features(fs, DiscoverConfig(repeats=2, level="video")).results["results"]
    assert pooled["given"]["spectral"]["affinity"] == "dense"  # one row per video: no graph of them


def test_few_videos_far_apart_frames_keep_each_video_whole_and_classes_apart() -> None:
    """4 videos, 2 a class, frames of a video as far apart as the other video of its class:
    links to at most half the other videos, and links inside a video that never reach 0."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 10)
    x = rng.normal(size=(20, 3)) * 0.01 + y[:, None] * 10.0
    video = np.repeat(["a", "b", "c", "d"], 5)
    graph = video_affinity(x, video)
    from scipy.sparse.csgraph import connected_components

    n_comp, comp = connected_components(graph.matrix, directed=False)
    assert n_comp == 2 and conditional_entropy(y, comp[graph.node_of_row]) == 0.0
    pred = SpectralClustering(2, random_state=0).fit(x, video).labels_
    assert conditional_entropy(y, pred) == 0.0


def test_a_scale_floor_only_raises_the_weights_of_pieces_of_small_scale(monkeypatch) -> None:
    import tcdn.discovery.graph as graph_module

    x, _, video = video_structured_features(12, 10, 2, 16)
    x[video == video[0]] *= 0.01  # one video squeezed: tiny distances, tiny local scales
    weights = {}
    for floor in (0.0, 1.0, 1e9):
        monkeypatch.setattr(graph_module, "SCALE_FLOOR", floor)
        weights[floor] = video_affinity(x, video, max_pieces=60).matrix.toarray()
    plain, floored, flat = weights[0.0], weights[1.0], weights[1e9]
    same_edges = (plain > 0) == (floored > 0)
    assert same_edges.all()  # the floor changes weights, never which pieces are linked
    assert (floored >= plain - 1e-12).all() and (floored > plain + 1e-6).any()
    # scales floored at a huge width: every link weighs ~1 (the temporal links too)
    assert np.allclose(flat[flat > 0], 1.0, atol=1e-6)
