"""The frame store: ingest (resume, bad files, settings) and reads checked against in-memory frames."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TRAIN_SIZE, write_audio_only
from tcdn.cli import main
from tcdn.data import store as store_mod
from tcdn.data.store import (
    MANIFEST,
    StoreSettings,
    ingest,
    ingest_folder,
    open_store,
    read_manifest,
)
from tcdn.data.synthetic import write_video
from tcdn.data.video import DecodeSettings, FrameSet, VideoEntry, decode_video, find_videos
from tcdn.errors import TcdnError

SIZE = 24


def _settings(storage: str = "raw", **decode: object) -> StoreSettings:
    return StoreSettings(decode=DecodeSettings.make(SIZE, **decode), storage=storage)  # type: ignore[arg-type]


def _naive_frames(entries: list[VideoEntry], **decode: object) -> np.ndarray:
    """Obvious reference: decode each video on its own and stack them."""
    return np.concatenate([decode_video(e.path, size=SIZE, **decode) for e in entries])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def raw_store(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw") / "store"
    ingest_folder(synthetic_collection, out, _settings("raw"), progress=False)
    return out


@pytest.fixture(scope="module")
def jpeg_store(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jpeg") / "store"
    ingest_folder(synthetic_collection, out, _settings("jpeg"), progress=False)
    return out


@pytest.fixture(scope="module")
def reference(synthetic_collection: Path) -> np.ndarray:
    return _naive_frames(find_videos(synthetic_collection))


# -- what a store holds ---------------------------------------------------------------------------
def test_raw_store_holds_the_decoded_frames(
    raw_store: Path, synthetic_collection: Path, reference: np.ndarray
) -> None:
    fs = open_store(raw_store)
    entries = find_videos(synthetic_collection)
    assert isinstance(fs, FrameSet)
    assert [v.name for v in fs.videos] == [e.name for e in entries]
    assert [v.label for v in fs.videos] == [e.label for e in entries]
    assert fs.frames.shape == reference.shape and fs.frames.dtype == np.uint8
    assert len(fs.frames) == len(reference)
    np.testing.assert_array_equal(fs.frames[:], reference)
    lengths = [len(decode_video(e.path, size=SIZE)) for e in entries]
    assert fs.offsets.tolist() == [0, *np.cumsum(lengths).tolist()]
    m = read_manifest(raw_store)
    assert m["complete"] is True and m["bad"] == []
    assert m["settings"]["decode"]["size"] == [SIZE, SIZE]
    for v, e in zip(m["videos"], entries, strict=True):
        assert v["source"] == str(e.path.resolve())
        assert v["file_size"] == e.path.stat().st_size
        assert v["mtime_ns"] == e.path.stat().st_mtime_ns
        assert v["bytes"] == v["n_frames"] * SIZE * SIZE * 3  # raw: H*W*3 bytes a frame
    assert not [p for p in (raw_store / "data").iterdir() if p.name.startswith(".")]


def test_jpeg_store_is_close_and_smaller(
    jpeg_store: Path, raw_store: Path, reference: np.ndarray
) -> None:
    fs = open_store(jpeg_store)
    got = fs.frames[:]
    assert got.shape == reference.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - reference.astype(int)).mean() < 8  # lossy but close
    jpeg_bytes = sum(v["bytes"] for v in read_manifest(jpeg_store)["videos"])
    raw_bytes = sum(v["bytes"] for v in read_manifest(raw_store)["videos"])
    assert (
        jpeg_bytes < raw_bytes
    )  # (a JPEG header is ~600 B: the ratio is measured at 227 px in benchmarks/)


@pytest.mark.parametrize("threads", [1, 3])
def test_jpeg_reads_match_one_frame_at_a_time(jpeg_store: Path, threads: int) -> None:
    fs = open_store(jpeg_store, threads=threads)
    one_by_one = np.stack([fs.frames[i] for i in range(len(fs.frames))])
    idx = np.random.default_rng(0).integers(0, len(fs.frames), size=64)  # > 16: the threaded path
    np.testing.assert_array_equal(fs.frames[idx], one_by_one[idx])


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_store_indexing_matches_numpy(
    raw_store: Path, jpeg_store: Path, reference: np.ndarray, data: st.DataObject
) -> None:
    n = len(reference)
    raw = open_store(raw_store).frames
    jpeg = open_store(jpeg_store, threads=2).frames
    jpeg_all = jpeg[:]
    kind = data.draw(st.sampled_from(["int", "slice", "array", "array2d", "bool"]))
    index: object
    if kind == "int":
        index = data.draw(st.integers(-n, n - 1))
    elif kind == "slice":
        index = slice(
            data.draw(st.none() | st.integers(-n - 2, n + 2)),
            data.draw(st.none() | st.integers(-n - 2, n + 2)),
            data.draw(st.none() | st.integers(1, 7)),
        )
    elif kind == "array":
        index = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=40)), dtype=np.int64)
    elif kind == "array2d":
        index = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=8, max_size=8)))
        index = index.reshape(2, 4)
    else:
        index = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    np.testing.assert_array_equal(raw[index], reference[index])
    np.testing.assert_array_equal(jpeg[index], jpeg_all[index])


def test_out_of_range_and_float_index(raw_store: Path) -> None:
    frames = open_store(raw_store).frames
    with pytest.raises(IndexError):
        frames[len(frames)]
    with pytest.raises(IndexError):
        frames[np.array([0, len(frames)])]
    with pytest.raises(IndexError):
        frames[np.array([0.5])]


def test_open_reads_nothing_until_indexed_and_pickles(raw_store: Path) -> None:
    fs = open_store(raw_store)
    frames = fs.frames
    assert frames._maps == {}  # type: ignore[attr-defined]
    first = frames[int(fs.offsets[2])]
    assert list(frames._maps) == [2]  # type: ignore[attr-defined]
    clone = pickle.loads(pickle.dumps(frames))
    assert clone._maps == {}  # type: ignore[attr-defined]
    np.testing.assert_array_equal(clone[int(fs.offsets[2])], first)


def test_channel_mean_and_subset_work_on_a_store(raw_store: Path, reference: np.ndarray) -> None:
    from tcdn.train import channel_mean

    fs = open_store(raw_store)
    np.testing.assert_allclose(channel_mean(fs.frames), channel_mean(reference), rtol=1e-6)
    sub = fs.subset([1, 0])
    np.testing.assert_array_equal(
        sub.frames[: sub.lengths[0]], reference[fs.offsets[1] : fs.offsets[2]]
    )


# -- decode settings ------------------------------------------------------------------------------
def test_stride_fps_and_max_frames(make_video: Callable[..., Path], tmp_path: Path) -> None:
    video = make_video(tmp_path / "v" / "a.mp4", 12)  # 25 fps
    full = decode_video(video, size=SIZE)
    np.testing.assert_array_equal(decode_video(video, size=SIZE, stride=3), full[::3])
    np.testing.assert_array_equal(decode_video(video, size=SIZE, fps=5), full[::5])
    np.testing.assert_array_equal(
        decode_video(video, size=SIZE, stride=2, max_frames=4), full[:8:2]
    )
    ingest_folder(tmp_path / "v", tmp_path / "s", _settings(stride=3), progress=False)
    np.testing.assert_array_equal(open_store(tmp_path / "s").frames[:], full[::3])
    with pytest.raises(TcdnError, match="not both"):
        DecodeSettings.make(SIZE, stride=2, fps=5.0)


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
        arr = rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
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
    ingest(entries, tmp_path / "s", _settings(), progress=False)
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
    first = ingest_folder(videos, out, _settings(), progress=False)
    assert (first.decoded, first.reused) == (6, 0)
    again = ingest_folder(videos, out, _settings(), progress=False)
    assert (again.decoded, again.reused) == (0, 6)

    changed = videos / "class01" / "class01_v00.mp4"
    make_video(changed, 5, size=32, seed=7)
    st_ = changed.stat()
    os.utime(changed, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    (videos / "class02" / "class02_v01.mp4").unlink()
    third = ingest_folder(videos, out, _settings(), progress=False)
    assert (third.decoded, third.reused, third.n_videos) == (1, 4, 5)
    fs = open_store(out)
    v = [e.name for e in fs.videos].index("class01/class01_v00.mp4")
    np.testing.assert_array_equal(
        fs.frames[fs.offsets[v] : fs.offsets[v + 1]], decode_video(changed, size=SIZE)
    )
    assert len(list((out / "data").iterdir())) == 5  # the removed video's file is gone


def test_other_settings_refuse_to_mix(raw_store: Path, synthetic_collection: Path) -> None:
    with pytest.raises(TcdnError, match="other settings"):
        ingest_folder(synthetic_collection, raw_store, _settings("jpeg"), progress=False)


def test_interrupted_ingest_reads_incomplete_and_resumes(
    synthetic_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store_mod._encode_video
    calls = []

    def crash_on_third(*args: object) -> dict[str, object]:
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_mod, "_encode_video", crash_on_third)
    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(synthetic_collection, out, _settings(), progress=False)
    m = read_manifest(out)
    assert m["complete"] is False and len(m["videos"]) == 2
    with pytest.raises(TcdnError, match="incomplete"):
        open_store(out)
    monkeypatch.setattr(store_mod, "_encode_video", real)
    report = ingest_folder(synthetic_collection, out, _settings(), progress=False)
    assert (report.decoded, report.reused) == (4, 2)
    assert open_store(out).frames.shape[0] == report.n_frames


def test_parallel_ingest_writes_the_same_store(
    synthetic_collection: Path, raw_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "par"
    ingest_folder(synthetic_collection, out, _settings(), workers=2, progress=False)
    for v in read_manifest(out)["videos"]:
        a = (out / "data" / f"{v['key']}.u8").read_bytes()
        assert a == (raw_store / "data" / f"{v['key']}.u8").read_bytes()


# -- bad input ------------------------------------------------------------------------------------


def _write_mpeg4_avi(path: Path, n_frames: int) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32  # type: ignore[union-attr]
        stream.pix_fmt = "yuv420p"  # type: ignore[union-attr]
        container.start_encoding()
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * t, np.uint8), "rgb24")
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode():  # type: ignore[union-attr]
            container.mux(packet)
    return path


@pytest.fixture
def broken_collection(
    make_video: Callable[..., Path], tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    """Two good videos and one of each kind of bad file, all real, with what each should say."""
    root = tmp_path / "videos"
    make_video(root / "good" / "a.mp4", 6)
    make_video(root / "good" / "b.mp4", 5, seed=1)
    data = (root / "good" / "a.mp4").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "bad" / "noise.avi").write_bytes(np.random.default_rng(2).bytes(5000))
    write_audio_only(root / "bad" / "song.mp4")
    _write_mpeg4_avi(root / "bad" / "zero.avi", 0)  # a video stream with no frame
    blob = _write_mpeg4_avi(root / "bad" / "codec.avi", 4).read_bytes()
    assert blob.count(b"FMP4") >= 1
    (root / "bad" / "codec.avi").write_bytes(blob.replace(b"FMP4", b"QZX9"))  # unknown fourcc
    why = {
        "bad/noise.avi": "cannot decode",
        "bad/song.mp4": "no video stream",
        "bad/zero.avi": "no decodable frame",
        "bad/codec.avi": "cannot decode",
    }
    return root, why


def test_bad_files_are_skipped_and_named(
    broken_collection: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, why = broken_collection
    entries = find_videos(root)
    gone = root / "bad" / "deleted.mp4"
    entries.append(VideoEntry(path=gone, name="bad/deleted.mp4", label="bad"))  # unreadable path
    why["bad/deleted.mp4"] = "cannot read"
    report = ingest(entries, tmp_path / "s", _settings(), progress=False)
    for name, text in why.items():
        assert text in report.bad[name], (name, report.bad[name])
    # a truncated file keeps the frames before the cut, or is bad: never an exception
    assert set(report.bad) - set(why) <= {"bad/truncated.mp4"}
    m = read_manifest(tmp_path / "s")
    assert {b["name"] for b in m["bad"]} == set(report.bad)
    fs = open_store(tmp_path / "s")
    assert set(fs.skipped) == set(report.bad)
    assert {"good/a.mp4", "good/b.mp4"} <= {v.name for v in fs.videos}


def test_cli_ingest_strict_and_summary(
    broken_collection: tuple[Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    root, why = broken_collection
    args = ["ingest", str(root), "--out", str(tmp_path / "s"), "--size", "16", "--no-progress"]
    assert main([*args, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for name in why:
        assert f"bad: {name}" in out
    assert main([*args, "--workers", "1", "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err
    assert read_manifest(tmp_path / "s")["complete"] is True


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod-000 file anyway")
def test_unreadable_file_is_bad(make_video: Callable[..., Path], tmp_path: Path) -> None:
    make_video(tmp_path / "v" / "a.mp4", 4)
    locked = make_video(tmp_path / "v" / "b.mp4", 4)
    locked.chmod(0)
    try:
        report = ingest_folder(tmp_path / "v", tmp_path / "s", _settings(), progress=False)
    finally:
        locked.chmod(0o644)
    assert list(report.bad) == ["b.mp4"]


def test_empty_and_duplicate_collections(make_video: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="empty"):
        ingest([], tmp_path / "s", _settings(), progress=False)
    a = make_video(tmp_path / "a.mp4", 3)
    b = make_video(tmp_path / "b.mp4", 3)
    twice = [VideoEntry(a, "clip.mp4"), VideoEntry(b, "clip.mp4")]
    with pytest.raises(TcdnError, match=r"share the name 'clip\.mp4'"):
        ingest(twice, tmp_path / "s", _settings(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TcdnError, match="no video found"):
        ingest_folder(tmp_path / "empty", tmp_path / "s2", _settings(), progress=False)


def test_all_bad_leaves_no_complete_store(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "x.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(TcdnError, match="none of the 1 video"):
        ingest_folder(tmp_path / "v", tmp_path / "s", _settings(), progress=False)
    assert json.loads((tmp_path / "s" / MANIFEST).read_text())["complete"] is False


# -- the rest of tcdn reads a store ---------------------------------------------------------------
def test_cli_commands_accept_a_store(
    raw_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    out = tmp_path / "f.npz"
    code = main(
        [
            "features",
            str(raw_store),
            "--source",
            "raw_pixels",
            "--out",
            str(out),
            "--size",
            str(SIZE),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with np.load(out) as z:
        assert len(z["features"]) == len(open_store(raw_store).frames)
    assert main(["features", str(raw_store), "--source", "raw_pixels", "--out", str(out)]) == 2
    assert "ingest again with --size 227" in capsys.readouterr().err
    code = main(
        [
            "features",
            str(raw_store),
            "--source",
            "raw_pixels",
            "--out",
            str(out),
            "--size",
            str(SIZE),
            "--max-frames",
            "3",
        ]
    )
    assert code == 2 and "--max-frames applies to a video folder" in capsys.readouterr().err


def test_features_stream_a_store_like_memory(raw_store: Path, reference: np.ndarray) -> None:
    from tcdn.features import FrameFeaturizer

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


def test_train_reads_a_store(
    synthetic_collection: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    store = tmp_path / "store"
    ingest_folder(
        synthetic_collection,
        store,
        StoreSettings(decode=DecodeSettings.make(TRAIN_SIZE)),
        progress=False,
    )
    config = tmp_path / "small.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_size": TRAIN_SIZE,
                "model_options": {"fc6_dim": 64},
                "embed_dim": 16,
                "batch_size": 2,
                "far": 5,
            }
        )
    )
    argv = ["train", str(store), "--out", str(tmp_path / "run"), "--config", str(config)]
    code = main([*argv, "--steps", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert list((tmp_path / "run").glob("*.pt"))


def _read_in_child(frames: object, idx: np.ndarray, queue: object) -> None:
    queue.put(frames[idx].sum())  # type: ignore[index, attr-defined]


def test_jpeg_reader_works_in_a_forked_child(jpeg_store: Path) -> None:
    """A data-loader worker forked after the parent read (and started its decoding threads)."""
    import multiprocessing

    frames = open_store(jpeg_store, threads=2).frames
    idx = np.arange(0, len(frames), 2)[:40]
    want = frames[idx].sum()  # starts the parent's thread pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(frames, idx, queue), daemon=True)
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert got == want and child.exitcode == 0


def test_cli_ingest_user_errors(
    make_video: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    def run(*argv: str) -> str:
        assert main(["ingest", *argv, "--out", str(tmp_path / "s"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err

    (tmp_path / "empty").mkdir()
    assert "no video found" in run(str(tmp_path / "empty"))
    make_video(tmp_path / "v" / "a.mp4", 3)
    (tmp_path / "v" / "labels.csv").write_text("video,label\na.mp4,x\ngone.mp4,y\n")
    assert "gone.mp4" in run(str(tmp_path / "v"))
    assert "--split needs --dataset" in run(str(tmp_path / "v"), "--split", "test")
    assert "does not exist" in run(str(tmp_path / "nowhere"), "--dataset", "ucf101")
    assert not (tmp_path / "s" / MANIFEST).exists()
