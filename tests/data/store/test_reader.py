"""Reading a frame store (``tcdn.data.store.reader``), checked against frames decoded one video at a time."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcdn.data.collection import find_videos
from tcdn.data.decode import decode_video
from tcdn.data.frameset import FrameSet
from tcdn.data.store.manifest import read_manifest
from tcdn.data.store.reader import open_store
from tcdn.data.store.writer import ingest
from tests.conftest import STORE_SIZE, store_settings


@pytest.fixture(scope="module")
def jpeg_store(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jpeg") / "store"
    ingest(synthetic_collection, out, store_settings("jpeg"), progress=False)
    return out


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
    lengths = [len(decode_video(e.path, size=STORE_SIZE)) for e in entries]
    assert fs.offsets.tolist() == [0, *np.cumsum(lengths).tolist()]
    m = read_manifest(raw_store)
    assert m["complete"] is True and m["bad"] == []
    assert m["settings"]["decode"]["size"] == [STORE_SIZE, STORE_SIZE]
    for v, e in zip(m["videos"], entries, strict=True):
        assert v["source"] == str(e.path.resolve())
        assert v["file_size"] == e.path.stat().st_size
        assert v["mtime_ns"] == e.path.stat().st_mtime_ns
        assert v["bytes"] == v["n_frames"] * STORE_SIZE * STORE_SIZE * 3  # raw: H*W*3 bytes a frame
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


def test_channel_mean_and_row_views_work_on_a_store(raw_store: Path, reference: np.ndarray) -> None:
    from tcdn.data.frameset import take_rows
    from tcdn.models.input import channel_mean

    fs = open_store(raw_store)
    np.testing.assert_allclose(channel_mean(fs.frames), channel_mean(reference), rtol=1e-6)
    rows = np.concatenate([np.arange(fs.offsets[1], fs.offsets[2]), np.arange(fs.offsets[1])])
    view = take_rows(fs.frames, rows)  # lazy: read batch by batch
    assert view.shape == (len(rows), *reference.shape[1:])
    np.testing.assert_array_equal(view[3:9], reference[rows[3:9]])
    np.testing.assert_array_equal(np.asarray(view), reference[rows])


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
