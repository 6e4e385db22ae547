"""Finding and decoding the videos of a collection (``tcdn.data.video``), good input and bad."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, write_audio_only
from tcdn.data.video import FrameSet, decode_video, find_videos, load_frames
from tcdn.errors import TcdnError


def _labels_rows(root: Path) -> list[dict[str, str]]:
    with (root / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# -- find_videos ---------------------------------------------------------------------------------
def test_find_videos_from_class_folders(folder_collection: Path) -> None:
    entries = find_videos(folder_collection)
    names = [e.name for e in entries]
    assert names == sorted(names)
    assert len(entries) == TINY.n_classes * TINY.videos_per_class
    assert all(e.path.suffix == ".mp4" and e.path.is_file() for e in entries)
    # notes.txt and README.md are not videos
    assert not any(n.endswith((".txt", ".md")) for n in names)
    for e in entries:
        assert e.label == e.name.split("/")[0]
    assert {e.label for e in entries} == {f"class{k:02d}" for k in range(TINY.n_classes)}


def test_find_videos_from_labels_csv(synthetic_collection: Path) -> None:
    entries = find_videos(synthetic_collection)
    rows = _labels_rows(synthetic_collection)
    assert [(e.name, e.label) for e in entries] == [(r["video"], r["label"]) for r in rows]
    assert all(e.path == synthetic_collection / e.name for e in entries)


def test_labels_csv_overrides_folder_names(folder_collection: Path, tmp_path: Path) -> None:
    root = tmp_path / "videos"
    shutil.copytree(folder_collection, root)
    _write_csv(
        root / "labels.csv",
        ["video", "label"],
        [["class00/class00_v00.mp4", "run"], ["class01/class01_v01.mp4", "jump"]],
    )
    entries = find_videos(root)
    # only the videos the CSV names, with the CSV's labels
    assert [(e.name, e.label) for e in entries] == [
        ("class00/class00_v00.mp4", "run"),
        ("class01/class01_v01.mp4", "jump"),
    ]


def test_find_videos_explicit_labels_csv(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "my_labels.csv",
        ["video", "label", "comment"],
        [["class02/class02_v00.mp4", "c", "x"], ["class00/class00_v01.mp4", "", "unlabelled"]],
    )
    entries = find_videos(folder_collection, labels_csv=csv_path)
    assert [(e.name, e.label) for e in entries] == [
        ("class02/class02_v00.mp4", "c"),
        ("class00/class00_v01.mp4", None),  # an empty label is no label
    ]


def test_unlabelled_folder(make_video, tmp_path: Path) -> None:
    make_video(tmp_path / "b.mp4", 4)
    make_video(tmp_path / "a.MOV", 3)  # extensions are matched case-insensitively
    (tmp_path / "notes.txt").write_text("hello")
    entries = find_videos(tmp_path)
    assert [e.name for e in entries] == ["a.MOV", "b.mp4"]
    assert all(e.label is None for e in entries)

    frames = load_frames(tmp_path, size=16, progress=False)
    assert not frames.has_labels
    assert frames.class_names == []
    with pytest.raises(TcdnError, match="no label"):
        frames.frame_labels()


# -- find_videos: bad input ----------------------------------------------------------------------
def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(TcdnError, match="does not exist") as info:
        find_videos(missing)
    assert str(missing) in str(info.value)


def test_path_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "video.mp4"
    f.write_bytes(b"x")
    with pytest.raises(TcdnError, match="is not a folder") as info:
        find_videos(f)
    assert str(f) in str(info.value)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("only notes")
    (tmp_path / "sub").mkdir()
    with pytest.raises(TcdnError, match="no video found") as info:
        find_videos(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert ".mp4" in str(info.value)  # says what it looked for


def test_explicit_labels_csv_missing(folder_collection: Path, tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match=r"does not exist \(option --labels\)"):
        find_videos(folder_collection, labels_csv=tmp_path / "absent.csv")


def test_csv_naming_missing_file(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "labels.csv",
        ["video", "label"],
        [["class00/class00_v00.mp4", "a"], ["class09/ghost.mp4", "b"]],
    )
    with pytest.raises(TcdnError) as info:
        find_videos(folder_collection, labels_csv=csv_path)
    msg = str(info.value)
    assert "class09/ghost.mp4" in msg
    assert "line 3" in msg
    assert "class00_v00" not in msg  # only the missing one is named


def test_csv_without_required_columns(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "labels.csv", ["file", "class"], [["class00/class00_v00.mp4", "a"]]
    )
    with pytest.raises(TcdnError, match="'video' and 'label'") as info:
        find_videos(folder_collection, labels_csv=csv_path)
    assert "file, class" in str(info.value)  # shows what it found


def test_csv_header_only(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "labels.csv", ["video", "label"], [])
    with pytest.raises(TcdnError, match="no rows"):
        find_videos(folder_collection, labels_csv=csv_path)


def test_csv_duplicate_rows(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "labels.csv",
        ["video", "label"],
        [
            ["class00/class00_v00.mp4", "a"],
            ["class01/class01_v00.mp4", "b"],
            ["class00/class00_v00.mp4", "a"],
        ],
    )
    with pytest.raises(TcdnError, match="same video twice") as info:
        find_videos(folder_collection, labels_csv=csv_path)
    assert "class00/class00_v00.mp4" in str(info.value)
    assert "class01" not in str(info.value)


def test_csv_same_video_under_two_spellings(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "labels.csv",
        ["video", "label"],
        [["class00/class00_v00.mp4", "a"], ["./class00/class00_v00.mp4", "a"]],
    )
    with pytest.raises(TcdnError, match="same video twice"):
        find_videos(folder_collection, labels_csv=csv_path)


def test_csv_with_byte_order_mark(folder_collection: Path, tmp_path: Path) -> None:
    # A CSV saved by a spreadsheet program starts with a UTF-8 byte-order mark.
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("video,label\nclass00/class00_v00.mp4,a\n", encoding="utf-8-sig")
    entries = find_videos(folder_collection, labels_csv=csv_path)
    assert [(e.name, e.label) for e in entries] == [("class00/class00_v00.mp4", "a")]


def test_hidden_partial_files_are_not_videos(folder_collection: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(folder_collection, copy)
    real = next(copy.rglob("*.mp4"))
    shutil.copy(real, real.with_name(".half.partial.mp4"))
    names = [e.name for e in find_videos(copy)]
    assert not any(".partial" in n for n in names)
    assert len(names) == len(find_videos(folder_collection))


def test_csv_empty_video_field(folder_collection: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(tmp_path / "labels.csv", ["video", "label"], [["", "a"]])
    with pytest.raises(TcdnError, match="line 2: empty 'video' field"):
        find_videos(folder_collection, labels_csv=csv_path)


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


# -- load_frames ---------------------------------------------------------------------------------
def test_load_frames_index_is_consistent(synthetic_collection: Path) -> None:
    fs = load_frames(synthetic_collection, size=32, progress=False)
    rows = _labels_rows(synthetic_collection)
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


def test_subset_keeps_videos_in_given_order(synthetic_collection: Path) -> None:
    fs = load_frames(synthetic_collection, size=16, progress=False)
    sub = fs.subset([4, 0])
    assert [v.name for v in sub.videos] == [fs.videos[4].name, fs.videos[0].name]
    assert sub.lengths.tolist() == [fs.lengths[4], fs.lengths[0]]
    np.testing.assert_array_equal(
        sub.frames[: sub.lengths[0]], fs.frames[fs.offsets[4] : fs.offsets[5]]
    )
    np.testing.assert_array_equal(sub.frames[sub.lengths[0] :], fs.frames[: fs.offsets[1]])
    assert sub.frame_index[: sub.lengths[0]].tolist() == list(range(fs.lengths[4]))
    # labels follow the videos: video 4 is class02, video 0 is class00
    assert sub.class_names == ["class00", "class02"]
    assert sub.frame_labels()[0] == 1 and sub.frame_labels()[-1] == 0

    empty = fs.subset([])
    assert isinstance(empty, FrameSet)
    assert empty.frames.shape == (0, 16, 16, 3)
    assert empty.offsets.tolist() == [0]


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
