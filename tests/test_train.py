"""The training loop (``tcdn.train``): checkpoints, exact resume, config validation, bad losses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

import tcdn.train as train_mod
from conftest import TRAIN_SIZE
from tcdn.data.video import FrameSet
from tcdn.errors import TcdnError
from tcdn.train import (
    TrainConfig,
    list_checkpoints,
    load_checkpoint,
    model_from_checkpoint,
    train,
)


def small_config(**overrides: object) -> TrainConfig:
    """A tiny Lq run: AlexNet with a 64-wide fc6 and a 16-d embedding, 4 quadruplets per step.

    Dropout stays at its default (0.5), so resuming is only exact if the torch RNG is restored.
    """
    options: dict[str, object] = {
        "image_size": TRAIN_SIZE,
        "model_options": {"fc6_dim": 64},
        "embed_dim": 16,
        "batch_size": 4,
        "steps": 6,
        "checkpoint_every": 2,
        "keep_last": 2,
        "log_every": 1,
        "lr": 0.01,
        "far": 5,
    }
    options.update(overrides)
    return TrainConfig(**options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def six_step_run(train_frames: FrameSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-step run with a checkpoint every 2 steps, keeping the last 2."""
    run = tmp_path_factory.mktemp("run6")
    train(train_frames, small_config(), run, progress=False)
    return run


# -- checkpoints ---------------------------------------------------------------------------------
def test_checkpoints_written_and_pruned(six_step_run: Path) -> None:
    names = [p.name for p in list_checkpoints(six_step_run)]
    assert names == ["step_00000004.pt", "step_00000006.pt"]  # keep_last=2 of 2, 4, 6
    assert not [p for p in six_step_run.rglob("*") if "partial" in p.name]
    assert (six_step_run / "config.yaml").is_file()


def test_log_has_every_step(six_step_run: Path) -> None:
    records = [json.loads(line) for line in (six_step_run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(r["loss"]) and r["loss"] >= 0 for r in records)
    assert all(r["lr"] == pytest.approx(0.01) for r in records)


def test_checkpoint_contents(six_step_run: Path, train_frames: FrameSet) -> None:
    ckpt = load_checkpoint(six_step_run)  # a folder means its last checkpoint
    assert Path(ckpt["path"]).name == "step_00000006.pt"
    assert ckpt["step"] == 6
    assert ckpt["videos"] == [v.name for v in train_frames.videos]
    cfg = TrainConfig.from_dict(ckpt["config"])
    assert cfg == small_config().resolved()
    model, mean, cfg2 = model_from_checkpoint(ckpt)
    assert not model.training
    assert mean.shape == (3,) and (0 < mean).all() and (mean < 255).all()
    assert cfg2.embed_dim == 16
    # config.yaml holds the resolved config, readable back
    assert TrainConfig.from_yaml(six_step_run / "config.yaml") == cfg


def test_keep_last_one(train_frames: FrameSet, tmp_path: Path) -> None:
    last = train(
        train_frames,
        small_config(steps=3, checkpoint_every=1, keep_last=1),
        tmp_path,
        progress=False,
    )
    assert last == tmp_path / "step_00000003.pt"
    assert list_checkpoints(tmp_path) == [last]


def test_existing_run_without_resume(six_step_run: Path, train_frames: FrameSet) -> None:
    before = sorted(p.name for p in six_step_run.iterdir())
    with pytest.raises(TcdnError, match="already holds checkpoints") as info:
        train(train_frames, small_config(), six_step_run, progress=False)
    assert "--resume" in str(info.value)
    assert "step_00000006.pt" in str(info.value)
    assert sorted(p.name for p in six_step_run.iterdir()) == before


def test_resume_finished_run_is_a_no_op(six_step_run: Path, train_frames: FrameSet) -> None:
    before = torch.load(six_step_run / "step_00000006.pt", weights_only=False)["model"]
    last = train(train_frames, small_config(), six_step_run, resume=True, progress=False)
    assert last == six_step_run / "step_00000006.pt"
    after = torch.load(last, weights_only=False)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_is_exact(six_step_run: Path, train_frames: FrameSet, tmp_path: Path) -> None:
    train(train_frames, small_config(steps=3), tmp_path, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt", "step_00000003.pt"]
    last = train(train_frames, small_config(steps=6), tmp_path, resume=True, progress=False)
    assert last.name == "step_00000006.pt"

    full = torch.load(six_step_run / "step_00000006.pt", weights_only=False)
    resumed = torch.load(last, weights_only=False)
    assert full["model"].keys() == resumed["model"].keys()
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert full["sampler"]["bit_generator"] == resumed["sampler"]["bit_generator"]
    assert torch.equal(full["torch_rng"], resumed["torch_rng"])
    momentum = [s["momentum_buffer"] for s in full["optimizer"]["state"].values()]
    momentum2 = [s["momentum_buffer"] for s in resumed["optimizer"]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, momentum2, strict=True))
    steps = [json.loads(r)["step"] for r in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step trained twice


def test_different_seed_gives_different_weights(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    """The control for the exactness test: weights do depend on the run."""
    last = train(train_frames, small_config(seed=1), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=False)["model"]
    b = torch.load(last, weights_only=False)["model"]
    assert not torch.equal(a["stages.fc7.1.weight"], b["stages.fc7.1.weight"])


def test_resume_with_other_config(six_step_run: Path, train_frames: FrameSet) -> None:
    with pytest.raises(TcdnError, match="differs in lr") as info:
        train(
            train_frames, small_config(steps=8, lr=0.05), six_step_run, resume=True, progress=False
        )
    assert "step_00000006.pt" in str(info.value)


def test_frames_at_wrong_size(train_frames: FrameSet, tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="image_size=48"):
        train(train_frames, small_config(image_size=48), tmp_path, progress=False)


def test_siamese_loss_trains(train_frames: FrameSet, tmp_path: Path) -> None:
    last = train(
        train_frames, small_config(loss="ls", steps=2, checkpoint_every=2), tmp_path, progress=False
    )
    ckpt = load_checkpoint(last)
    assert ckpt["config"]["loss"] == "ls"
    assert ckpt["config"]["margin"] == 1.0  # the Ls default, resolved
    assert ckpt["model"]["stages.fc7.1.weight"].shape == (16, 64)


# -- non-finite loss -----------------------------------------------------------------------------
def test_non_finite_loss_names_the_step(
    train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = train_mod.QuadrupletLoss

    class NanAtThirdStep(real):  # type: ignore[misc, valid-type]
        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            loss = super().forward(*args)
            return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(train_mod, "QuadrupletLoss", NanAtThirdStep)
    with pytest.raises(TcdnError, match="at step 3") as info:
        train(train_frames, small_config(), tmp_path, progress=False)
    assert "nan" in str(info.value)
    assert "step_00000002.pt" in str(info.value)  # the last good checkpoint
    assert "--lr" in str(info.value)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt"]


# -- TrainConfig ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("loss", "triplet"),
        ("model", "vgg"),
        ("steps", 0),
        ("batch_size", 0),
        ("embed_dim", 0),
        ("image_size", 16),
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("lr_step", 0),
        ("lr_gamma", 0.0),
        ("lr_gamma", 1.5),
        ("grad_clip", 0.0),
        ("margin", 0.0),
        ("margin", float("nan")),
        ("window", 0),
        ("far", 1),
        ("negative_share", 1.5),
        ("checkpoint_every", 0),
        ("keep_last", 0),
        ("log_every", 0),
    ],
)
def test_config_rejects_bad_values(option: str, value: object) -> None:
    with pytest.raises(TcdnError, match=f"invalid training option {option}="):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


def test_config_error_lists_choices() -> None:
    with pytest.raises(TcdnError) as info:
        TrainConfig(model="vgg")
    assert "alexnet" in str(info.value) and "alexnet_lrcn" in str(info.value)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(TcdnError, match="unknown training option") as info:
        TrainConfig.from_dict({"steps": 5, "learning_rate": 0.1, "bach_size": 3})
    msg = str(info.value)
    assert "bach_size, learning_rate" in msg
    assert "known:" in msg and "batch_size" in msg and "lr" in msg


def test_resolved_defaults() -> None:
    lq, ls = TrainConfig().resolved(), TrainConfig(loss="ls").resolved()
    assert (lq.embed_dim, lq.batch_size, lq.margin, lq.tuple_size) == (1024, 40, 0.5, 4)
    assert (ls.embed_dim, ls.batch_size, ls.margin, ls.tuple_size) == (4096, 120, 1.0, 2)
    assert TrainConfig(margin=0.2).resolved().margin == 0.2


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = small_config(loss="ls", mu=True, grad_clip=None, margin=0.7, seed=3)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    back = TrainConfig.from_yaml(path)
    assert back == cfg
    assert back.model_options == {"fc6_dim": 64}
    assert back.grad_clip is None


def test_yaml_partial_file_keeps_defaults(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 12\nloss: ls\n")
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.steps, cfg.loss, cfg.lr) == (12, "ls", TrainConfig().lr)
    path.write_text("")
    assert TrainConfig.from_yaml(path) == TrainConfig()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("steps: [1, 2\n", "cannot read config file"),
        ("stepz: 3\n", "unknown training option"),
    ],
)
def test_bad_yaml(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(TcdnError, match=match):
        TrainConfig.from_yaml(path)


def test_missing_yaml(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="cannot read config file"):
        TrainConfig.from_yaml(tmp_path / "absent.yaml")


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(TcdnError, match="does not exist"):
        load_checkpoint(tmp_path / "step_00000001.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TcdnError, match="cannot read checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(TcdnError, match="not a tcdn checkpoint"):
        load_checkpoint(other)
