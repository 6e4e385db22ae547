"""A collection's frames and their index (``tcdn.data.frameset``): rows to evaluate, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcdn.data.collection import VideoEntry
from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.extract import FrameFeaturizer
from tcdn.features.featureset import FeatureSet


def test_feature_rows_match_evaluation_rows(train_frames: FrameSet) -> None:
    index = FrameFeaturizer(train_frames, np.arange(len(train_frames.frames)), None).index
    for stride, most in [(1, None), (4, 3), (5, None), (1, 2)]:
        np.testing.assert_array_equal(index.rows(stride, most), train_frames.rows(stride, most))
    # rows need not be grouped by video: counted per video, in the file's order
    fs = FeatureSet(np.zeros((6, 1)), list("ababab"), range(6), [""] * 6)
    assert fs.rows(2).tolist() == [0, 1, 4, 5]
    assert fs.rows(1, 2).tolist() == [0, 1, 2, 3]


def test_rows_and_index_match_a_naive_loop() -> None:
    lengths = [5, 1, 7, 3]
    videos = [VideoEntry(Path(f"v{i}.mp4"), f"v{i}", "ab"[i % 2]) for i in range(len(lengths))]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frames = FrameSet(np.zeros((offsets[-1], 2, 2, 3), np.uint8), videos, offsets)
    naive_video, naive_frame = [], []
    for v, n in enumerate(lengths):
        naive_video += [v] * n
        naive_frame += list(range(n))
    assert frames.video_index.tolist() == naive_video
    assert frames.frame_index.tolist() == naive_frame
    assert frames.frame_labels().tolist() == [v % 2 for v in naive_video]
    for stride, most in [(1, None), (2, None), (3, 1), (2, 2)]:
        want = [
            i
            for i, t in enumerate(naive_frame)
            if t % stride == 0 and (most is None or t // stride < most)
        ]
        assert frames.rows(stride, most).tolist() == want
    with pytest.raises(TcdnError, match="--frame-stride"):
        frames.rows(0)
