"""End to end (``tcdn.pipeline``): train briefly, discover, write and print the results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import TRAIN_SIZE
from tcdn.data.video import FrameSet
from tcdn.errors import TcdnError
from tcdn.pipeline import SOURCES, discover_collection, format_table, write_results
from tcdn.train import TrainConfig, load_checkpoint, train

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
    results, assignments = discover_collection(
        train_frames, checkpoint, methods=METHODS, repeats=2, seed=0, progress=False
    )
    n_frames, n_classes = len(train_frames.frames), len(train_frames.class_names)
    assert n_classes == 3

    assert list(results["results"]) == list(SOURCES)
    for source in SOURCES:
        per = results["results"][source]
        assert set(per) == set(METHODS), source
        for method, score in per.items():
            where = f"{source}/{method}"
            assert {"ce_mean", "ce_std", "n_frames", "n_classes"} <= set(score), where
            assert score["n_frames"] == n_frames, where
            assert score["n_classes"] == n_classes, where
            assert len(score["ce_values"]) == 2, where
            # H(class | cluster) lies in [0, log2(#classes)]
            assert 0 <= score["ce_mean"] <= math.log2(n_classes) + 1e-9, where
            assert score["ce_std"] >= 0, where
    assert results["n_frames"] == n_frames
    assert results["classes"] == train_frames.class_names
    assert results["train_config"]["embed_dim"] == 16
    assert results["checkpoint"] == checkpoint["path"]

    # one cluster per frame for every source/method that clusters
    rows = assignments["rows"]
    assert rows.tolist() == list(range(n_frames))
    for source in ("trained", "random_init", "raw_pixels"):
        for method in METHODS:
            pred = assignments[f"{source}/{method}"]
            assert pred.shape == (n_frames,)
            assert set(np.unique(pred)) <= set(range(n_classes))

    write_results(tmp_path, train_frames, results, assignments)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == results["results"]
    with (tmp_path / "clusters.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    assert header[:3] == ["video", "frame", "label"]
    assert "trained_kmeans" in header and "raw_pixels_spectral" in header
    assert len(body) == n_frames
    first, last = body[0], body[-1]
    assert (first[0], first[1], first[2]) == (train_frames.videos[0].name, "0", "class00")
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
        discover_collection(train_frames, checkpoint, sources=["pixels"], progress=False)
    with pytest.raises(TcdnError, match="--repeats"):
        discover_collection(train_frames, checkpoint, repeats=0, progress=False)
    one_class = train_frames.subset([0, 1])  # both videos of class00
    with pytest.raises(TcdnError, match="single class"):
        discover_collection(one_class, checkpoint, progress=False)


def test_discover_cheap_sources_with_stride(train_frames: FrameSet) -> None:
    results, assignments = discover_collection(
        train_frames,
        None,
        sources=["raw_pixels", "random_assignment"],
        methods=["kmeans"],
        repeats=2,
        frame_stride=4,
        max_per_video=3,
        progress=False,
    )
    n_rows = 3 * len(train_frames.videos)
    assert results["n_frames"] == n_rows
    assert results["results"]["raw_pixels"]["kmeans"]["n_frames"] == n_rows
    assert len(assignments["rows"]) == n_rows
    assert train_frames.frame_index[assignments["rows"]].tolist()[:3] == [0, 4, 8]
    assert results["checkpoint"] is None and results["train_config"] is None
