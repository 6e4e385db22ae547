"""Clustering without labels (``tcdn.discovery.cluster``): K-means, spectral, kNN graphs, K estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from tcdn.discovery import cluster
from tcdn.discovery.cluster import (
    estimate_k_eigengap,
    estimate_k_silhouette,
    kmeans,
    knn_graph,
    spectral_embedding,
)
from tcdn.discovery.metrics import conditional_entropy
from tcdn.errors import TcdnError
from tests.discovery.conftest import blobs, gauss_blobs


def test_kmeans_separates_blobs():
    x, y = blobs()
    for seed in range(3):
        pred = kmeans(x, 3, random_state=seed)
        assert pred.shape == y.shape
        assert len(np.unique(pred)) == 3
        assert conditional_entropy(y, pred) == pytest.approx(0.0, abs=1e-12)


def _rings(n_per: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, 2 * np.pi, 2 * n_per)
    r = np.r_[np.full(n_per, 1.0), np.full(n_per, 4.0)] + rng.normal(0, 0.1, 2 * n_per)
    return np.c_[r * np.cos(theta), r * np.sin(theta)], np.repeat([0, 1], n_per)


@pytest.mark.parametrize("sigma", ["local", 0.5])
def test_spectral_separates_concentric_rings(sigma):
    # The default local-scaling width needs no tuning; a fixed width of 0.5 works too.
    x, y = _rings()
    emb = spectral_embedding(x, 2, sigma=sigma)
    assert emb.shape == (len(x), 2)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-9)  # rows normalised
    for seed in range(3):
        assert conditional_entropy(y, kmeans(emb, 2, random_state=seed)) == pytest.approx(
            0.0, abs=1e-12
        )
        # k-means on the raw coordinates cuts the rings with a line: far from pure
        assert conditional_entropy(y, kmeans(x, 2, random_state=seed)) > 0.5


def test_spectral_bad_sigma():
    x, _ = _rings(20)
    with pytest.raises(TcdnError, match="sigma"):
        spectral_embedding(x, 2, sigma=-1.0)


@pytest.mark.parametrize("exact", [True, False])
def test_knn_graph_matches_brute_force(exact):
    x, _ = gauss_blobs(60, 3)
    dist, idx = knn_graph(x, 5, exact=exact)
    assert dist.shape == idx.shape == (len(x), 5)
    for i in range(0, len(x), 7):  # a slow, obvious reference on a sample of rows
        d = [(math.dist(x[i], x[j]), j) for j in range(len(x)) if j != i]
        want = sorted(d)[:5]
        np.testing.assert_allclose(dist[i], [w for w, _ in want], rtol=1e-4, atol=1e-4)
        assert i not in idx[i]


def test_knn_graph_with_duplicate_rows_never_lists_self():
    x = np.repeat(np.arange(10, dtype=np.float32)[:, None], 3, axis=0)  # every row three times
    _, idx = knn_graph(x, 2, exact=True)
    assert not (idx == np.arange(len(x))[:, None]).any()


def test_sparse_spectral_agrees_with_dense():
    x, y = gauss_blobs(80, 4, spread=1.2)
    dense = spectral_embedding(x, 4, affinity="dense")
    knn = spectral_embedding(x, 4, affinity="knn")
    ce_dense = np.mean([conditional_entropy(y, kmeans(dense, 4, random_state=s)) for s in range(3)])
    ce_knn = np.mean([conditional_entropy(y, kmeans(knn, 4, random_state=s)) for s in range(3)])
    assert abs(ce_dense - ce_knn) < 0.05
    assert ce_knn < 0.2


def test_spectral_affinity_choice_is_checked():
    x, _ = gauss_blobs(10, 2)
    with pytest.raises(TcdnError, match="affinity"):
        spectral_embedding(x, 2, affinity="full")


@pytest.mark.parametrize("k", [3, 5])
def test_eigengap_finds_the_number_of_gauss_blobs(k):
    x, _ = gauss_blobs(40, k)
    est, vals = estimate_k_eigengap(x, max_k=12)
    assert est == k
    assert np.all(np.diff(vals) <= 1e-9)  # descending


@pytest.mark.parametrize("k", [3, 5])
def test_silhouette_finds_the_number_of_gauss_blobs(k):
    x, _ = gauss_blobs(40, k)
    est, scores = estimate_k_silhouette(x, max_k=12)
    assert est == k
    assert sorted(scores) == list(range(2, 13))  # few candidates: every K is tried
    assert scores[k] == max(scores.values())


def test_silhouette_candidates_are_a_geometric_grid_without_the_known_k():
    x, _ = gauss_blobs(20, 3)
    _, scores = estimate_k_silhouette(x, max_k=50, max_candidates=5)
    assert sorted(scores) == [2, 4, 10, 22, 50]  # round(geomspace(2, 50, 5))


def test_silhouette_matches_a_naive_reference():
    from tcdn.discovery.cluster import kmeans as tcdn_kmeans

    x, _ = gauss_blobs(12, 3)
    _, scores = estimate_k_silhouette(x, max_k=4, sample=len(x))
    pred = tcdn_kmeans(x, 3, random_state=0)
    sil = []
    for i in range(len(x)):  # Rousseeuw's s(i) = (b - a) / max(a, b), written out
        same = [math.dist(x[i], x[j]) for j in range(len(x)) if pred[j] == pred[i] and j != i]
        a = np.mean(same) if same else 0.0
        b = min(
            np.mean([math.dist(x[i], x[j]) for j in range(len(x)) if pred[j] == c])
            for c in set(pred.tolist()) - {pred[i]}
        )
        sil.append(0.0 if not same else (b - a) / max(a, b))
    assert scores[3] == pytest.approx(np.mean(sil), rel=1e-6)


# -- K-means at scale: faiss on a sample, every row assigned ---------------------------------------
def test_faiss_kmeans_scores_like_scikit_learn_within_noise():
    # 20 overlapping clusters of 300 rows: more rows than faiss samples (256 per cluster), and hard
    # enough that both backends land in different local minima from seed to seed
    x, y = gauss_blobs(300, 20, dim=32, spread=2.0)
    ce = {
        backend: [
            conditional_entropy(y, kmeans(x, 20, random_state=s, backend=backend))
            for s in range(16)
        ]
        for backend in ("sklearn", "faiss")
    }
    diff = np.mean(ce["faiss"]) - np.mean(ce["sklearn"])
    stderr = math.sqrt((np.var(ce["faiss"], ddof=1) + np.var(ce["sklearn"], ddof=1)) / 16)
    assert abs(diff) < 2 * stderr + 0.01, ce
    assert np.mean(ce["faiss"]) < 0.5  # and both actually cluster (chance would be ~4.3 bits)


def test_faiss_kmeans_is_seeded_and_predicts_its_own_labels():
    from tcdn.discovery.cluster import KMeans

    x, y = gauss_blobs(100, 6)
    a = KMeans(6, random_state=3, backend="faiss").fit(x)
    b = KMeans(6, random_state=3, backend="faiss").fit(x)
    assert a.backend_ == "faiss"
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict(x), a.labels_)
    assert conditional_entropy(y, a.labels_) == pytest.approx(0.0, abs=1e-12)
    assert a.cluster_centers_.shape == (6, x.shape[1])


def test_faiss_kmeans_reads_float16_without_changing_the_answer():
    x, _ = gauss_blobs(100, 6)
    a = kmeans(x, 6, random_state=0, backend="faiss")
    b = kmeans(x.astype(np.float16), 6, random_state=0, backend="faiss")
    assert (a == b).mean() > 0.99


def test_kmeans_auto_backend_switches_at_the_row_threshold(monkeypatch):
    import tcdn.discovery.cluster as cluster

    x, _ = gauss_blobs(50, 4)
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x) + 1)
    assert cluster.KMeans(4, random_state=0).fit(x).backend_ == "sklearn"
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x))
    assert cluster.KMeans(4, random_state=0).fit(x).backend_ == "faiss"
    with pytest.raises(TcdnError, match="backend"):
        cluster.KMeans(4, backend="gpu")
    with pytest.raises(TcdnError, match="not fitted yet"):
        cluster.KMeans(4).predict(x)
    with pytest.raises(TcdnError, match="at least K"):
        cluster.KMeans(500, random_state=0).fit(x)


# -- large graphs are built in a PCA of the features ----------------------------------------------
def test_pca_reduce_matches_a_plain_svd_projection():
    from tcdn.discovery.cluster import pca_reduce

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(400, 30)) * np.geomspace(20, 0.01, 30)).astype(np.float32)
    got = pca_reduce(x, 4, sample=len(x), chunk=64)  # every row sampled, several chunks
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    want = centred @ vt[:4].T
    # the same projection up to the sign of each axis
    signs = np.sign((got * want).sum(0))
    np.testing.assert_allclose(got * signs, want, rtol=1e-3, atol=1e-3)


def test_working_space_reduces_only_large_wide_features(monkeypatch):
    import tcdn.discovery.cluster as cluster

    x, y = gauss_blobs(100, 5, dim=64)
    assert cluster.working_space(x) is x
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x) + 1)
    monkeypatch.setattr(cluster, "LARGE_PCA_DIMS", 8)
    assert cluster.working_space(x) is x  # too few rows
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x))
    reduced = cluster.working_space(x.astype(np.float16))
    assert reduced.shape == (len(x), 8) and reduced.dtype == np.float32
    assert cluster.working_space(reduced) is reduced  # already reduced: left as it is
    # the clusters survive the reduction: sparse spectral clustering still finds them all
    emb = cluster.spectral_embedding(x, 5, affinity="knn", random_state=0)
    pred = kmeans(emb, 5, random_state=0, n_init=10)
    assert conditional_entropy(y, pred) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
def test_kmeans_at_scale_clusters_one_shared_pca(monkeypatch, backend):
    import tcdn.discovery.cluster as cluster

    x, y = gauss_blobs(100, 5, dim=64)
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x))
    monkeypatch.setattr(cluster, "LARGE_PCA_DIMS", 8)
    est = cluster.KMeans(5, random_state=1, backend=backend).fit(x)
    assert est.projection_ is not None and est.projection_.axes.shape == (64, 8)
    assert conditional_entropy(y, est.labels_) == pytest.approx(0.0, abs=1e-12)
    # reducing first (as discovery does once for every seed) gives the same clusters
    space = cluster.working_space(x)
    again = cluster.KMeans(5, random_state=1, backend=backend).fit(space)
    assert again.projection_ is None
    np.testing.assert_array_equal(again.labels_, est.labels_)
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    # the centres are the means of each cluster's rows in the features' own 64 dims
    for c in range(5):
        np.testing.assert_allclose(
            est.cluster_centers_[c], x[est.labels_ == c].mean(axis=0), rtol=1e-5, atol=1e-5
        )


def test_kmeans_in_the_pca_scores_no_worse_than_scikit_learn_on_every_dim(monkeypatch):
    from sklearn.cluster import KMeans as SklearnKMeans

    import tcdn.discovery.cluster as cluster

    # 20 overlapping clusters of 300 rows in 256 dims, clustered by faiss in a 32-d PCA. The PCA
    # drops noise, so it may do better (0.114 vs 0.127 bits here): it must not do worse.
    x, y = gauss_blobs(300, 20, dim=256, spread=8.0)
    monkeypatch.setattr(cluster, "LARGE_ROWS", 1000)
    monkeypatch.setattr(cluster, "LARGE_PCA_DIMS", 32)
    ce = {
        "pca": [conditional_entropy(y, kmeans(x, 20, random_state=s)) for s in range(16)],
        "full": [
            conditional_entropy(y, SklearnKMeans(20, n_init=1, random_state=s).fit(x).labels_)
            for s in range(16)
        ],
    }
    diff = np.mean(ce["pca"]) - np.mean(ce["full"])
    stderr = math.sqrt((np.var(ce["pca"], ddof=1) + np.var(ce["full"], ddof=1)) / 16)
    assert diff < 2 * stderr + 0.01, ce
    assert 0 < np.mean(ce["pca"]) < 0.5  # overlapping, yet clustered (chance: ~4.3 bits)


def _dangling_set_graph():
    """Two large groups of 100 nodes (dense inside, joined by 20 links of 0.01) and a clique of
    5 nodes hanging off the first by one link of 1e-6: the cut of least conductance isolates
    the clique, the cut between the groups is the one that finds them."""
    rng = np.random.default_rng(0)
    n = 205
    a = np.zeros((n, n))
    for lo in (0, 100):
        block = rng.uniform(0.5, 1.0, (100, 100)) * (rng.random((100, 100)) < 0.3)
        a[lo : lo + 100, lo : lo + 100] = np.triu(block, 1) + np.triu(block, 1).T
    a[200:, 200:] = 1.0 - np.eye(5)
    for _ in range(20):
        i, j = rng.integers(100), 100 + rng.integers(100)
        a[i, j] = a[j, i] = 0.01
    a[0, 200] = a[200, 0] = 1e-6
    truth = np.r_[np.zeros(100), np.ones(100), np.zeros(5)]
    return a, truth


def test_regularised_embedding_matches_a_dense_reference():
    a, _ = _dangling_set_graph()
    for c in (0.0, 0.1, 1.0):
        emb, vals, _ = cluster._embed(a, 3, regularization=c)
        deg = a.sum(1) + c * a.sum(1).mean()
        m = a / np.sqrt(deg[:, None] * deg[None, :])
        ref_vals, ref_vecs = np.linalg.eigh(m)  # the slow obvious reference
        np.testing.assert_allclose(vals, ref_vals[::-1][:3], atol=1e-8)
        ref = ref_vecs[:, ::-1][:, :3]
        ref /= np.linalg.norm(ref, axis=1, keepdims=True)
        # the same rows up to a rotation of the eigenbasis: equal Gram matrices
        np.testing.assert_allclose(emb @ emb.T, ref @ ref.T, atol=1e-6)
    with pytest.raises(TcdnError, match="regularisation"):
        cluster._embed(a, 3, regularization=-0.1)


def test_regularisation_stops_spending_a_cluster_on_a_dangling_set(monkeypatch):
    a, truth = _dangling_set_graph()
    graph = cluster.Graph(a, "dense")
    features = np.zeros((len(a), 2))
    found = {}
    for c in (0.0, 0.1):
        monkeypatch.setattr(cluster, "SPECTRAL_REGULARIZATION", c)
        emb = cluster.spectral_decomposition(features, 2, graph=graph).embedding
        pred = cluster.kmeans(emb, 2, random_state=0, n_init=10)
        found[c] = sorted(np.bincount(pred).tolist())
        if c:
            assert adjusted_rand_score(truth, pred) > 0.95
    assert found[0.0] == [5, 200]  # plain: the clique against everything else
