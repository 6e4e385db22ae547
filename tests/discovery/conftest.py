"""Feature sets with known clusters, shared by the clustering tests."""

from __future__ import annotations

import numpy as np


def blobs(n_per: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 20.0, 5.0]])
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per, 3)) for c in centres])
    y = np.repeat(np.arange(3), n_per)
    return x, y


# -- clustering at scale: kNN graph, sparse spectral, eigengap -----------------------------------
def gauss_blobs(n_per: int, k: int, dim: int = 16, seed: int = 0, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)
