"""The training loop (``tcdn.training.run``, ``.trainer``, ``.state``, ``.runlog``): checkpoints, exact resume, losses, schedules, options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import tcdn.training.run as run_mod
import tcdn.training.trainer as trainer_mod
from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.training.checkpoint import list_checkpoints, load_checkpoint, model_from_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.run import train
from tests.conftest import small_config


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
    for r in records:  # every diagnostic, on every logged step
        for key in ("embedding_spread", "relative_spread", "alignment", "uniformity"):
            assert math.isfinite(r[key]), key
        assert 0 <= r["hinge_active"] <= 1
        stages = [k for k in r if k.startswith("grad_norm/")]
        assert "grad_norm/conv1" in stages and "grad_norm/fc7" in stages
        assert r["grad_norm"] == pytest.approx(math.sqrt(sum(r[k] ** 2 for k in stages)))


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
    before = torch.load(six_step_run / "step_00000006.pt", weights_only=True)["model"]
    last = train(train_frames, small_config(), six_step_run, resume=True, progress=False)
    assert last == six_step_run / "step_00000006.pt"
    after = torch.load(last, weights_only=True)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_resume_is_exact(six_step_run: Path, train_frames: FrameSet, tmp_path: Path) -> None:
    train(train_frames, small_config(steps=3), tmp_path, progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt", "step_00000003.pt"]
    last = train(train_frames, small_config(steps=6), tmp_path, resume=True, progress=False)
    assert last.name == "step_00000006.pt"

    full = torch.load(six_step_run / "step_00000006.pt", weights_only=True)
    resumed = torch.load(last, weights_only=True)
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
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=True)["model"]
    b = torch.load(last, weights_only=True)["model"]
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
    real = trainer_mod.QuadrupletLoss

    class NanAtThirdStep(real):  # type: ignore[misc, valid-type]
        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            loss = super().forward(*args)
            return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(trainer_mod, "QuadrupletLoss", NanAtThirdStep)
    with pytest.raises(TcdnError, match="at step 3") as info:
        train(train_frames, small_config(), tmp_path, progress=False)
    assert "nan" in str(info.value)
    assert "step_00000002.pt" in str(info.value)  # the last good checkpoint
    assert "--lr" in str(info.value)
    assert "clipping at norm 5 is already on" in str(info.value)  # not advice to turn it on
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt"]


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
    init = small_config(loss=loss).build_model()
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
    a, b = torch.load(full, weights_only=True), torch.load(resumed, weights_only=True)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["augment_rng"], b["augment_rng"])


def test_augmentation_changes_what_is_learned(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    last = train(train_frames, small_config(**AUGMENTED), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=True)["model"]
    b = torch.load(last, weights_only=True)["model"]
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
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=True)["model"]
    b = torch.load(last, weights_only=True)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def test_channels_last_matches_default_layout(
    six_step_run: Path, train_frames: FrameSet, tmp_path: Path
) -> None:
    last = train(train_frames, small_config(channels_last=True), tmp_path, progress=False)
    a = torch.load(six_step_run / "step_00000006.pt", weights_only=True)["model"]
    b = torch.load(last, weights_only=True)["model"]
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
    monkeypatch.setattr(run_mod.shutil, "which", lambda _name: None)
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
    a = torch.load(eager, weights_only=True)["model"]
    b = torch.load(compiled, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3)
    # Every convolution trained (torch 2.13's NCHW compiled kernels gave them zero gradients).
    torch.manual_seed(0)
    init = small_config(**no_dropout).build_model().state_dict()
    for name in (n for n in b if n.endswith(".weight") and b[n].ndim == 4):
        assert (b[name] - init[name]).abs().max() > 1e-5, name
