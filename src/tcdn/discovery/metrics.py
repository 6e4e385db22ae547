"""Scores of a clustering against the true classes (SPEC §5), as plain functions in the style of
:mod:`sklearn.metrics.cluster`.

The main one is the paper's conditional entropy ``H(X | Y)`` of the true class ``X`` given the
cluster ``Y``, in bits: 0 when every cluster holds one class, ``log2(#classes)`` for a random
assignment of balanced classes.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, homogeneity_score, normalized_mutual_info_score


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
