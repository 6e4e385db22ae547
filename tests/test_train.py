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


# -- the other losses ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "tuple_size", "embed", "batch", "margin"),
    [("sfa", 2, 4096, 120, 1.0), ("ld", 3, 1024, 40, 0.5)],
)
def test_resolved_defaults_of_sfa_and_ld(loss, tuple_size, embed, batch, margin) -> None:
    cfg = TrainConfig(loss=loss).resolved()
    assert (cfg.tuple_size, cfg.embed_dim, cfg.batch_size, cfg.margin) == (
        tuple_size,
        embed,
        batch,
        margin,
    )


@pytest.mark.parametrize("loss", ["sfa", "ld"])
def test_sfa_and_ld_train(loss: str, train_frames: FrameSet, tmp_path: Path) -> None:
    last = train(
        train_frames,
        small_config(loss=loss, steps=2, checkpoint_every=2, batch_size=6),
        tmp_path,
        progress=False,
    )
    ckpt = load_checkpoint(last)
    assert ckpt["config"]["loss"] == loss
    records = [json.loads(r) for r in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(math.isfinite(r["loss"]) for r in records)
    init = train_mod.model_from_config(small_config(loss=loss))
    assert not torch.equal(
        ckpt["model"]["stages.fc7.1.weight"], init.state_dict()["stages.fc7.1.weight"]
    )


# -- schedules -----------------------------------------------------------------------------------
def _lrs(run: Path) -> list[float]:
    return [json.loads(r)["lr"] for r in (run / "log.jsonl").read_text().splitlines()]


def test_cosine_schedule_with_warmup(train_frames: FrameSet, tmp_path: Path) -> None:
    cfg = small_config(schedule="cosine", warmup=2, steps=6, lr=0.1, checkpoint_every=6)
    train(train_frames, cfg, tmp_path, progress=False)
    # the lr logged after step s is the factor at s: warm-up covers steps 0-1, the cosine 2-6
    expected = []
    for s in range(1, 7):
        f = 0.5 * (1 + math.cos(math.pi * min(max(s - 2, 0) / 4, 1.0)))
        if s < 2:
            f *= (s + 1) / 2
        expected.append(0.1 * f)
    assert _lrs(tmp_path) == pytest.approx(expected)
    assert _lrs(tmp_path)[-1] == pytest.approx(0.0)


def test_step_schedule_decays(train_frames: FrameSet, tmp_path: Path) -> None:
    cfg = small_config(lr_step=2, lr_gamma=0.5, steps=5, checkpoint_every=5)
    train(train_frames, cfg, tmp_path, progress=False)
    assert _lrs(tmp_path) == pytest.approx([0.01, 0.005, 0.005, 0.0025, 0.0025])


# -- augmentation, bf16, channels-last: still exactly resumable --------------------------------------
AUGMENTED = {"augment": "appearance"}


@pytest.mark.parametrize(
    "options",
    [AUGMENTED, {"bf16": True}, {"loss": "sfa", "batch_size": 6, **AUGMENTED}],
    ids=["augment", "bf16", "sfa-augment"],
)
def test_interrupted_and_resumed_equals_uninterrupted(
    options: dict[str, object], train_frames: FrameSet, tmp_path: Path
) -> None:
    full = train(train_frames, small_config(steps=4, **options), tmp_path / "full", progress=False)
    part = tmp_path / "part"
    train(train_frames, small_config(steps=2, **options), part, progress=False)
    resumed = train(
        train_frames, small_config(steps=4, **options), part, resume=True, progress=False
    )
    a, b = torch.load(full, weights_only=False), torch.load(resumed, weights_only=False)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["augment_rng"], b["augment_rng"])


def test_augmentation_changes_what_is_learned(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    last = train(train_frames, small_config(**AUGMENTED), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=False)["model"]
    b = torch.load(last, weights_only=False)["model"]
    assert not torch.equal(a["stages.fc7.1.weight"], b["stages.fc7.1.weight"])


def test_augmentation_with_zero_strengths_changes_nothing(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    """With every strength at 0 the augmented path computes the plain inputs (up to rounding)."""
    off = {
        "augment": "appearance",
        "aug_flip": 0.0,
        "aug_crop_scale": 1.0,
        "aug_brightness": 0.0,
        "aug_contrast": 0.0,
        "aug_saturation": 0.0,
        "aug_grey": 0.0,
    }
    last = train(train_frames, small_config(**off), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=False)["model"]
    b = torch.load(last, weights_only=False)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def test_channels_last_matches_default_layout(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    last = train(train_frames, small_config(channels_last=True), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=False)["model"]
    b = torch.load(last, weights_only=False)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3)


def test_resume_may_change_logging_options(train_frames: FrameSet, tmp_path: Path) -> None:
    train(train_frames, small_config(steps=2), tmp_path, progress=False)
    last = train(
        train_frames,
        small_config(steps=3, log_every=3, keep_last=1, checkpoint_every=3),
        tmp_path,
        resume=True,
        progress=False,
    )
    assert last.name == "step_00000003.pt"
    with pytest.raises(TcdnError, match="differs in augment"):
        train(
            train_frames, small_config(steps=4, **AUGMENTED), tmp_path, resume=True, progress=False
        )


# -- TensorBoard, compile, devices -------------------------------------------------------------------
def test_tensorboard_events(train_frames: FrameSet, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    train(train_frames, small_config(steps=2, tensorboard=True), tmp_path, progress=False)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0


def test_tensorboard_missing_is_a_clear_error(
    train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(TcdnError, match="needs the tensorboard package"):
        train(train_frames, small_config(steps=1, tensorboard=True), tmp_path, progress=False)


def test_compile_without_a_compiler_is_a_clear_error(
    train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_mod.shutil, "which", lambda _name: None)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(TcdnError, match="C\\+\\+ compiler"):
        train(train_frames, small_config(compile=True), tmp_path, progress=False)
    assert not list_checkpoints(tmp_path)


@pytest.mark.slow
def test_compiled_run_matches_eager(train_frames: FrameSet, tmp_path: Path) -> None:
    """torch.compile (inductor, C++ on CPU): the same weights as eager, to rounding; checkpoints
    hold the plain module's names, so they load without compile. Dropout is off: inductor draws
    its masks with its own generator, so with dropout the two runs differ by design."""
    no_dropout = {"model_options": {"fc6_dim": 64, "dropout": 0.0}, "steps": 4}
    eager = train(train_frames, small_config(**no_dropout), tmp_path / "eager", progress=False)
    compiled = train(
        train_frames,
        small_config(compile=True, **no_dropout),
        tmp_path / "compiled",
        progress=False,
    )
    a = torch.load(eager, weights_only=False)["model"]
    b = torch.load(compiled, weights_only=False)["model"]
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3)
    # Every convolution trained (torch 2.13's NCHW compiled kernels gave them zero gradients).
    torch.manual_seed(0)
    init = train_mod.model_from_config(small_config(**no_dropout)).state_dict()
    for name in (n for n in b if n.endswith(".weight") and b[n].ndim == 4):
        assert (b[name] - init[name]).abs().max() > 1e-5, name


def test_compile_needs_channels_last() -> None:
    with pytest.raises(TcdnError, match=r"compile.*channels_last"):
        small_config(compile=True, channels_last=False)


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_mod.resolve_device("auto") == torch.device("cpu")
    assert train_mod.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(TcdnError, match="CUDA is not available"):
        train_mod.resolve_device("cuda")
    with pytest.raises(TcdnError, match="--device must be"):
        train_mod.resolve_device("tpu")


# -- distributed ---------------------------------------------------------------------------------
def test_uneven_global_batch_is_refused_before_starting(
    train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(TcdnError, match="divisible by 3"):
        train(train_frames, small_config(batch_size=4), tmp_path, progress=False)
    assert not tmp_path.joinpath("config.yaml").exists()


#: largest allowed |w_ddp - w_single| over all weights after 4 steps: only the order in which
#: floating-point sums are taken differs (measured: about 2e-8 for weights of about 0.1)
DDP_TOLERANCE = 1e-6


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    """``torchrun --nproc_per_node=2 -m tcdn train`` on CPU (gloo) takes the steps of a single
    process with the same global batch. Dropout is off: each rank draws its own masks."""
    import os
    import subprocess
    import sys

    cfg = small_config(
        steps=4,
        batch_size=6,
        lr=0.5,
        normalize=True,
        squared=True,
        augment="appearance",
        model_options={"fc6_dim": 64, "dropout": 0.0},
        threads=1,
    )
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text(yaml.safe_dump(cfg.to_dict()))
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [
        str(synthetic_collection),
        "--config",
        str(yaml_path),
        "--size",
        str(TRAIN_SIZE),
        "--no-progress",
    ]
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tcdn",
            "train",
            *common,
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from tcdn.data.video import load_frames

    frames = load_frames(synthetic_collection, size=TRAIN_SIZE, progress=False)
    single = train(frames, cfg, tmp_path / "single", progress=False)
    a = torch.load(tmp_path / "ddp" / "step_00000004.pt", weights_only=False)
    b = torch.load(single, weights_only=False)
    assert a["world_size"] == 2 and b["world_size"] == 1
    start = torch.load(tmp_path / "single" / "step_00000002.pt", weights_only=False)["model"]
    moved = max((b["model"][k] - start[k]).abs().max().item() for k in start)
    assert moved > 100 * DDP_TOLERANCE  # the runs did learn something between steps 2 and 4
    for name, tensor in b["model"].items():
        diff = (a["model"][name] - tensor).abs().max().item()
        assert diff < DDP_TOLERANCE, (name, diff)
    assert a["sampler"]["bit_generator"] == b["sampler"]["bit_generator"]
    logs = [json.loads(r) for r in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4]  # rank 0 alone writes the log


# -- config options and --set --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("schedule", "linear"),
        ("warmup", -1),
        ("augment", "strong"),
        ("aug_flip", 1.5),
        ("aug_crop_scale", 0.0),
        ("aug_grey", -0.1),
    ],
)
def test_config_rejects_bad_new_values(option: str, value: object) -> None:
    with pytest.raises(TcdnError, match=f"invalid training option {option}="):
        TrainConfig(**{option: value})  # type: ignore[arg-type]


def test_parse_overrides() -> None:
    assert train_mod.parse_overrides(
        ["lr=0.001", "model_options={dropout: 0}", "grad_clip=null"]
    ) == {
        "lr": 0.001,
        "model_options": {"dropout": 0},
        "grad_clip": None,
    }
    cfg = TrainConfig.from_dict(train_mod.parse_overrides(["lr=1e-3", "bf16=true", "steps=12"]))
    assert (cfg.lr, cfg.bf16, cfg.steps) == (1e-3, True, 12)
    with pytest.raises(TcdnError, match="option=value"):
        train_mod.parse_overrides(["lr"])
    with pytest.raises(TcdnError, match="cannot read the value"):
        train_mod.parse_overrides(["model_options={a: [1"])


def test_cli_set_overrides_config_and_flags(
    synthetic_collection: Path, tmp_path: Path, restore_logging: None
) -> None:
    from tcdn.cli import main

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(small_config(steps=5).to_dict()))
    code = main(
        [
            "train",
            str(synthetic_collection),
            "--out",
            str(tmp_path / "run"),
            "--config",
            str(cfg),
            "--no-progress",
            "--steps",
            "3",
            "--set",
            "steps=1",
            "--set",
            "loss=ld",
            "--augment",
            "appearance",
            "--schedule",
            "cosine",
            "--device",
            "auto",
            "--no-channels-last",
        ]
    )
    assert code == 0
    saved = load_checkpoint(tmp_path / "run")["config"]
    assert (saved["steps"], saved["loss"], saved["augment"], saved["schedule"]) == (
        1,
        "ld",
        "appearance",
        "cosine",
    )
    assert saved["channels_last"] is False and TrainConfig().channels_last is True
    assert (
        main(["train", str(synthetic_collection), "--out", str(tmp_path / "r2"), "--set", "lr"])
        == 2
    )
