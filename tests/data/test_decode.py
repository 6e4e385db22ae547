"""Decoding one video (``tcdn.data.decode``), good files and broken ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcdn.data.decode import decode_video
from tcdn.errors import TcdnError
from tests.conftest import write_audio_only


# -- decode_video --------------------------------------------------------------------------------
def test_decode_video_shape_and_dtype(sample_video: Path) -> None:
    arr = decode_video(sample_video, size=24)
    assert arr.dtype == np.uint8
    assert arr.shape == (28, 24, 24, 3)  # 28 frames: fixed by TINY's seed
    assert arr.std() > 5  # real content, not a blank frame


def test_decode_video_rectangular_size_and_max_frames(sample_video: Path) -> None:
    arr = decode_video(sample_video, size=(20, 36), max_frames=5)
    assert arr.shape == (5, 20, 36, 3)
    full = decode_video(sample_video, size=(20, 36))
    np.testing.assert_array_equal(arr, full[:5])


def test_decode_video_matches_written_frames(tmp_path: Path) -> None:
    from tcdn.data.synthetic import write_video

    frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    for t in range(6):
        frames[t, :, : 4 * (t + 1)] = 200  # a bar that grows
    path = tmp_path / "bar.mp4"
    write_video(path, frames)
    got = decode_video(path, size=32)
    assert got.shape == frames.shape
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 10  # lossy codec, close


def test_decode_random_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(TcdnError) as info:
        decode_video(bad)
    assert str(bad) in str(info.value)


def test_decode_text_file_named_mp4(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(TcdnError, match=r"notes\.mp4"):
        decode_video(bad)


def test_decode_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    with pytest.raises(TcdnError, match=r"empty\.mp4"):
        decode_video(bad)


def test_decode_truncated_video(sample_video: Path, tmp_path: Path) -> None:
    data = sample_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        arr = decode_video(cut, size=32)
    except TcdnError as exc:  # any other exception type fails the test
        assert "cut.mp4" in str(exc)
    else:
        assert arr.dtype == np.uint8
        assert 1 <= len(arr) < 28


def test_decode_audio_only(tmp_path: Path) -> None:
    path = write_audio_only(tmp_path / "song.mp4")
    with pytest.raises(TcdnError, match="no video stream") as info:
        decode_video(path)
    assert "song.mp4" in str(info.value)
