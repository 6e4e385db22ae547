"""Writing a frame store (``tcdn.data.store.writer``): resume, re-runs, bad files, settings, workers."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tcdn.data.collection import VideoEntry, find_videos
from tcdn.data.decode import DecodeSettings, decode_video
from tcdn.data.store import writer as ingest_mod
from tcdn.data.store.manifest import MANIFEST, read_manifest
from tcdn.data.store.reader import open_store
from tcdn.data.store.writer import ingest
from tcdn.data.synthetic import write_video
from tcdn.errors import TcdnError
from tests.conftest import STORE_SIZE, store_settings


# -- decode settings ------------------------------------------------------------------------------
def test_stride_fps_and_max_frames(make_video: Callable[..., Path], tmp_path: Path) -> None:
    video = make_video(tmp_path / "v" / "a.mp4", 12)  # 25 fps
    full = decode_video(video, size=STORE_SIZE)
    np.testing.assert_array_equal(decode_video(video, size=STORE_SIZE, stride=3), full[::3])
    np.testing.assert_array_equal(decode_video(video, size=STORE_SIZE, fps=5), full[::5])
    np.testing.assert_array_equal(
        decode_video(video, size=STORE_SIZE, stride=2, max_frames=4), full[:8:2]
    )
    ingest(tmp_path / "v", tmp_path / "s", store_settings(stride=3), progress=False)
    np.testing.assert_array_equal(open_store(tmp_path / "s").frames[:], full[::3])
    with pytest.raises(TcdnError, match="not both"):
        DecodeSettings.make(STORE_SIZE, stride=2, fps=5.0)


def test_crop_keeps_the_centre(tmp_path: Path) -> None:
    frames = np.zeros((3, 32, 64, 3), np.uint8)  # 64 wide, 32 high
    frames[:, :, :16] = 255  # a white band on the left quarter only
    write_video(tmp_path / "wide.mp4", frames)
    crop = decode_video(tmp_path / "wide.mp4", size=16, resize="crop")
    squash = decode_video(tmp_path / "wide.mp4", size=16, resize="squash")
    assert crop.shape == squash.shape == (3, 16, 16, 3)
    assert crop[:, :, :3].mean() < 40  # the centre: the band is cut off
    assert squash[:, :, :3].mean() > 200  # the whole frame: the band is kept
    with pytest.raises(TcdnError, match="squash, crop"):
        DecodeSettings.make(16, resize="stretch")


def test_frame_image_folders_are_videos(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    want = {}
    for label, name in (("walk", "v_walk_01"), ("run", "v_run_01")):
        arr = rng.integers(0, 256, (4, STORE_SIZE, STORE_SIZE, 3), dtype=np.uint8)
        folder = tmp_path / "frames" / label / name
        folder.mkdir(parents=True)
        for t, a in enumerate(arr):
            Image.fromarray(a).save(folder / f"{t + 1:05d}.png")
        want[f"{label}/{name}"] = arr
    entries = find_videos(tmp_path / "frames")
    assert [(e.name, e.label) for e in entries] == [
        ("run/v_run_01", "run"),
        ("walk/v_walk_01", "walk"),
    ]
    ingest(entries, tmp_path / "s", store_settings(), progress=False)
    fs = open_store(tmp_path / "s")
    for v, e in enumerate(fs.videos):
        np.testing.assert_array_equal(fs.frames[fs.offsets[v] : fs.offsets[v + 1]], want[e.name])


# -- resume, changes, interruption ----------------------------------------------------------------
def _copy_collection(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".tcdn-synthetic"))
    return dst


def test_rerun_skips_done_videos_and_redoes_changed_ones(
    synthetic_collection: Path, tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    videos = _copy_collection(synthetic_collection, tmp_path / "videos")
    (videos / "labels.csv").unlink()
    out = tmp_path / "store"
    first = ingest(videos, out, store_settings(), progress=False)
    assert (first.decoded, first.reused) == (6, 0)
    again = ingest(videos, out, store_settings(), progress=False)
    assert (again.decoded, again.reused) == (0, 6)

    changed = videos / "class01" / "class01_v00.mp4"
    make_video(changed, 5, size=32, seed=7)
    st_ = changed.stat()
    os.utime(changed, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    (videos / "class02" / "class02_v01.mp4").unlink()
    third = ingest(videos, out, store_settings(), progress=False)
    assert (third.decoded, third.reused, third.n_videos) == (1, 4, 5)
    fs = open_store(out)
    v = [e.name for e in fs.videos].index("class01/class01_v00.mp4")
    np.testing.assert_array_equal(
        fs.frames[fs.offsets[v] : fs.offsets[v + 1]], decode_video(changed, size=STORE_SIZE)
    )
    assert len(list((out / "data").glob("*.u8"))) == 5  # the removed video's file is gone
    assert len(list((out / "data").glob("*.pos"))) == 5


def test_other_settings_refuse_to_mix(raw_store: Path, synthetic_collection: Path) -> None:
    with pytest.raises(TcdnError, match="other settings"):
        ingest(synthetic_collection, raw_store, store_settings("jpeg"), progress=False)


def test_interrupted_ingest_reads_incomplete_and_resumes(
    synthetic_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_mod._encode_video
    calls = []

    def crash_on_third(*args: object) -> dict[str, object]:
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_mod, "_encode_video", crash_on_third)
    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        ingest(synthetic_collection, out, store_settings(), progress=False)
    m = read_manifest(out)
    assert m["complete"] is False and len(m["videos"]) == 2
    with pytest.raises(TcdnError, match="incomplete"):
        open_store(out)
    monkeypatch.setattr(ingest_mod, "_encode_video", real)
    report = ingest(synthetic_collection, out, store_settings(), progress=False)
    assert (report.decoded, report.reused) == (4, 2)
    assert open_store(out).frames.shape[0] == report.n_frames


def test_parallel_ingest_writes_the_same_store(
    synthetic_collection: Path, raw_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "par"
    ingest(synthetic_collection, out, store_settings(), workers=2, progress=False)
    for v in read_manifest(out)["videos"]:
        a = (out / "data" / f"{v['key']}.u8").read_bytes()
        assert a == (raw_store / "data" / f"{v['key']}.u8").read_bytes()


def test_bad_files_are_skipped_and_named(
    broken_collection: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, why = broken_collection
    entries = find_videos(root)
    gone = root / "bad" / "deleted.mp4"
    entries.append(VideoEntry(path=gone, name="bad/deleted.mp4", label="bad"))  # unreadable path
    why["bad/deleted.mp4"] = "cannot read"
    report = ingest(entries, tmp_path / "s", store_settings(), progress=False)
    for name, text in why.items():
        assert text in report.bad[name], (name, report.bad[name])
    # a truncated file keeps the frames before the cut, or is bad: never an exception
    assert set(report.bad) - set(why) <= {"bad/truncated.mp4"}
    m = read_manifest(tmp_path / "s")
    assert {b["name"] for b in m["bad"]} == set(report.bad)
    fs = open_store(tmp_path / "s")
    assert set(fs.skipped) == set(report.bad)
    assert {"good/a.mp4", "good/b.mp4"} <= {v.name for v in fs.videos}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod-000 file anyway")
def test_unreadable_file_is_bad(make_video: Callable[..., Path], tmp_path: Path) -> None:
    make_video(tmp_path / "v" / "a.mp4", 4)
    locked = make_video(tmp_path / "v" / "b.mp4", 4)
    locked.chmod(0)
    try:
        report = ingest(tmp_path / "v", tmp_path / "s", store_settings(), progress=False)
    finally:
        locked.chmod(0o644)
    assert list(report.bad) == ["b.mp4"]


def test_empty_and_duplicate_collections(make_video: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="empty"):
        ingest([], tmp_path / "s", store_settings(), progress=False)
    a = make_video(tmp_path / "a.mp4", 3)
    b = make_video(tmp_path / "b.mp4", 3)
    twice = [VideoEntry(a, "clip.mp4"), VideoEntry(b, "clip.mp4")]
    with pytest.raises(TcdnError, match=r"share the name 'clip\.mp4'"):
        ingest(twice, tmp_path / "s", store_settings(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TcdnError, match="no video found"):
        ingest(tmp_path / "empty", tmp_path / "s2", store_settings(), progress=False)


def test_all_bad_leaves_no_complete_store(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(TcdnError, match="none of the 1 video"):
        ingest(tmp_path / "v", tmp_path / "s", store_settings(), progress=False)
    assert json.loads((tmp_path / "s" / MANIFEST).read_text())["complete"] is False


# -- where each stored frame sits in its source video (store version 2) ----------------------------
def test_store_records_source_frame_and_time(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    make_video(tmp_path / "v" / "a.mp4", 12)  # 25 fps: frame i at i / 25 s
    make_video(tmp_path / "v" / "b.mp4", 7, seed=1)
    for decode, want in (
        ({"stride": 3}, [0, 3, 6, 9, 0, 3, 6]),
        ({"fps": 5.0}, [0, 5, 10, 0, 5]),
        ({"stride": 2, "max_frames": 2}, [0, 2, 0, 2]),
    ):
        out = tmp_path / f"s{len(want)}"
        ingest(tmp_path / "v", out, store_settings(**decode), progress=False)
        fs = open_store(out)
        assert fs.source_frame.tolist() == want, decode
        np.testing.assert_allclose(fs.seconds, np.array(want) / 25, atol=1e-6)
        assert fs.frame_index.tolist() != want  # the store's own row numbers differ
        np.testing.assert_array_equal(
            fs.locate(np.array(["b.mp4"]), np.array([want[-1]])), [len(want) - 1]
        )
        assert fs.locate(np.array(["b.mp4", "zz"]), np.array([1, 0])).tolist() == [-1, -1]


def test_version_1_store_positions_are_derived(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    """A store written before version 2 has no .pos files: with a stride the source index
    follows from it, the time is unknown; an ingest re-decodes its videos to upgrade it."""
    make_video(tmp_path / "v" / "a.mp4", 9)
    out = tmp_path / "s"
    ingest(tmp_path / "v", out, store_settings(stride=4), progress=False)
    manifest = read_manifest(out)
    manifest["version"] = 1
    (out / MANIFEST).write_text(json.dumps(manifest))
    for pos in (out / "data").glob("*.pos"):
        pos.unlink()
    fs = open_store(out)
    assert fs.source_frame.tolist() == [0, 4, 8]
    assert np.isnan(fs.seconds).all()
    report = ingest(tmp_path / "v", out, store_settings(stride=4), progress=False)
    assert report.decoded == 1 and read_manifest(out)["version"] == 2
    np.testing.assert_allclose(open_store(out).seconds, [0, 0.16, 0.32], atol=1e-6)


def test_image_folder_frames_have_no_time(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "c" / "walk" / "v1"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i:05d}.png")
    ingest(tmp_path / "c", tmp_path / "s", store_settings(stride=2), progress=False)
    fs = open_store(tmp_path / "s")
    assert fs.source_frame.tolist() == [0, 2, 4] and np.isnan(fs.seconds).all()
