"""The discovery scores (``tcdn.discovery.metrics``, SPEC §5) against naive references."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import homogeneity_score

from tcdn.discovery.metrics import cluster_scores, clustering_accuracy, conditional_entropy, purity


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
