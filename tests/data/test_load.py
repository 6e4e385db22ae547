"""A folder of videos decoded into memory (``tcdn.data.load``), good input and bad."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcdn.data.decode import decode_video
from tcdn.data.load import load_frames
from tcdn.errors import TcdnError
from tests.conftest import labels_rows, write_audio_only


# -- load_frames ---------------------------------------------------------------------------------
def test_load_frames_index_is_consistent(synthetic_collection: Path) -> None:
    fs = load_frames(synthetic_collection, size=32, progress=False)
    rows = labels_rows(synthetic_collection)
    lengths = [int(r["frames"]) for r in rows]
    n = sum(lengths)

    assert fs.frames.shape == (n, 32, 32, 3)
    assert fs.frames.dtype == np.uint8
    assert fs.offsets.tolist() == [0, *np.cumsum(lengths).tolist()]
    assert fs.lengths.tolist() == lengths
    assert fs.skipped == []
    assert fs.has_labels
    assert fs.class_names == ["class00", "class01", "class02"]

    vi, fi, labels = fs.video_index, fs.frame_index, fs.frame_labels()
    assert vi.shape == fi.shape == labels.shape == (n,)
    for v, entry in enumerate(fs.videos):
        sl = slice(fs.offsets[v], fs.offsets[v + 1])
        assert (vi[sl] == v).all()
        assert fi[sl].tolist() == list(range(lengths[v]))
        assert (labels[sl] == fs.class_names.index(entry.label)).all()

    # frames are the decoded videos, in order
    second = decode_video(fs.videos[1].path, size=32)
    np.testing.assert_array_equal(fs.frames[fs.offsets[1] : fs.offsets[2]], second)


def test_load_frames_max_frames(synthetic_collection: Path) -> None:
    fs = load_frames(synthetic_collection, size=16, max_frames=5, progress=False)
    assert fs.lengths.tolist() == [5] * len(fs.videos)
    assert fs.frames.shape == (5 * len(fs.videos), 16, 16, 3)


def test_load_frames_bad_file_stops_and_names_it(make_video, tmp_path: Path) -> None:
    make_video(tmp_path / "good" / "a.mp4", 4)
    bad = tmp_path / "good" / "b.mp4"
    bad.write_bytes(np.random.default_rng(1).bytes(3000))
    with pytest.raises(TcdnError) as info:
        load_frames(tmp_path, size=16, progress=False)
    assert "b.mp4" in str(info.value)
    assert "--skip-bad" in str(info.value)


def test_load_frames_skip_bad(make_video, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_video(tmp_path / "x" / "a.mp4", 4)
    (tmp_path / "x" / "b.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    write_audio_only(tmp_path / "y" / "c.mp4")
    make_video(tmp_path / "y" / "d.mp4", 3)
    with caplog.at_level("WARNING", logger="tcdn"):
        fs = load_frames(tmp_path, size=16, skip_bad=True, progress=False)
    assert [v.name for v in fs.videos] == ["x/a.mp4", "y/d.mp4"]
    assert fs.skipped == ["x/b.mp4", "y/c.mp4"]
    assert fs.lengths.tolist() == [4, 3]
    assert "b.mp4" in caplog.text and "c.mp4" in caplog.text


def test_load_frames_all_bad(tmp_path: Path) -> None:
    (tmp_path / "b.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(TcdnError, match="none of the 1 video"):
        load_frames(tmp_path, size=16, skip_bad=True, progress=False)
