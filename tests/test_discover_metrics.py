"""Tests of the discovery scores and clusterings (SPEC §5).

The conditional entropy is checked against a naive double loop over a dict of counts and against
scikit-learn's homogeneity, H(X|Y) = (1 - homogeneity) * H(X); then its invariances, input
formats and edge cases; then the clusterings on toy data where the right answer is known.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import homogeneity_score

from tcdn.discover import (
    cluster_scores,
    clustering_accuracy,
    conditional_entropy,
    estimate_k_eigengap,
    estimate_k_silhouette,
    kmeans,
    knn_graph,
    purity,
    random_assignment_scores,
    score_clusterings,
    spectral_embedding,
)
from tcdn.errors import TcdnError


# -- naive references ----------------------------------------------------------------------------
def naive_conditional_entropy(labels_true, labels_pred, base: float = 2.0) -> float:
    """H(X|Y) = sum_y p(y) sum_x p(x|y) log(1 / p(x|y)), X = true class, Y = cluster."""
    n = len(labels_true)
    joint = Counter(zip(labels_true, labels_pred, strict=True))
    cluster = Counter(labels_pred)
    h = 0.0
    for y, n_y in cluster.items():
        p_y = n_y / n
        inner = 0.0
        for (_x, yy), n_xy in joint.items():
            if yy != y:
                continue
            p_x_given_y = n_xy / n_y
            inner += p_x_given_y * math.log(1.0 / p_x_given_y, base)
        h += p_y * inner
    return h


def naive_entropy(labels, base: float = 2.0) -> float:
    n = len(labels)
    return sum(c / n * math.log(n / c, base) for c in Counter(labels).values())


label_pairs = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 5), min_size=n, max_size=n),
        st.lists(st.integers(0, 7), min_size=n, max_size=n),
    )
)


# -- against references --------------------------------------------------------------------------
@settings(max_examples=150, deadline=None)
@given(label_pairs)
def test_matches_naive_double_loop(pair):
    t, p = pair
    assert conditional_entropy(t, p) == pytest.approx(naive_conditional_entropy(t, p), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(label_pairs)
def test_matches_sklearn_homogeneity(pair):
    t, p = pair
    expected = (1.0 - homogeneity_score(t, p)) * naive_entropy(t)
    assert conditional_entropy(t, p) == pytest.approx(expected, abs=1e-9)


def test_hand_computed_example():
    # cluster a: classes [0, 0, 1, 1] -> p(a) = 4/6, H(X|a) = 1 bit
    # cluster b: classes [2, 2]       -> p(b) = 2/6, H(X|b) = 0
    # H(X|Y) = 4/6 * 1 + 2/6 * 0 = 2/3
    t = [0, 0, 1, 1, 2, 2]
    p = ["a", "a", "a", "a", "b", "b"]
    assert conditional_entropy(t, p) == pytest.approx(2 / 3, abs=1e-15)


# -- invariances ---------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(label_pairs, st.permutations(range(6)), st.permutations(range(8)), st.randoms())
def test_invariant_to_renaming_and_sample_order(pair, class_perm, cluster_perm, rnd):
    t, p = pair
    base = conditional_entropy(t, p)
    t2 = [class_perm[x] for x in t]
    p2 = [f"cluster-{cluster_perm[y]}" for y in p]
    assert conditional_entropy(t2, p2) == pytest.approx(base, abs=1e-12)
    order = list(range(len(t)))
    rnd.shuffle(order)
    assert conditional_entropy([t[i] for i in order], [p[i] for i in order]) == pytest.approx(
        base, abs=1e-12
    )


@settings(max_examples=50, deadline=None)
@given(label_pairs)
def test_bounds(pair):
    t, p = pair
    h = conditional_entropy(t, p)
    assert 0.0 <= h <= naive_entropy(t) + 1e-12  # conditioning never adds entropy


# -- input formats -------------------------------------------------------------------------------
def test_input_formats_agree():
    t = [0, 0, 1, 1, 2, 2, 2, 0]
    p = [1, 1, 1, 0, 0, 0, 2, 2]
    expected = naive_conditional_entropy(t, p)
    assert expected > 0
    names = {0: "run", 1: "jump", 2: "swim"}
    variants = [
        (t, p),
        (tuple(t), tuple(p)),
        (np.array(t), np.array(p)),
        (np.array(t, dtype=np.int32), np.array(p, dtype=np.int64)),
        (np.array(t, dtype=np.uint8), np.array(p) + 100),
        ([names[x] for x in t], p),
        (np.array([names[x] for x in t]), [str(y) for y in p]),
    ]
    for a, b in variants:
        assert conditional_entropy(a, b) == pytest.approx(expected, abs=1e-12)
    assert isinstance(conditional_entropy(t, p), float)


# -- edge cases ----------------------------------------------------------------------------------
def test_perfect_clustering_is_zero():
    t = [0, 0, 1, 1, 2, 2]
    assert conditional_entropy(t, [5, 5, 3, 3, 9, 9]) == 0.0
    # splitting a class over several pure clusters is still perfect
    assert conditional_entropy(t, [0, 1, 2, 3, 4, 5]) == 0.0


def test_one_cluster_gives_class_entropy():
    t = [0, 0, 0, 1, 2, 2, 3, 3]
    assert conditional_entropy(t, [0] * len(t)) == pytest.approx(naive_entropy(t), abs=1e-12)
    assert conditional_entropy([0, 1, 2, 3], [7, 7, 7, 7]) == pytest.approx(2.0)


def test_one_class_is_zero():
    h = conditional_entropy(["a"] * 7, [0, 1, 2, 0, 1, 2, 3])
    assert h == 0.0
    assert math.copysign(1.0, h) == 1.0  # not -0.0


@pytest.mark.parametrize("base", [np.e, 10.0, 3])
def test_base(base):
    t = [0, 0, 1, 1, 2, 2, 2, 0, 1]
    p = [1, 1, 1, 0, 0, 0, 2, 2, 2]
    bits = conditional_entropy(t, p)
    assert bits > 0
    assert conditional_entropy(t, p, base=base) == pytest.approx(
        bits * math.log(2) / math.log(base)
    )
    if base == np.e:
        assert conditional_entropy(t, p, base=base) == pytest.approx(bits * math.log(2))


def test_empty_input_raises():
    with pytest.raises(ValueError, match="empty"):
        conditional_entropy([], [])
    with pytest.raises(ValueError):
        conditional_entropy(np.array([], dtype=int), np.array([], dtype=int))


def test_length_mismatch_raises():
    with pytest.raises(ValueError, match="length"):
        conditional_entropy([0, 1, 2], [0, 1])


@pytest.mark.parametrize("base", [1, 1.0, 0, -2, float("nan"), float("inf")])
def test_bad_base_raises(base):
    with pytest.raises(ValueError, match="base"):
        conditional_entropy([0, 1], [0, 1], base=base)


def test_two_dimensional_labels_raise():
    with pytest.raises(ValueError, match="1-D"):
        conditional_entropy([[0, 1], [1, 0]], [[0, 1], [1, 0]])


# -- baselines and clusterings -------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 4, 10])
def test_random_assignment_is_about_log2_k(k):
    labels = np.repeat(np.arange(k), 4000 // k)
    scores = random_assignment_scores(labels, repeats=5, seed=3)
    assert set(scores) == {"kmeans", "spectral"}
    for s in scores.values():
        assert len(s.values) == 5
        assert s.k == k and s.n_classes == k and s.n_frames == len(labels)
        # finite samples bias the estimate slightly downwards, never upwards
        assert math.log2(k) - 0.05 < s.mean < math.log2(k)
    # seeded: the same call gives the same numbers, another seed others
    assert random_assignment_scores(labels, repeats=5, seed=3)["kmeans"].values == (
        scores["kmeans"].values
    )
    assert random_assignment_scores(labels, repeats=5, seed=4)["kmeans"].values != (
        scores["kmeans"].values
    )


def _blobs(n_per: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 20.0, 5.0]])
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, 3)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    return x, y


def test_kmeans_separates_blobs():
    x, y = _blobs()
    for seed in range(3):
        pred = kmeans(x, 3, seed)
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
        assert conditional_entropy(y, kmeans(emb, 2, seed)) == pytest.approx(0.0, abs=1e-12)
        # k-means on the raw coordinates cuts the rings with a line: far from pure
        assert conditional_entropy(y, kmeans(x, 2, seed)) > 0.5


def test_spectral_bad_sigma():
    x, _ = _rings(20)
    with pytest.raises(TcdnError, match="sigma"):
        spectral_embedding(x, 2, sigma=-1.0)


def test_score_clusterings_shape_and_values():
    x, y = _blobs(n_per=20)
    calls = []

    def features_for_seed(r):
        calls.append(r)
        return x

    scores = score_clusterings(features_for_seed, y, repeats=3, seed=5)
    assert calls == [0, 1, 2]
    assert set(scores) == {"kmeans", "spectral"}
    for s in scores.values():
        assert len(s.values) == 3
        assert s.k == 3 and s.n_classes == 3 and s.n_frames == len(y)
        assert s.first_assignment is not None and s.first_assignment.shape == y.shape
        assert s.to_dict()["repeats"] == 3
    assert scores["kmeans"].values == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)

    only = score_clusterings(lambda r: x, y, methods=["kmeans"], repeats=2)
    assert list(only) == ["kmeans"] and len(only["kmeans"].values) == 2


def test_score_clusterings_rejects_unknown_method():
    x, y = _blobs(n_per=5)
    with pytest.raises(TcdnError, match="unknown clustering method"):
        score_clusterings(lambda r: x, y, methods=["kmeans", "dbscan"], repeats=1)


@pytest.mark.parametrize("k", [1, 1000])
def test_score_clusterings_rejects_bad_k(k):
    x, y = _blobs(n_per=5)
    with pytest.raises(TcdnError, match="number of clusters"):
        score_clusterings(lambda r: x, y, k=k, repeats=1)


# -- the other scores ----------------------------------------------------------------------------
def naive_purity(labels_true, labels_pred) -> float:
    clusters: dict = {}
    for t, p in zip(labels_true, labels_pred, strict=True):
        clusters.setdefault(p, []).append(t)
    return sum(Counter(m).most_common(1)[0][1] for m in clusters.values()) / len(labels_true)


def naive_accuracy(labels_true, labels_pred) -> float:
    """Best one-to-one matching by trying every assignment of clusters to classes."""
    from itertools import permutations

    classes, clusters = sorted(set(labels_true)), sorted(set(labels_pred))
    pairs = list(zip(labels_true, labels_pred, strict=True))
    best = 0
    if len(clusters) <= len(classes):
        for chosen in permutations(classes, len(clusters)):
            match = dict(zip(clusters, chosen, strict=True))
            best = max(best, sum(match[p] == t for t, p in pairs))
    else:
        for chosen in permutations(clusters, len(classes)):
            match = dict(zip(chosen, classes, strict=True))
            best = max(best, sum(match.get(p) == t for t, p in pairs))
    return best / len(pairs)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=40),
)
def test_purity_and_accuracy_match_naive(pairs):
    t = [a for a, _ in pairs]
    p = [b for _, b in pairs]
    assert purity(t, p) == pytest.approx(naive_purity(t, p))
    assert clustering_accuracy(t, p) == pytest.approx(naive_accuracy(t, p))
    assert clustering_accuracy(t, p) <= purity(t, p) + 1e-12


def test_cluster_scores_perfect_and_permuted():
    t = np.repeat([0, 1, 2], 5)
    scores = cluster_scores(t, (t + 1) % 3)  # renamed clusters: still perfect
    assert scores == pytest.approx(
        {"ce": 0.0, "nmi": 1.0, "ari": 1.0, "homogeneity": 1.0, "purity": 1.0, "accuracy": 1.0}
    )


def test_score_dict_has_every_score_with_mean_and_std():
    labels = np.repeat([0, 1], 20)
    res = random_assignment_scores(labels, repeats=3)["kmeans"].to_dict()
    for name in ("ce", "nmi", "ari", "homogeneity", "purity", "accuracy"):
        assert f"{name}_mean" in res and f"{name}_std" in res, name
    assert res["ari_mean"] < 0.2  # chance level


# -- clustering at scale: kNN graph, sparse spectral, eigengap -----------------------------------
def _gauss_blobs(n_per: int, k: int, dim: int = 16, seed: int = 0, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("exact", [True, False])
def test_knn_graph_matches_brute_force(exact):
    x, _ = _gauss_blobs(60, 3)
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
    x, y = _gauss_blobs(80, 4, spread=1.2)
    dense = spectral_embedding(x, 4, affinity="dense")
    knn = spectral_embedding(x, 4, affinity="knn")
    ce_dense = np.mean([conditional_entropy(y, kmeans(dense, 4, s)) for s in range(3)])
    ce_knn = np.mean([conditional_entropy(y, kmeans(knn, 4, s)) for s in range(3)])
    assert abs(ce_dense - ce_knn) < 0.05
    assert ce_knn < 0.2


def test_spectral_affinity_choice_is_checked():
    x, _ = _gauss_blobs(10, 2)
    with pytest.raises(TcdnError, match="affinity"):
        spectral_embedding(x, 2, affinity="full")


@pytest.mark.parametrize("k", [3, 5])
def test_eigengap_finds_the_number_of_gauss_blobs(k):
    x, _ = _gauss_blobs(40, k)
    est, vals = estimate_k_eigengap(x, max_k=12)
    assert est == k
    assert np.all(np.diff(vals) <= 1e-9)  # descending


@pytest.mark.parametrize("k", [3, 5])
def test_silhouette_finds_the_number_of_gauss_blobs(k):
    x, _ = _gauss_blobs(40, k)
    est, scores = estimate_k_silhouette(x, max_k=12)
    assert est == k
    assert sorted(scores) == list(range(2, 13))  # few candidates: every K is tried
    assert scores[k] == max(scores.values())


def test_silhouette_candidates_are_a_geometric_grid_without_the_known_k():
    x, _ = _gauss_blobs(20, 3)
    _, scores = estimate_k_silhouette(x, max_k=50, max_candidates=5)
    assert sorted(scores) == [2, 4, 10, 22, 50]  # round(geomspace(2, 50, 5))


def test_silhouette_matches_a_naive_reference():
    from tcdn.discover import kmeans as tcdn_kmeans

    x, _ = _gauss_blobs(12, 3)
    _, scores = estimate_k_silhouette(x, max_k=4, sample=len(x))
    pred = tcdn_kmeans(x, 3, 0)
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


def test_score_clusterings_reports_the_k_estimates_and_the_affinity():
    x, y = _gauss_blobs(30, 4)
    scores = score_clusterings(lambda r: x, y, repeats=2)
    for method in ("kmeans", "spectral"):
        d = scores[method].to_dict()
        assert d["k_eigengap"] == 4
        assert d["k_silhouette"] == 4
    assert scores["spectral"].to_dict()["affinity"] == "dense"
    assert scores["kmeans"].to_dict()["affinity"] is None
    off = score_clusterings(lambda r: x, y, methods=("kmeans",), repeats=1, estimate_k=False)
    assert off["kmeans"].to_dict()["k_eigengap"] is None
    assert off["kmeans"].to_dict()["k_silhouette"] is None
