"""Two streams (``streams: 2``): appearance and motion, each its own network, joined after
per-stream L2 normalisation (``tcdn.models.two_stream``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.extract import frame_features
from tcdn.losses import TemporalInfoNCELoss
from tcdn.models.two_stream import TwoStream
from tcdn.training.checkpoint import load_checkpoint, model_from_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.run import train
from tcdn.training.trainer import make_criterion
from tests.conftest import TRAIN_SIZE, small_config


def _two(**overrides: object) -> TrainConfig:
    return small_config(
        model="alexnet_bn",
        model_options={"fc6_dim": 64, "pool_size": 1, "dropout": 0.0, "init": "he"},
        loss="nce",
        head="mlp",
        head_hidden=32,
        head_dim=8,
        input_norm="meanstd",
        motion="diff",
        streams=2,
        **overrides,
    )


def _model() -> TwoStream:
    torch.manual_seed(0)
    model = _two().build_model(check_input=True)
    assert isinstance(model, TwoStream)
    return model.eval()


def test_each_stream_reads_only_its_channels_and_has_its_own_weights() -> None:
    model = _model()
    x = torch.randn(5, 6, TRAIN_SIZE, TRAIN_SIZE)
    y = x.clone()
    y[:, 3:] = torch.randn(5, 3, TRAIN_SIZE, TRAIN_SIZE)  # another motion, the same frame
    with torch.no_grad():
        a, b = model.forward_features(x), model.forward_features(y)
    half = model.appearance.num_features
    assert torch.equal(a[:, :half], b[:, :half])
    assert not torch.allclose(a[:, half:], b[:, half:])
    w_a = model.appearance.stages["conv1"][0].weight
    w_m = model.motion.stages["conv1"][0].weight
    assert w_a.shape == w_m.shape and not torch.equal(w_a, w_m)


def test_features_and_embedding_are_normalised_per_stream() -> None:
    model = _model()
    x = torch.randn(7, 6, TRAIN_SIZE, TRAIN_SIZE)
    with torch.no_grad():
        f = model.forward_features(x)
        e = model(x)
        fa = model.stream_features(x, "appearance")
    half = model.appearance.num_features
    assert f.shape == (7, model.num_features) == (7, 2 * half)
    torch.testing.assert_close(f[:, :half], F.normalize(fa, dim=1))
    torch.testing.assert_close(f[:, :half].norm(dim=1), torch.ones(7))
    torch.testing.assert_close(f[:, half:].norm(dim=1), torch.ones(7))
    torch.testing.assert_close(e.norm(dim=1), torch.ones(7))  # the loss sees unit vectors
    assert e.shape == (7, model.embed_dim) == (7, 16)
    assert set(model.stages) >= {"appearance.conv1", "motion.conv1", "motion.fc7"}


def test_the_wrong_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="6, H, W"):
        _model()(torch.randn(2, 3, TRAIN_SIZE, TRAIN_SIZE))


@pytest.mark.parametrize("motion", ["none", "diffonly", "stack"])
def test_two_streams_need_the_frame_and_its_difference(motion: str) -> None:
    with pytest.raises(TcdnError, match="streams"):
        small_config(model="alexnet_bn", motion=motion, streams=2)
    with pytest.raises(TcdnError, match="streams"):
        small_config(streams=3)


@pytest.mark.parametrize("cross_stream", [0.0, 1.0])
def test_a_two_stream_run_trains_saves_and_extracts(
    train_frames: FrameSet, tmp_path: Path, cross_stream: float
) -> None:
    cfg = _two(
        steps=2, checkpoint_every=2, augment="appearance", aug_hue=0.1, cross_stream=cross_stream
    )
    criterion = make_criterion(cfg)
    assert isinstance(criterion, TemporalInfoNCELoss) and criterion.cross_stream == cross_stream
    last = train(train_frames, cfg, tmp_path / "run", progress=False)
    ckpt = load_checkpoint(last)
    model, _, saved = model_from_checkpoint(ckpt)
    assert isinstance(model, TwoStream) and saved.streams == 2
    assert saved.cross_stream == cross_stream
    feats = frame_features(train_frames, "trained", ckpt, progress=False)
    assert feats.features.shape == (len(train_frames.frames), 128)
    half = feats.features[:, :64].astype("float64")
    assert abs(float((half**2).sum(axis=1).mean()) - 1.0) < 1e-3
