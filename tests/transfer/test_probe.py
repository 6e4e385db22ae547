"""Frozen-feature classifiers (``tcdn.transfer.probe``) against slow, obvious references."""

from __future__ import annotations

import numpy as np
import pytest

from tcdn.transfer.probe import accuracy, knn_predict, linear_probe


def knn_reference(train: np.ndarray, labels: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """One test row at a time: cosine similarities, sorted, k votes, ties by summed similarity."""
    out = []
    for q in test:
        sims = []
        for row, lab in zip(train, labels, strict=True):
            denom = np.linalg.norm(q) * np.linalg.norm(row)
            sims.append((float(q @ row / denom) if denom else 0.0, int(lab)))
        sims.sort(key=lambda t: -t[0])
        votes: dict[int, list[float]] = {}
        for s, lab in sims[: min(k, len(sims))]:
            votes.setdefault(lab, []).append(s)
        out.append(max(votes, key=lambda c: (len(votes[c]), sum(votes[c]))))
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3, 4, 5, 50])
def test_knn_matches_reference(k: int) -> None:
    rng = np.random.default_rng(k)
    train = rng.normal(size=(40, 6))
    labels = rng.integers(0, 4, 40)
    test = rng.normal(size=(25, 6))
    np.testing.assert_array_equal(
        knn_predict(train, labels, test, k), knn_reference(train, labels, test, k)
    )


def test_knn_tie_goes_to_the_nearer_class() -> None:
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 1])
    # two neighbours, one vote each: the nearer one decides
    assert knn_predict(train, labels, np.array([[0.2, 1.0], [1.0, 0.3]]), k=2).tolist() == [1, 0]


def test_knn_in_chunks_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    train, labels = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    test = rng.normal(size=(2500, 4))  # more than one chunk of 1024
    np.testing.assert_array_equal(
        knn_predict(train, labels, test, 3), knn_reference(train, labels, test[:3000], 3)
    )


def test_linear_probe_separates_separable_classes() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=5.0, size=(3, 10))
    labels = np.repeat(np.arange(3), 20)
    feats = centres[labels] + rng.normal(size=(60, 10))
    test_labels = np.repeat(np.arange(3), 10)
    test = centres[test_labels] + rng.normal(size=(30, 10))
    pred = linear_probe(feats, labels, test)
    assert accuracy(pred, test_labels) == 100.0
    # and does no better than chance where the features say nothing about the class
    noise = rng.normal(size=(300, 10))
    blind = linear_probe(noise[:150], rng.integers(0, 3, 150), noise[150:])
    assert accuracy(blind, rng.integers(0, 3, 150)) < 50


def test_accuracy() -> None:
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 0, 3, 0])) == 50.0
