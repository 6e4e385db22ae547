"""Feature sets (``tcdn.features.featureset``): the file format, user-supplied arrays, pooling by video."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.pipeline import discover_features
from tcdn.errors import TcdnError
from tcdn.features import featureset
from tcdn.features.featureset import FEATURES_FORMAT, WHOLE_VIDEO, FeatureSet, pool_by_video


def make_fs(n: int = 12, d: int = 5, n_videos: int = 3, seed: int = 0) -> FeatureSet:
    """A small feature set whose videos' rows are interleaved (not contiguous)."""
    rng = np.random.default_rng(seed)
    video_id = rng.integers(0, n_videos, n)
    video_id[:n_videos] = np.arange(n_videos)[::-1]  # every video present; first rows v2, v1, v0
    return FeatureSet(
        features=rng.normal(size=(n, d)).astype(np.float32),
        video=np.array([f"v{v}" for v in video_id]),
        frame=rng.integers(0, 100, n),
        label=np.array([f"class{v % 2}" for v in video_id]),
        meta={"source": "test", "nested": {"a": [1, 2]}, "layer": None},
    )


# -- the file ------------------------------------------------------------------------------------
def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    fs = make_fs()
    path = fs.save(tmp_path / "sub" / "f.npz")  # the folder is created
    back = FeatureSet.load(path)
    assert back.features.dtype == np.float32 and np.array_equal(back.features, fs.features)
    assert back.video.tolist() == fs.video.tolist()
    assert back.frame.dtype == np.int64 and np.array_equal(back.frame, fs.frame)
    assert back.label.tolist() == fs.label.tolist()
    assert back.meta == {**fs.meta, "format": FEATURES_FORMAT, "path": str(path)}
    # plain numpy reads it too, without pickle
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"features", "video", "frame", "label", "time", "meta"}


def test_round_trip_of_unicode_names_and_empty_labels(tmp_path: Path) -> None:
    fs = FeatureSet(np.ones((2, 1)), np.array(["vidéo 1", "ビデオ"]), [0, 3], ["", ""])
    back = FeatureSet.load(fs.save(tmp_path / "f.npz"))
    assert back.video.tolist() == ["vidéo 1", "ビデオ"] and back.label.tolist() == ["", ""]


def test_save_leaves_only_the_file(tmp_path: Path) -> None:
    make_fs().save(tmp_path / "f.npz")
    make_fs(seed=1).save(tmp_path / "f.npz")  # replaces it
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]
    assert np.array_equal(FeatureSet.load(tmp_path / "f.npz").features, make_fs(seed=1).features)


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_fs().save(tmp_path / "f.npz")

    def savez_then_fail(fh, **arrays) -> None:
        fh.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(featureset, "write_npz", savez_then_fail)
    with pytest.raises(TcdnError, match=r"cannot write .*f.npz: the disk is full"):
        make_fs(seed=1).save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no partial file left
    assert np.array_equal(FeatureSet.load(path).features, make_fs().features)


def test_interrupted_save_leaves_no_partial(tmp_path: Path, monkeypatch) -> None:
    def interrupted(fh, **arrays) -> None:
        fh.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(featureset, "write_npz", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_fs().save(tmp_path / "f.npz")
    assert list(tmp_path.iterdir()) == []


def test_meta_must_be_json(tmp_path: Path) -> None:
    fs = make_fs()
    fs.meta["bad"] = object()
    with pytest.raises(TcdnError, match="JSON"):
        fs.save(tmp_path / "f.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match=r"feature file .*nope\.npz does not exist"):
        FeatureSet.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_load_corrupt_file(tmp_path: Path, damage: str) -> None:
    path = make_fs().save(tmp_path / "f.npz")
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a zip at all" * 10, "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(TcdnError, match=rf"cannot read feature file {path}"):
        FeatureSet.load(path)


def test_load_missing_arrays(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(path, features=np.ones((2, 3)), video=np.array(["a", "b"]))
    with pytest.raises(TcdnError, match=r"f\.npz lacks the array\(s\) frame, label"):
        FeatureSet.load(path)


def test_load_arrays_that_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    np.savez(
        path, features=np.ones((3, 2)), video=np.array(["a"] * 3), frame=[0, 1], label=[""] * 3
    )
    with pytest.raises(
        TcdnError, match=r"f\.npz: 'frame' must hold one value per feature row \(3\)"
    ):
        FeatureSet.load(path)


def test_load_bad_meta(tmp_path: Path) -> None:
    path = tmp_path / "f.npz"
    arrays = {"features": np.ones((1, 2)), "video": ["a"], "frame": [0], "label": ["x"]}
    np.savez(path, **arrays, meta=np.array("{not json"))
    with pytest.raises(TcdnError, match="'meta' is not valid JSON"):
        FeatureSet.load(path)
    np.savez(path, **arrays, meta=np.array(json.dumps({"format": "tcdn-features-99"})))
    with pytest.raises(TcdnError, match="tcdn-features-99"):
        FeatureSet.load(path)


def test_load_a_user_npz_without_meta(tmp_path: Path) -> None:
    path = tmp_path / "mine.npz"
    np.savez(path, features=np.eye(2), video=["a", "b"], frame=[0, 0], label=["x", "y"])
    fs = FeatureSet.load(path)
    assert fs.features.dtype == np.float32 and fs.meta == {"path": str(path)}


def test_load_points_a_npy_to_features_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((2, 2)))
    with pytest.raises(TcdnError, match="--features-npy"):
        FeatureSet.load(tmp_path / "x.npy")


# -- validation ----------------------------------------------------------------------------------
def test_feature_set_checks_its_arrays() -> None:
    with pytest.raises(TcdnError, match="2-D"):
        FeatureSet(np.ones(3), ["a"] * 3, [0, 1, 2], [""] * 3)
    with pytest.raises(TcdnError, match="'video' must hold one value per feature row"):
        FeatureSet(np.ones((3, 1)), ["a"] * 2, [0, 1, 2], [""] * 3)
    with pytest.raises(TcdnError, match="'frame' must hold whole numbers"):
        FeatureSet(np.ones((2, 1)), ["a"] * 2, [0.5, 1.0], [""] * 2)
    with pytest.raises(TcdnError, match=r"NaN or infinite values \(first in row 1"):
        FeatureSet(np.array([[0.0], [np.nan]]), ["a"] * 2, [0, 1], [""] * 2)
    with pytest.raises(TcdnError, match="must be numbers"):
        FeatureSet(np.array([["x"], ["y"]]), ["a"] * 2, [0, 1], [""] * 2)


def test_label_codes_and_class_names() -> None:
    fs = FeatureSet(np.zeros((3, 1)), ["a", "b", "c"], [0, 0, 0], ["z", "y", "z"])
    assert fs.class_names == ["y", "z"]
    assert fs.label_codes().tolist() == [1, 0, 1]
    assert fs.videos == ["a", "b", "c"]
    unlabelled = FeatureSet(np.zeros((2, 1)), ["a", "b"], [0, 0], ["z", ""])
    with pytest.raises(
        TcdnError, match=r"1 feature row\(s\) of 1 video\(s\) have no label \(e.g. b\)"
    ):
        unlabelled.label_codes()


# -- features from arrays ------------------------------------------------------------------------
def write_index(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_from_arrays(tmp_path: Path) -> None:
    x = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.save(tmp_path / "x.npy", x)
    index = write_index(
        tmp_path / "i.csv",
        [["video", "frame", "label"], ["a", 0, "run"], ["a", 5, "run"], ["b", 2, " "]],
    )
    fs = FeatureSet.from_arrays(tmp_path / "x.npy", index)
    assert fs.features.dtype == np.float32 and np.array_equal(fs.features, x)
    assert fs.video.tolist() == ["a", "a", "b"] and fs.frame.tolist() == [0, 5, 2]
    assert fs.label.tolist() == ["run", "run", ""]
    assert fs.meta["source"] == "given"


def test_from_arrays_without_labels(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones((2, 4), dtype=np.float32))
    index = write_index(tmp_path / "i.csv", [["frame", "video"], [0, "a"], [1, "a"]])
    assert FeatureSet.from_arrays(tmp_path / "x.npy", index).label.tolist() == ["", ""]


@pytest.mark.parametrize(
    ("array", "rows", "needle"),
    [
        (np.ones((3, 2)), [["video", "frame"], ["a", 0], ["a", 1]], "has 2 row(s) but feature array"),
        (np.ones((2, 2)), [["video", "label"], ["a", "x"], ["a", "x"]], "columns 'video' and 'frame'"),
        (np.ones(2), [["video", "frame"], ["a", 0], ["a", 1]], "must be 2-D (rows, dimensions), got shape (2,)"),
        (np.ones((2, 2, 2)), [["video", "frame"], ["a", 0], ["a", 1]], "got shape (2, 2, 2)"),
        (np.ones((2, 2)), [["video", "frame"], ["a", 0], ["a", "one"]], "line 3: 'frame' must be a whole number"),
        (np.ones((2, 2)), [["video", "frame"], ["a", 0], ["", 1]], "line 3: empty 'video'"),
        (np.ones((1, 2)), [["video", "frame"]], "has no rows"),
        (np.array([[np.inf, 0.0]]), [["video", "frame"], ["a", 0]], "NaN or infinite"),
    ],
    ids=["row-mismatch", "no-frame-column", "1-D", "3-D", "bad-frame", "empty-video", "no-rows", "inf"],
)  # fmt: skip
def test_from_arrays_errors(tmp_path: Path, array: np.ndarray, rows: list, needle: str) -> None:
    np.save(tmp_path / "x.npy", array)
    index = write_index(tmp_path / "i.csv", rows)
    with pytest.raises(TcdnError) as info:
        FeatureSet.from_arrays(tmp_path / "x.npy", index)
    assert needle in str(info.value)


def test_from_arrays_missing_or_wrong_files(tmp_path: Path) -> None:
    index = write_index(tmp_path / "i.csv", [["video", "frame"], ["a", 0]])
    with pytest.raises(
        TcdnError, match=r"feature array .*x\.npy does not exist \(option --features-npy\)"
    ):
        FeatureSet.from_arrays(tmp_path / "x.npy", index)
    np.save(tmp_path / "x.npy", np.ones((1, 2)))
    with pytest.raises(TcdnError, match=r"index file .*j\.csv does not exist \(option --index\)"):
        FeatureSet.from_arrays(tmp_path / "x.npy", tmp_path / "j.csv")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(TcdnError, match=r"cannot read feature array .*bad\.npy"):
        FeatureSet.from_arrays(tmp_path / "bad.npy", index)
    np.savez(tmp_path / "z.npz", features=np.ones((1, 2)))
    with pytest.raises(TcdnError, match=r"is a \.npz archive.*--features"):
        FeatureSet.from_arrays(tmp_path / "z.npz", index)


# -- pooling by video ----------------------------------------------------------------------------
def naive_pool(fs: FeatureSet) -> tuple[list[str], np.ndarray, list[str]]:
    names: list[str] = []
    for v in fs.video.tolist():
        if v not in names:
            names.append(v)
    means = np.stack([fs.features[fs.video == v].astype(np.float64).mean(axis=0) for v in names])
    labels = [fs.label[fs.video == v][0] for v in names]
    return names, means, labels


@pytest.mark.parametrize(("n", "d", "n_videos"), [(1, 1, 1), (12, 5, 3), (50, 8, 7), (40, 3, 40)])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("chunk", [None, 4])  # None: the module's; 4: several chunks
def test_pool_by_video_matches_naive_loop(
    n: int, d: int, n_videos: int, seed: int, chunk: int | None, monkeypatch
) -> None:
    if chunk is not None:
        monkeypatch.setattr(featureset, "_CHUNK", chunk)
    fs = make_fs(n, d, n_videos, seed)
    pooled = pool_by_video(fs)
    names, means, labels = naive_pool(fs)
    assert pooled.video.tolist() == names  # in the order of each video's first row
    np.testing.assert_allclose(pooled.features, means, rtol=1e-6, atol=1e-6)
    assert pooled.features.dtype == np.float32
    assert pooled.label.tolist() == labels
    assert pooled.frame.tolist() == [WHOLE_VIDEO] * len(names)
    assert pooled.meta == {**fs.meta, "level": "video"}


def test_pool_by_video_rejects_mixed_labels() -> None:
    fs = FeatureSet(np.zeros((4, 1)), ["a", "b", "b", "a"], [0, 0, 1, 1], ["x", "y", "y", "z"])
    with pytest.raises(
        TcdnError, match=r"video a has rows with different labels \('x', 'z'\).*--level frame"
    ):
        pool_by_video(fs)


def test_pooled_index_is_what_pool_by_video_gives() -> None:
    fs = FeatureSet(np.arange(8.0).reshape(4, 2), ["b", "a", "b", "a"], [0, 0, 1, 1], list("yxyx"))
    d = discover_features(fs, DiscoverConfig(methods=["kmeans"], repeats=1, level="video"))
    assert d.clustered.video.tolist() == pool_by_video(fs).video.tolist() == ["b", "a"]
    # the rows clustered carry the features clustered: each video's mean
    np.testing.assert_allclose(d.clustered.features, pool_by_video(fs).features)


def test_time_round_trips_and_is_optional(tmp_path: Path) -> None:
    fs = FeatureSet(np.eye(3), ["a", "a", "b"], [0, 5, 0], ["", "", ""], time=[0.0, 0.2, np.nan])
    back = FeatureSet.load(fs.save(tmp_path / "t.npz"))
    np.testing.assert_array_equal(back.seconds, [0.0, 0.2, np.nan])
    np.testing.assert_array_equal(back.subset(np.array([1])).seconds, [0.2])
    # a file written before tcdn recorded times: unknown (NaN)
    np.savez(
        tmp_path / "old.npz", features=np.eye(2), video=["a", "b"], frame=[0, 0], label=["", ""]
    )
    assert np.isnan(FeatureSet.load(tmp_path / "old.npz").seconds).all()
    with pytest.raises(TcdnError, match="'time' must hold one value per feature row"):
        FeatureSet(np.eye(2), ["a", "b"], [0, 0], ["", ""], time=[0.0])


# -- float16 and large features: never copied whole ---------------------------------------------
def test_float16_features_are_kept_as_they_are(monkeypatch) -> None:
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float16)
    index = (["a"] * 5 + ["b"] * 5, np.arange(10), [""] * 10)
    fs = FeatureSet(x, *index)
    assert fs.features is x
    assert fs.subset(np.arange(10)).features is x and fs.subset(np.ones(10, bool)).features is x
    part = fs.subset(np.arange(0, 10, 2))
    assert part.features.dtype == np.float16 and part.video.tolist() == ["a"] * 3 + ["b"] * 2
    assert FeatureSet(x.astype(np.float64), *index).features.dtype == np.float32
    monkeypatch.setattr(featureset, "_CHUNK", 3)  # the check of finite values goes chunk by chunk
    x[7, 2] = np.inf
    with pytest.raises(TcdnError, match=r"NaN or infinite values \(first in row 7"):
        FeatureSet(x, *index)


def test_a_float16_npy_is_memory_mapped_and_discovered_like_float32(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 8)) * 4
    x = np.concatenate([c + 0.3 * rng.normal(size=(40, 8)) for c in centres]).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    rows = [["video", "frame", "label"]] + [
        [f"v{i // 10}", i % 10, f"c{i // 40}"] for i in range(120)
    ]
    fs = FeatureSet.from_arrays(tmp_path / "x.npy", write_index(tmp_path / "i.csv", rows))
    assert isinstance(fs.features, np.memmap) and fs.features.dtype == np.float16
    config = DiscoverConfig(repeats=2, sources=("given",))
    half = discover_features(fs, config)
    single = discover_features(
        FeatureSet(x.astype(np.float32), fs.video, fs.frame, fs.label), config
    )
    for method in ("kmeans", "spectral"):
        np.testing.assert_array_equal(
            half.assignments[f"given/{method}"], single.assignments[f"given/{method}"]
        )
        assert half.results["results"]["given"][method]["ce_values"] == [0.0, 0.0]
