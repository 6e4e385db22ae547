"""Classifiers on frozen features: a linear probe (logistic regression) and k-nearest neighbours.

Both are quick checks of what a network's features already separate, without training the
network. Neither sees the test labels.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)


def linear_probe(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    *,
    c: float = 1.0,
    max_iter: int = 2000,
) -> np.ndarray:
    """Predicted classes of ``test`` by a multinomial logistic regression (L2, inverse strength
    ``c``, L-BFGS) fitted on ``train``; both standardised with the training rows' mean and std."""
    scaler = StandardScaler().fit(train)
    model = LogisticRegression(C=c, max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(scaler.transform(train), train_labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("the linear probe did not converge in %d iterations", max_iter)
    return np.asarray(model.predict(scaler.transform(test)), dtype=np.int64)


def knn_predict(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, k: int = 5
) -> np.ndarray:
    """Predicted classes of ``test`` by a vote of its ``k`` nearest training rows (cosine
    similarity of the L2-normalised rows; ``k`` is capped at the number of training rows).

    Each neighbour has one vote; a tie between classes goes to the one whose tied neighbours have
    the larger summed similarity."""
    train_labels = np.asarray(train_labels, dtype=np.int64)
    k = min(k, len(train))
    a = _unit(train)
    b = _unit(test)
    n_classes = int(train_labels.max()) + 1
    out = np.empty(len(b), dtype=np.int64)
    for s in range(0, len(b), 1024):  # bounded memory: 1024 x N similarities at a time
        sim = b[s : s + 1024] @ a.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        near_sim = np.take_along_axis(sim, nearest, axis=1)
        near_lab = train_labels[nearest]
        votes = np.zeros((len(sim), n_classes))
        weight = np.zeros((len(sim), n_classes))
        rows = np.arange(len(sim))[:, None]
        np.add.at(votes, (rows, near_lab), 1.0)
        np.add.at(weight, (rows, near_lab), near_sim)
        # most votes first; among equal votes, the larger summed similarity: a class's summed
        # similarity lies in [-k, k], so one vote, worth 2k + 1, outweighs any difference of them
        out[s : s + len(sim)] = np.argmax(votes * (2 * k + 1) + weight, axis=1)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Percentage of ``pred`` equal to ``labels``."""
    return float(100.0 * np.mean(np.asarray(pred) == np.asarray(labels)))
