"""Repeated, scored clusterings (``tcdn.discovery.evaluate``) and the random-assignment baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from tcdn.discovery.evaluate import random_assignment_scores, score_clusterings
from tcdn.errors import TcdnError
from tests.discovery.conftest import blobs, gauss_blobs


# -- baselines and clusterings -------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 4, 10])
def test_random_assignment_is_about_log2_k(k):
    labels = np.repeat(np.arange(k), 4000 // k)
    scores = random_assignment_scores(labels, k=k, repeats=5, random_state=3)
    assert set(scores) == {"kmeans", "spectral"}
    for s in scores.values():
        assert len(s.values) == 5
        assert s.k == k and s.n_classes == k and s.n_rows == len(labels)
        # finite samples bias the estimate slightly downwards, never upwards
        assert math.log2(k) - 0.05 < s.mean < math.log2(k)
    # seeded: the same call gives the same numbers, another seed others
    assert random_assignment_scores(labels, k=k, repeats=5, random_state=3)["kmeans"].values == (
        scores["kmeans"].values
    )
    assert random_assignment_scores(labels, k=k, repeats=5, random_state=4)["kmeans"].values != (
        scores["kmeans"].values
    )


def test_score_clusterings_shape_and_values():
    x, y = blobs(n_per=20)
    calls = []

    def features_for_repeat(r):
        calls.append(r)
        return x

    scores = score_clusterings(features_for_repeat, y, k=3, repeats=3, random_state=5)
    assert calls == [0, 1, 2]
    assert set(scores) == {"kmeans", "spectral"}
    for s in scores.values():
        assert len(s.values) == 3
        assert s.k == 3 and s.n_classes == 3 and s.n_rows == len(y)
        assert s.first_assignment is not None and s.first_assignment.shape == y.shape
        assert s.to_dict()["repeats"] == 3
    assert scores["kmeans"].values == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)

    only = score_clusterings(lambda r: x, y, k=3, methods=["kmeans"], repeats=2)
    assert list(only) == ["kmeans"] and len(only["kmeans"].values) == 2


def test_score_clusterings_rejects_unknown_method():
    x, y = blobs(n_per=5)
    with pytest.raises(TcdnError, match="unknown clustering method"):
        score_clusterings(lambda r: x, y, k=3, methods=["kmeans", "dbscan"], repeats=1)


@pytest.mark.parametrize("k", [1, 1000])
def test_score_clusterings_rejects_bad_k(k):
    x, y = blobs(n_per=5)
    with pytest.raises(TcdnError, match="number of clusters"):
        score_clusterings(lambda r: x, y, k=k, repeats=1)


def test_score_dict_has_every_score_with_mean_and_std():
    labels = np.repeat([0, 1], 20)
    res = random_assignment_scores(labels, k=2, repeats=3)["kmeans"].to_dict()
    for name in ("ce", "nmi", "ari", "homogeneity", "purity", "accuracy"):
        assert f"{name}_mean" in res and f"{name}_std" in res, name
    assert res["ari_mean"] < 0.2  # chance level


def test_score_clusterings_reports_the_k_estimates_and_the_affinity():
    x, y = gauss_blobs(30, 4)
    scores = score_clusterings(lambda r: x, y, k=4, repeats=2)
    for method in ("kmeans", "spectral"):
        d = scores[method].to_dict()
        assert d["k_eigengap"] == 4
        assert d["k_silhouette"] == 4
    assert scores["spectral"].to_dict()["affinity"] == "dense"
    assert scores["kmeans"].to_dict()["affinity"] is None
    off = score_clusterings(lambda r: x, y, k=4, methods=("kmeans",), repeats=1, estimate_k=False)
    assert off["kmeans"].to_dict()["k_eigengap"] is None
    assert off["kmeans"].to_dict()["k_silhouette"] is None


def test_groups_add_the_nmi_with_each_attribute():
    x, y = blobs(n_per=10)
    who = np.tile(["ann", "bob"], len(y) // 2)  # an attribute unrelated to the clusters
    scores = score_clusterings(
        lambda r: x, y, k=3, methods=("kmeans",), repeats=2, groups={"who": who, "what": y}
    )
    d = scores["kmeans"].to_dict()
    first = scores["kmeans"].first_assignment
    assert d["nmi_what_mean"] == pytest.approx(d["nmi_mean"])  # the class itself
    assert scores["kmeans"].others["nmi_who"][0] == pytest.approx(
        normalized_mutual_info_score(who, first)
    )
    assert d["nmi_who_mean"] < 0.05 < d["nmi_what_mean"]
    rand = random_assignment_scores(y, k=3, repeats=2, groups={"who": who})["kmeans"].to_dict()
    assert "nmi_who_mean" in rand
