"""Finding a collection's videos and labels (``tcdn.data.collection``), good input and bad."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tcdn.data.collection import find_videos
from tcdn.data.load import load_frames
from tcdn.errors import TcdnError
from tests.conftest import TINY, labels_rows


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
    rows = labels_rows(synthetic_collection)
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
