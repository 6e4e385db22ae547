"""Feature extraction streams a frame store batch by batch and gives what memory gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tcdn.data.frameset import FrameSet
from tcdn.data.store.reader import open_store


def test_features_stream_a_store_like_memory(raw_store: Path, reference: np.ndarray) -> None:
    from tcdn.features.extract import FrameFeaturizer

    fs = open_store(raw_store)
    rows = np.arange(0, len(reference), 3)
    lazy = FrameFeaturizer(fs, rows, None, seed=0, progress=False)
    assert not isinstance(lazy.x, np.ndarray)  # read batch by batch, not loaded
    in_memory = FrameSet(frames=reference, videos=fs.videos, offsets=fs.offsets)
    eager = FrameFeaturizer(in_memory, rows, None, seed=0, progress=False)
    np.testing.assert_array_equal(np.asarray(lazy.x), reference[rows])
    np.testing.assert_allclose(lazy.mean, eager.mean, rtol=1e-6)
    np.testing.assert_allclose(
        lazy.features("raw_pixels"), eager.features("raw_pixels"), rtol=1e-5, atol=1e-5
    )
