"""Discovery end to end (``tcdn.discovery.pipeline``): train briefly, discover, write and print the results."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tcdn.data.frameset import FrameSet
from tcdn.discovery.config import SOURCES, DiscoverConfig
from tcdn.discovery.evaluate import score_clusterings
from tcdn.discovery.pipeline import discover_collection, discover_features
from tcdn.discovery.results import format_table, write_results
from tcdn.errors import TcdnError
from tcdn.features.extract import FrameFeaturizer, frame_features
from tcdn.features.featureset import FeatureSet
from tcdn.training.checkpoint import load_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.run import train
from tests.conftest import TRAIN_SIZE, tiny_checkpoint

METHODS = ("kmeans", "spectral")


@pytest.fixture(scope="module")
def checkpoint(train_frames: FrameSet, tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = TrainConfig(
        image_size=TRAIN_SIZE,
        model_options={"fc6_dim": 64},
        embed_dim=16,
        batch_size=4,
        steps=3,
        checkpoint_every=3,
        far=5,
        lr=0.01,
    )
    run = tmp_path_factory.mktemp("pipeline_run")
    return load_checkpoint(train(train_frames, cfg, run, progress=False))


@pytest.mark.slow
def test_discover_collection_end_to_end(
    train_frames: FrameSet, checkpoint: dict, tmp_path: Path
) -> None:
    results, assignments, clustered = discover_collection(
        train_frames, checkpoint, DiscoverConfig(methods=METHODS, repeats=2, seed=0), progress=False
    )
    n_frames, n_classes = len(train_frames.frames), len(train_frames.class_names)
    assert n_classes == 3

    assert list(results["results"]) == list(SOURCES)
    for source in SOURCES:
        per = results["results"][source]
        assert set(per) == set(METHODS), source
        for method, score in per.items():
            where = f"{source}/{method}"
            assert {"ce_mean", "ce_std", "n_rows", "n_classes"} <= set(score), where
            assert score["n_rows"] == n_frames, where
            assert score["n_classes"] == n_classes, where
            assert len(score["ce_values"]) == 2, where
            # H(class | cluster) lies in [0, log2(#classes)]
            assert 0 <= score["ce_mean"] <= math.log2(n_classes) + 1e-9, where
            assert score["ce_std"] >= 0, where
    assert results["n_frames"] == results["n_rows"] == n_frames
    assert results["level"] == "frame"
    assert results["classes"] == train_frames.class_names
    assert results["train_config"]["embed_dim"] == 16
    assert results["checkpoint"] == checkpoint["path"]

    # one cluster per frame for every source/method that clusters
    assert clustered.frame.tolist() == train_frames.frame_index.tolist()
    assert clustered.features.shape == (n_frames, 64)  # the trained fc6 features clustered
    for source in ("trained", "random_init", "raw_pixels"):
        for method in METHODS:
            pred = assignments[f"{source}/{method}"]
            assert pred.shape == (n_frames,)
            assert set(np.unique(pred)) <= set(range(n_classes))

    write_results(tmp_path, clustered, results, assignments)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == results["results"]
    with (tmp_path / "clusters.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    assert header[:6] == ["video", "frame", "time", "label", "cluster", "distance"]
    assert "trained_kmeans" in header and "raw_pixels_spectral" in header
    assert len(body) == n_frames
    first, last = body[0], body[-1]
    assert (first[0], first[1], first[2], first[3]) == (
        train_frames.videos[0].name,
        "0",
        "0.000",
        "class00",
    )
    assert last[0] == train_frames.videos[-1].name
    assert int(last[1]) == train_frames.lengths[-1] - 1
    assert not list(tmp_path.glob(".*partial*"))

    table = format_table(results)
    for source in SOURCES:
        assert source in table
    for method in METHODS:
        assert method in table
    assert f"{n_frames} frames" in table


def test_discover_rejects_bad_requests(train_frames: FrameSet, checkpoint: dict) -> None:
    with pytest.raises(TcdnError, match="unknown feature source 'pixels'"):
        discover_collection(
            train_frames, checkpoint, DiscoverConfig(sources=["pixels"]), progress=False
        )
    with pytest.raises(TcdnError, match="--repeats"):
        discover_collection(train_frames, checkpoint, DiscoverConfig(repeats=0), progress=False)
    end = int(train_frames.offsets[2])  # both videos of class00
    one_class = FrameSet(
        train_frames.frames[:end], train_frames.videos[:2], train_frames.offsets[:3]
    )
    # one class: nothing to score against, so the frames are clustered but not scored
    found = discover_collection(
        one_class, checkpoint, DiscoverConfig(k=2, methods=["kmeans"]), progress=False
    )
    assert found.results["results"] == {}
    assert "single" not in found.results["discovered"]["why_unscored"]
    assert "has the label 'class00'" in found.results["discovered"]["why_unscored"]


def test_norm_l2_clusters_unit_length_features(train_frames: FrameSet, checkpoint: dict) -> None:
    """``norm="l2"`` clusters each network feature over its length: the same clusters as
    features normalised by hand and given, and the results say so."""
    config = DiscoverConfig(sources=["trained"], methods=["kmeans"], repeats=2, norm="l2")
    found = discover_collection(train_frames, checkpoint, config, progress=False)
    assert found.results["norm"] == "l2" and "(unit length)" in format_table(found.results)
    fs = frame_features(train_frames, "trained", checkpoint, progress=False)
    unit = fs.features / np.linalg.norm(fs.features, axis=1, keepdims=True)
    given = discover_features(
        replace(fs, features=unit), DiscoverConfig(methods=["kmeans"], repeats=2)
    )
    assert found.results["results"]["trained"]["kmeans"]["ce_mean"] == pytest.approx(
        given.results["results"]["given"]["kmeans"]["ce_mean"], abs=1e-9
    )
    plain = discover_collection(
        train_frames, checkpoint, replace(config, norm=None), progress=False
    )
    assert plain.results["norm"] == "none"
    with pytest.raises(TcdnError, match="--norm must be one of none, l2"):
        DiscoverConfig(norm="l1")


def test_discover_cheap_sources_with_stride(train_frames: FrameSet) -> None:
    results, assignments, clustered = discover_collection(
        train_frames,
        None,
        DiscoverConfig(
            sources=["raw_pixels", "random_assignment"],
            methods=["kmeans"],
            repeats=2,
            frame_stride=4,
            max_per_video=3,
        ),
        progress=False,
    )
    n_rows = 3 * len(train_frames.videos)
    assert results["n_frames"] == results["n_rows"] == n_rows
    assert results["results"]["raw_pixels"]["kmeans"]["n_rows"] == n_rows
    assert len(clustered) == n_rows and len(assignments["raw_pixels/kmeans"]) == n_rows
    assert clustered.frame.tolist()[:3] == [0, 4, 8]
    assert results["checkpoint"] is None and results["train_config"] is None


def test_random_init_builds_fewer_networks_than_repeats_by_default(
    train_frames: FrameSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = FrameFeaturizer.features

    def counting(self: FrameFeaturizer, source: str, repeat: int = 0) -> np.ndarray:
        if source == "random_init":
            built.append(repeat)
        return original(self, source, repeat)

    monkeypatch.setattr(FrameFeaturizer, "features", counting)
    config = DiscoverConfig(
        sources=["random_init", "raw_pixels", "random_assignment"],
        methods=["kmeans"],
        repeats=5,
        max_per_video=3,
    )
    assert config.random_init_repeats == 3
    results, _, _ = discover_collection(train_frames, tiny_checkpoint(), config, progress=False)
    assert sorted(built) == [0, 1, 2]  # one network per init, never rebuilt for another method
    per = results["results"]
    assert per["random_init"]["kmeans"]["repeats"] == 3 == results["random_inits"]
    assert per["raw_pixels"]["kmeans"]["repeats"] == 5
    assert per["random_assignment"]["kmeans"]["repeats"] == 5
    assert set(results["seconds"]) == set(per) and min(results["seconds"].values()) >= 0
    table = format_table(results)
    assert "random_init (3x)" in table and "seconds" in table
    assert DiscoverConfig(repeats=2).random_init_repeats == 2
    assert DiscoverConfig(repeats=2, random_inits=4).random_init_repeats == 4
    with pytest.raises(TcdnError, match="--random-inits"):
        DiscoverConfig(random_inits=0)


# -- video level ---------------------------------------------------------------------------------
def naive_video_means(features: np.ndarray, video: np.ndarray) -> np.ndarray:
    names = list(dict.fromkeys(video.tolist()))
    return np.stack([features[video == v].mean(axis=0) for v in names])


def test_discover_videos_pools_each_video(train_frames: FrameSet, tmp_path: Path) -> None:
    results, assignments, clustered = discover_collection(
        train_frames,
        None,
        DiscoverConfig(
            sources=["raw_pixels", "random_assignment"],
            methods=["kmeans"],
            repeats=2,
            frame_stride=2,
            max_per_video=5,
            level="video",
        ),
        progress=False,
    )
    n_videos = len(train_frames.videos)
    assert results["level"] == "video"
    assert results["n_rows"] == results["n_videos"] == n_videos
    assert results["n_frames"] == len(train_frames.rows(2, 5))
    assert results["results"]["raw_pixels"]["kmeans"]["n_rows"] == n_videos
    assert clustered.video.tolist() == [v.name for v in train_frames.videos]
    assert clustered.frame.tolist() == [-1] * n_videos
    assert clustered.label.tolist() == [v.label for v in train_frames.videos]
    assert assignments["raw_pixels/kmeans"].shape == (n_videos,)
    assert "6 videos" in format_table(results)

    # the same scores from the frames' raw-pixel features averaged per video by a plain loop
    fs = frame_features(train_frames, "raw_pixels", rows=train_frames.rows(2, 5))
    pooled = naive_video_means(fs.features, fs.video)
    labels = np.unique([v.label for v in train_frames.videos], return_inverse=True)[1]
    expected = score_clusterings(lambda _r: pooled, labels, k=3, methods=["kmeans"], repeats=2)
    assert results["results"]["raw_pixels"]["kmeans"]["ce_values"] == pytest.approx(
        expected["kmeans"].values
    )

    write_results(tmp_path, clustered, results, assignments)
    with (tmp_path / "clusters.csv").open(newline="") as fh:
        body = list(csv.DictReader(fh))
    assert [r["video"] for r in body] == clustered.video.tolist()
    assert {r["frame"] for r in body} == {"-1"}


def test_random_init_at_video_level_pools_each_repeat(train_frames: FrameSet) -> None:
    ckpt = tiny_checkpoint()
    results, _, _ = discover_collection(
        train_frames,
        ckpt,
        DiscoverConfig(
            sources=["random_init"], methods=["kmeans"], repeats=2, max_per_video=4, level="video"
        ),
        progress=False,
    )
    featurizer = FrameFeaturizer(train_frames, train_frames.rows(1, 4), ckpt, progress=False)
    video = featurizer.index.video
    labels = featurizer.index.label_codes()[::4]  # 4 rows per video
    expected = score_clusterings(
        lambda r: naive_video_means(featurizer.features("random_init", r), video),
        labels,
        k=3,
        methods=["kmeans"],
        repeats=2,
    )
    assert results["results"]["random_init"]["kmeans"]["ce_values"] == pytest.approx(
        expected["kmeans"].values
    )


def test_video_level_with_more_clusters_than_videos(train_frames: FrameSet) -> None:
    with pytest.raises(TcdnError, match=r"\[2, 6\], the number of videos.*--level frame"):
        discover_collection(
            train_frames,
            None,
            DiscoverConfig(sources=["raw_pixels"], k=7, level="video"),
            progress=False,
        )
    with pytest.raises(TcdnError, match="--level must be one of frame, video"):
        discover_collection(
            train_frames, None, DiscoverConfig(sources=["raw_pixels"], level="clip")
        )


# -- features of any origin ----------------------------------------------------------------------
@pytest.mark.parametrize("level", ["frame", "video"])
def test_given_features_score_as_the_pipeline_scores_them(
    train_frames: FrameSet, level: str
) -> None:
    """The same features through discover_collection and through a FeatureSet: the same scores."""
    options = {"methods": METHODS, "repeats": 2, "seed": 3, "level": level}
    via_videos = discover_collection(
        train_frames,
        None,
        DiscoverConfig(
            sources=("raw_pixels", "random_assignment"), frame_stride=3, max_per_video=4, **options
        ),
        progress=False,
    )
    rows = train_frames.rows(3, 4)  # the feature file holds the rows scored
    fs = frame_features(train_frames, "raw_pixels", None, rows=rows, seed=3, progress=False)
    via_features = discover_features(fs, DiscoverConfig(**options))
    got, want = via_features.results["results"], via_videos.results["results"]
    assert list(got) == ["given", "random_assignment"]
    for method in METHODS:
        assert got["given"][method]["ce_values"] == want["raw_pixels"][method]["ce_values"]
        assert got["given"][method]["nmi_mean"] == want["raw_pixels"][method]["nmi_mean"]
        np.testing.assert_array_equal(
            via_features.assignments[f"given/{method}"],
            via_videos.assignments[f"raw_pixels/{method}"],
        )
    assert got["random_assignment"] == want["random_assignment"]
    assert via_features.clustered.video.tolist() == via_videos.clustered.video.tolist()
    assert via_features.clustered.frame.tolist() == via_videos.clustered.frame.tolist()
    assert via_features.results["features"]["source"] == "raw_pixels"
    assert via_features.results["level"] == level


def test_discover_features_errors() -> None:
    fs = FeatureSet(np.eye(4), ["a", "a", "b", "b"], [0, 1, 0, 1], ["x", "y", "x", "y"])
    with pytest.raises(TcdnError, match="video a has rows with different labels"):
        discover_features(fs, DiscoverConfig(level="video"))
    with pytest.raises(TcdnError, match=r"too few to choose the number of clusters.*give --k"):
        discover_features(FeatureSet(np.eye(2), ["a", "b"], [0, 0], ["x", ""]))
    with pytest.raises(TcdnError, match=r"--k 3: the number of clusters must be in \[2, 2\]"):
        discover_features(FeatureSet(np.eye(2), ["a", "b"], [0, 0], ["x", ""]), DiscoverConfig(k=3))
    with pytest.raises(TcdnError, match="names only random_assignment"):
        discover_features(fs, DiscoverConfig(sources=["random_assignment"]))
    with pytest.raises(TcdnError, match="unknown clustering method 'dbscan'"):
        discover_features(fs, DiscoverConfig(methods=["dbscan"]))


# -- without labels --------------------------------------------------------------------------------
def test_unlabelled_features_are_clustered_with_k_chosen_without_labels(tmp_path: Path) -> None:
    from tests.discovery.conftest import gauss_blobs

    x, _ = gauss_blobs(30, 4, dim=8, seed=2, spread=0.2)
    video = np.repeat([f"v{i}" for i in range(12)], 10)
    fs = FeatureSet(
        x,
        video,
        np.tile(np.arange(10) * 3, 12),
        [""] * len(x),
        time=np.tile(np.arange(10) * 0.12, 12),
    )
    found = discover_features(fs, DiscoverConfig(max_k=8))
    d = found.results["discovered"]
    assert found.results["results"] == {} and not d["scored"]
    assert d["k"] == 4 and d["k_rule"] == "chosen without labels (silhouette)"
    assert set(d["k_choice"]["silhouette"]) == {str(k) for k in range(2, 9)}
    assert d["k_choice"]["k_eigengap"] is None  # the second opinion is off by default
    from tcdn.discovery.choose_k import choose_k

    assert choose_k(x, max_k=8, eigengap=True).k_eigengap == 4  # well-separated: both agree
    assert list(found.assignments) == ["given/kmeans", "given/spectral"]
    assert sum(d["sizes"]) == len(x) and sorted(d["sizes"]) == [30, 30, 30, 30]
    assert "not scored: the collection has no labels" in format_table(found.results)
    assert "K-means silhouette per candidate K" in format_table(found.results)

    write_results(tmp_path, found.clustered, found.results, found.assignments)
    with (tmp_path / "clusters.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:6] == ["video", "frame", "time", "label", "cluster", "distance"]
    assert rows[1]["frame"] == "3" and rows[1]["time"] == "0.120" and rows[1]["label"] == ""
    assert [int(r["cluster"]) for r in rows] == found.assignments["given/kmeans"].tolist()
    # the distance to the centre (the mean of the cluster's rows), by a plain loop
    c = found.assignments["given/kmeans"]
    want = [np.linalg.norm(x[i] - x[c == c[i]].mean(axis=0)) for i in range(len(x))]
    np.testing.assert_allclose([float(r["distance"]) for r in rows], want, atol=1e-3)
    with (tmp_path / "videos.csv").open(newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert len(summary) == 12 and summary[0]["video"] == "v0" and summary[0]["rows"] == "10"
    assert all(0 < float(r["share"]) <= 1 for r in summary)


def test_unlabelled_collection_with_given_k(train_frames: FrameSet) -> None:
    unlabelled = replace(train_frames, videos=[replace(v, label=None) for v in train_frames.videos])
    found = discover_collection(
        unlabelled, tiny_checkpoint(), DiscoverConfig(k=3, methods=["kmeans"]), progress=False
    )
    assert list(found.results["results"]) == []  # the baselines need labels: not computed
    assert list(found.assignments) == ["trained/kmeans"]
    assert found.results["discovered"]["k_rule"] == "given (--k)"
    assert found.clustered.features.shape == (len(train_frames.frames), 64)
    assert set(found.clustered.label.tolist()) == {""}


def test_a_feature_set_is_reduced_once_for_every_seed_and_method(monkeypatch) -> None:
    """At scale, every seed and method (and the choice of K) cluster one shared PCA."""
    import tcdn.discovery.cluster as cluster
    import tcdn.discovery.graph as graph
    from tests.discovery.conftest import gauss_blobs

    x, y = gauss_blobs(60, 4, dim=32, seed=1)
    monkeypatch.setattr(cluster, "LARGE_ROWS", len(x))
    monkeypatch.setattr(cluster, "LARGE_PCA_DIMS", 6)
    fitted, graphs = [], []
    fit_pca, dense_affinity = cluster.fit_pca, graph.dense_affinity
    monkeypatch.setattr(cluster, "fit_pca", lambda *a, **kw: fitted.append(1) or fit_pca(*a, **kw))
    monkeypatch.setattr(
        graph, "dense_affinity", lambda *a, **kw: graphs.append(1) or dense_affinity(*a, **kw)
    )
    scores = score_clusterings(lambda r: x, y, k=4, repeats=3)
    assert len(fitted) == 1
    assert len(graphs) == 1  # the eigengap's decomposition and the clustering's share one graph
    from tcdn.discovery.evaluate import cluster_once

    for m in METHODS:  # and the clusters are those of a call that builds everything itself
        np.testing.assert_array_equal(scores[m].first_assignment, cluster_once(x, 4, m))
    assert {m: s.values for m, s in scores.items()} == {m: [0.0] * 3 for m in METHODS}
    assert scores["kmeans"].k_silhouette == 4
    fitted.clear()
    video = np.repeat([f"v{i}" for i in range(12)], 20)
    found = discover_features(
        FeatureSet(x, video, np.tile(np.arange(20), 12), [""] * len(x)), DiscoverConfig(max_k=6)
    )
    assert len(fitted) == 1 and found.results["discovered"]["k"] == 4


def test_a_tiny_spectral_cluster_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    from tcdn.discovery.pipeline import _warn_tiny_spectral_clusters

    k, n = 3, 3000
    even = np.arange(n) % k
    lopsided = np.r_[np.zeros(2900), np.ones(95), np.full(5, 2)].astype(np.int64)
    with caplog.at_level("WARNING", logger="tcdn.discovery.pipeline"):
        _warn_tiny_spectral_clusters(
            {"trained/spectral": even, "trained/kmeans": lopsided, "raw_pixels/spectral": lopsided},
            k,
        )
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1  # K-means' clusters and even clusters are left alone
    assert warned[0].startswith("raw_pixels/spectral: 2 of the K=3 clusters hold only 5, 95 of")
