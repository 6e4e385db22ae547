"""Features of a frame set (``tcdn.features.extract``): trained, random-init and raw-pixel sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.extract import (
    FrameFeaturizer,
    extract_features,
    frame_features,
    raw_pixel_features,
)
from tcdn.training.checkpoint import model_from_checkpoint
from tcdn.training.config import TrainConfig
from tests.conftest import TRAIN_SIZE


def tiny_checkpoint(seed: int = 0) -> dict:
    """A checkpoint dict of an untrained tiny AlexNet at TRAIN_SIZE, without training."""
    cfg = TrainConfig(image_size=TRAIN_SIZE, model_options={"fc6_dim": 64}, embed_dim=16)
    torch.manual_seed(seed)
    model = cfg.build_model()
    mean = np.array([100.0, 110.0, 120.0], dtype=np.float32)
    return {"config": cfg.to_dict(), "model": model.state_dict(), "mean": mean, "path": "tiny.pt"}


# -- features of a frame set ---------------------------------------------------------------------
def test_frame_features_raw_pixels_and_index(train_frames: FrameSet) -> None:
    rows = np.array([0, 1, 5, int(train_frames.offsets[3]) + 2, len(train_frames.frames) - 1])
    fs = frame_features(train_frames, "raw_pixels", None, rows=rows, seed=3, progress=False)
    np.testing.assert_array_equal(
        fs.features, raw_pixel_features(train_frames.frames[rows], seed=3)
    )
    vid = train_frames.video_index[rows]
    assert fs.video.tolist() == [train_frames.videos[v].name for v in vid]
    assert fs.frame.tolist() == train_frames.frame_index[rows].tolist()
    assert fs.frame.tolist()[:4] == [0, 1, 5, 2]
    assert fs.label.tolist() == [train_frames.videos[v].label for v in vid]
    assert fs.meta["source"] == "raw_pixels" and fs.meta["layer"] is None
    assert fs.meta["image_size"] == TRAIN_SIZE and fs.meta["checkpoint"] is None


def test_raw_pixels_of_many_frames_fit_the_pca_on_a_sample_and_project_in_chunks(
    train_frames: FrameSet,
) -> None:
    from sklearn.decomposition import PCA

    from tcdn.data.frameset import FrameRows

    frames = train_frames.frames[:120]
    got = raw_pixel_features(frames, n_components=8, seed=2, sample=50, chunk=7)
    # the obvious way: fit on the 50 frames drawn, project every frame at once
    x = frames.reshape(len(frames), -1).astype(np.float32) / 255.0
    drawn = np.sort(np.random.default_rng(2).choice(len(frames), 50, replace=False))
    want = PCA(n_components=8, random_state=2).fit(x[drawn]).transform(x)
    assert got.shape == (120, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # a store's lazy rows give the same, and up to `sample` frames nothing is sampled
    lazy = FrameRows(train_frames.frames, np.arange(120))
    np.testing.assert_array_equal(
        raw_pixel_features(lazy, n_components=8, seed=2, sample=50, chunk=7), got
    )
    np.testing.assert_array_equal(
        raw_pixel_features(frames, n_components=8, seed=2),
        PCA(n_components=8, random_state=2).fit_transform(x).astype(np.float32),
    )


def test_frame_features_trained_is_the_checkpoint_network(train_frames: FrameSet) -> None:
    rows = np.arange(0, len(train_frames.frames), 10)
    ckpt = tiny_checkpoint()
    fs = frame_features(train_frames, "trained", ckpt, rows=rows, layer="fc6", progress=False)
    model, mean, _ = model_from_checkpoint(ckpt)
    expected = extract_features(model, train_frames.frames[rows], mean, progress=False)
    np.testing.assert_array_equal(fs.features, expected)
    assert fs.features.shape == (len(rows), 64)
    half = frame_features(train_frames, "trained", ckpt, rows=rows, progress=False, dtype="float16")
    assert half.features.dtype == np.float16
    np.testing.assert_array_equal(half.features, expected.astype(np.float16))
    # batch by batch into one array: batches of 3 give the same rows (up to BLAS rounding)
    np.testing.assert_allclose(
        extract_features(model, train_frames.frames[rows], mean, progress=False, batch_size=3),
        expected,
        rtol=1e-4,
        atol=1e-6,
    )
    assert fs.meta["checkpoint"] == "tiny.pt" and fs.meta["train_config"]["embed_dim"] == 16


def test_random_init_is_seeded_per_repeat_and_leaves_the_global_rng(train_frames) -> None:
    rows = np.arange(0, len(train_frames.frames), 10)
    featurizer = FrameFeaturizer(train_frames, rows, tiny_checkpoint(), seed=4, progress=False)
    state = torch.random.get_rng_state()
    a0, a1 = featurizer.features("random_init", 0), featurizer.features("random_init", 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(a0, featurizer.features("random_init", 0))
    assert not np.array_equal(a0, a1)
    fs = frame_features(
        train_frames, "random_init", tiny_checkpoint(), rows=rows, seed=4, progress=False
    )
    np.testing.assert_array_equal(fs.features, a0)  # the helper gives the pipeline's first repeat


def test_frame_features_errors(train_frames: FrameSet) -> None:
    rows = np.arange(3)
    with pytest.raises(TcdnError, match="unknown feature source 'pixels'"):
        frame_features(train_frames, "pixels", None, rows=rows)
    with pytest.raises(TcdnError, match="needs a checkpoint"):
        frame_features(train_frames, "trained", None, rows=rows)
    ckpt = tiny_checkpoint()
    ckpt["config"]["image_size"] = 64
    with pytest.raises(TcdnError, match="trained on 64px frames but these are 40px"):
        frame_features(train_frames, "trained", ckpt, rows=rows)


@pytest.mark.parametrize(
    ("model", "options", "layer", "dim"),
    [("alexnet", {"fc6_dim": 64}, "fc6", 64), ("resnet18", {}, "pool", 512)],
)
def test_features_default_to_the_networks_own_layer(
    train_frames: FrameSet, model: str, options: dict, layer: str, dim: int
) -> None:
    cfg = TrainConfig(model=model, image_size=TRAIN_SIZE, model_options=options, embed_dim=16)
    torch.manual_seed(0)
    net = cfg.build_model()
    mean = np.zeros(3, dtype=np.float32)
    ckpt = {"config": cfg.to_dict(), "model": net.state_dict(), "mean": mean, "path": "x.pt"}
    fs = frame_features(train_frames, "trained", ckpt, rows=np.arange(6), progress=False)
    assert fs.features.shape == (6, dim)
    assert fs.meta["layer"] == layer


def test_l2_features_are_each_row_over_its_length(train_frames: FrameSet) -> None:
    """``norm="l2"``: every network row divided by its length (reference: numpy on the same
    rows as they are), trained and random init alike; raw pixels are left as they are."""
    rows = np.arange(8)
    ckpt = tiny_checkpoint()
    plain = FrameFeaturizer(train_frames, rows, ckpt, seed=1, progress=False)
    unit = FrameFeaturizer(train_frames, rows, ckpt, seed=1, norm="l2", progress=False)
    assert plain.norm == "none" and unit.norm == "l2"
    for source in ("trained", "random_init"):
        a, b = plain.features(source), unit.features(source)
        lengths = np.sqrt((a.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
        assert (lengths > 0).all()
        np.testing.assert_allclose(b, a / lengths, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(plain.features("raw_pixels"), unit.features("raw_pixels"))
    assert unit.feature_set("trained").meta["norm"] == "l2"
    assert unit.feature_set("raw_pixels").meta["norm"] == "none"


def test_a_recipe_reads_its_features_as_it_says(train_frames: FrameSet) -> None:
    """``feature_norm: l2`` in a checkpoint's config: its features are unit length wherever they
    are read unless ``norm`` says otherwise (discover --norm none)."""
    rows = np.arange(6)
    ckpt = tiny_checkpoint()
    ckpt["config"] = {**ckpt["config"], "feature_norm": "l2"}
    by_recipe = FrameFeaturizer(train_frames, rows, ckpt, progress=False)
    assert by_recipe.norm == "l2"
    np.testing.assert_allclose(
        np.linalg.norm(by_recipe.features("trained"), axis=1), 1.0, rtol=1e-5
    )
    told = FrameFeaturizer(train_frames, rows, ckpt, norm="none", progress=False)
    assert told.norm == "none"
    assert not np.allclose(np.linalg.norm(told.features("trained"), axis=1), 1.0)
    assert FrameFeaturizer(train_frames, rows, None, progress=False).norm == "none"
