"""discovery/results.py: the per-row distances written beside the clusters."""

from __future__ import annotations

import numpy as np

from tcdn.discovery.results import centre_distances


class _ChunksOnly:
    """A float16 array that hands out at most ``limit`` rows at a time (as a memory map would be
    read chunk by chunk) and fails if asked for more: the whole array is never copied."""

    def __init__(self, x: np.ndarray, limit: int) -> None:
        self.x, self.limit = x, limit
        self.ndim, self.shape = x.ndim, x.shape

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: slice) -> np.ndarray:
        part = self.x[key]
        assert len(part) <= self.limit, f"{len(part)} rows read at once"
        return part


def test_centre_distances_match_the_plain_formula_chunk_by_chunk() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(103, 9)).astype(np.float16)
    clusters = rng.integers(0, 5, len(x))
    x64 = x.astype(np.float64)
    centres = np.stack([x64[clusters == c].mean(0) for c in range(5)])
    want = np.linalg.norm(x64 - centres[clusters], axis=1)
    np.testing.assert_allclose(centre_distances(x, clusters), want, rtol=1e-10)
    got = centre_distances(_ChunksOnly(x, 16), clusters, chunk=16)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_centre_distances_without_feature_columns_are_nan() -> None:
    assert np.isnan(centre_distances(np.zeros((4, 0), np.float32), np.zeros(4, int))).all()
