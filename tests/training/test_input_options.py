"""The options of issue 11 end to end: motion input and its successor rows, meanstd, the
projection head, temporal InfoNCE; checkpoints that extraction reproduces exactly."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.features.extract import FrameFeaturizer
from tcdn.models.input import MOTION_CHANNELS, InputTransform, successor_rows
from tcdn.training.checkpoint import input_transform, load_checkpoint, model_from_checkpoint
from tcdn.training.config import MOTIONS, TrainConfig, parse_overrides
from tcdn.training.run import train
from tests.conftest import small_config

BN_NCE = {
    "model": "alexnet_bn",
    "model_options": {"fc6_dim": 64, "pool_size": 1, "dropout": 0.0, "init": "he"},
    "head": "mlp",
    "head_hidden": 32,
    "head_dim": 8,
    "input_norm": "meanstd",
    "loss": "nce",
    "steps": 3,
    "checkpoint_every": 3,
}


def naive_successors(offsets: np.ndarray) -> tuple[list[int], list[float]]:
    """A loop over videos and frames: the next frame of the same video, else the previous one."""
    nxt, sign = [], []
    for v in range(len(offsets) - 1):
        start, end = int(offsets[v]), int(offsets[v + 1])
        for i in range(start, end):
            if i + 1 < end:
                nxt.append(i + 1)
                sign.append(1.0)
            else:
                nxt.append(max(i - 1, start))
                sign.append(-1.0)
    return nxt, sign


def test_successor_rows_match_a_naive_loop() -> None:
    for offsets in ([0, 3, 4, 9], [0, 1], [0, 5, 7, 7, 8]):
        nxt, sign = successor_rows(np.array(offsets))
        want_nxt, want_sign = naive_successors(np.array(offsets))
        assert nxt.tolist() == want_nxt and sign.tolist() == want_sign, offsets


def naive_input(frames: np.ndarray, offsets: np.ndarray, rows, t: InputTransform) -> np.ndarray:
    """One frame at a time: the channels of ``t.motion``, then (x - mean) / std per channel."""
    nxt, sign = naive_successors(offsets)
    out = []
    for r in rows:
        x = frames[r].astype(np.float64).transpose(2, 0, 1) / 255.0
        y = frames[nxt[r]].astype(np.float64).transpose(2, 0, 1) / 255.0
        d = (y - x) * sign[r]
        chans = {"none": [x], "diff": [x, d], "stack": [x, y], "diffonly": [d]}[t.motion]
        z = np.concatenate(chans)
        out.append((z - t.mean[:, None, None]) / t.std[:, None, None])
    return np.stack(out)


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("norm", ["mean", "meanstd"])
def test_input_transform_matches_a_naive_loop(motion: str, norm: str) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (9, 5, 5, 3), dtype=np.uint8)
    offsets = np.array([0, 4, 5, 9])
    t = InputTransform.fit(frames, offsets, norm=norm, motion=motion, seed=1)
    assert t.channels == MOTION_CHANNELS[motion] == len(t.mean)
    if norm == "mean":
        assert (t.std == 1).all()
    nxt, sign = successor_rows(offsets)
    rows = np.array([0, 3, 4, 8, 2])
    got = t(frames[rows], frames[nxt[rows]], sign[rows]).numpy()
    np.testing.assert_allclose(got, naive_input(frames, offsets, rows, t), rtol=1e-5, atol=1e-5)
    again = InputTransform.from_state(t.state())
    assert again.motion == motion and np.array_equal(again.mean, t.mean)


def test_motion_vocabulary_is_the_inputs() -> None:
    assert set(MOTIONS) == set(MOTION_CHANNELS)


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"motion": "flow"}, "motion='flow': choose one of none, diff, stack, diffonly"),
        ({"input_norm": "std"}, "input_norm='std': choose one of mean, meanstd"),
        ({"head": "linear"}, "head='linear': choose one of none, mlp"),
        ({"head": "mlp", "model": "googlenet"}, "head='mlp': model 'googlenet' has no embedding"),
        ({"motion": "diff", "model": "resnet18"}, "motion='diff': needs 6 input channels"),
        ({"loss": "nce", "mu": True}, "mu=True: cannot be used with loss nce"),
        ({"temperature": 0}, "temperature=0.0: must be a positive"),
        ({"head_dim": 0}, "head_dim=0"),
    ],
)
def test_config_errors(options: dict, match: str) -> None:
    with pytest.raises(TcdnError, match=match):
        TrainConfig(**options)


def test_config_yaml_round_trip_and_set(tmp_path: Path) -> None:
    import yaml

    cfg = TrainConfig(**{**BN_NCE, "motion": "diffonly", "far_positive": False})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert TrainConfig.from_yaml(path) == cfg
    merged = TrainConfig.from_sources(
        path, overrides=["motion=diff", "temperature=0.2", "head=none"]
    )
    assert (merged.motion, merged.temperature, merged.head) == ("diff", 0.2, "none")
    assert parse_overrides(["far_positive=true"]) == {"far_positive": True}


def test_build_model_follows_the_config() -> None:
    cfg = TrainConfig(**{**BN_NCE, "motion": "diff", "image_size": 40})
    model = cfg.build_model(check_input=True)
    assert model.in_channels == 6 and model.embed_dim == 8 and model.init == "he"
    head_linear = model.stages["fc7"][4]
    assert torch.equal(head_linear.bias, torch.zeros_like(head_linear.bias))  # he reached the head
    assert cfg.build_model().in_channels == 6
    only = dataclasses.replace(cfg, motion="diffonly").build_model()
    assert only.in_channels == 3


# -- training, checkpoint, extraction ---------------------------------------------------------------
@pytest.fixture(scope="module")
def diff_run(train_frames: FrameSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("bn_nce_diff")
    train(train_frames, small_config(**BN_NCE, motion="diff"), run, progress=False)
    return run


def test_training_logs_finite_nce_diagnostics(diff_run: Path) -> None:
    import json

    records = [json.loads(line) for line in (diff_run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for r in records:
        assert math.isfinite(r["loss"]) and r["loss"] > 0
        assert 0 <= r["hinge_active"] <= 1


def test_checkpoint_reproduces_the_training_input(diff_run: Path, train_frames: FrameSet) -> None:
    # read with weights_only=True: only tensors and plain values
    raw = torch.load(next(diff_run.glob("step_*.pt")), weights_only=True)
    assert isinstance(raw["input"]["mean"], torch.Tensor) and raw["input"]["motion"] == "diff"
    ckpt = load_checkpoint(diff_run)
    t = input_transform(ckpt)
    assert t is not None and t.channels == 6
    fitted = InputTransform.fit(
        train_frames.frames, train_frames.offsets, norm="meanstd", motion="diff", seed=0
    )
    np.testing.assert_array_equal(t.mean, fitted.mean)
    np.testing.assert_array_equal(t.std, fitted.std)
    model, _, _ = model_from_checkpoint(ckpt)
    # a subset of rows (every 3rd frame): each row's successor is still the next frame of its
    # video in the frame set, as in training
    rows = train_frames.rows(stride=3)
    want = model.forward_features(
        torch.from_numpy(naive_input(train_frames.frames, train_frames.offsets, rows, t)).float()
    ).detach()
    featurizer = FrameFeaturizer(train_frames, rows, ckpt, progress=False)
    got = featurizer.features("trained")
    assert got.shape == (len(rows), 64)  # fc6, below the head
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    # the random-init baseline is the same architecture on the same input
    assert featurizer.features("random_init", 0).shape == (len(rows), 64)


def test_checkpoint_without_input_statistics_is_refused(diff_run: Path, tmp_path: Path) -> None:
    ckpt = torch.load(next(diff_run.glob("step_*.pt")), weights_only=True)
    ckpt["input"] = None
    path = tmp_path / "step_00000003.pt"
    torch.save(ckpt, path)
    with pytest.raises(TcdnError, match="holds no input statistics"):
        load_checkpoint(path)


def test_diffonly_trains_and_resumes(train_frames: FrameSet, tmp_path: Path) -> None:
    cfg = small_config(**{**BN_NCE, "motion": "diffonly", "steps": 2, "checkpoint_every": 1})
    train(train_frames, cfg, tmp_path / "a", progress=False)
    longer = dataclasses.replace(cfg, steps=3)
    train(train_frames, longer, tmp_path / "a", resume=True, progress=False)
    train(train_frames, longer, tmp_path / "b", progress=False)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], msg=key)
