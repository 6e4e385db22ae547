"""One fine-tuning run (``tcdn.transfer.finetune``): schedule, augmentation, checkpoints, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tcdn.errors import TcdnError
from tcdn.transfer.classifier import build_classifier
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.finetune import (
    FinetuneRun,
    TrainAugment,
    finetune,
    load_run_checkpoint,
    lr_factor,
)


# -- the schedule -----------------------------------------------------------------------------------
def lr_reference(cfg: FinetuneConfig, spe: int, step: int) -> float:
    epoch = step // spe
    if cfg.schedule == "cosine":
        start, end = cfg.warmup * spe, cfg.epochs * spe
        t = 0.0 if step < start else (step - start) / (end - start)
        f = (1 + math.cos(math.pi * t)) / 2
    else:
        f = cfg.lr_gamma ** (epoch // cfg.lr_step)
    if step < cfg.warmup * spe:
        f *= (step + 1) / (cfg.warmup * spe)
    return f


@pytest.mark.parametrize(
    "options",
    [
        {"schedule": "cosine"},
        {"schedule": "cosine", "warmup": 2},
        {"schedule": "step", "lr_step": 3, "lr_gamma": 0.5},
        {"schedule": "step", "lr_step": 2, "warmup": 1},
    ],
)
def test_lr_factor_matches_reference(options: dict[str, Any]) -> None:
    cfg = FinetuneConfig(epochs=7, **options)
    factor = lr_factor(cfg, 3)
    for step in range(21):
        assert factor(step) == pytest.approx(lr_reference(cfg, 3, step)), step
    assert factor(0) <= 1.0
    if cfg.schedule == "cosine":
        assert factor(20) < 0.02  # near 0 at the last step


# -- augmentation -----------------------------------------------------------------------------------
def crop_flip_reference(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Pad, crop and flip one image at a time, with the same draws in the same order."""
    n, _, h, w = x.shape
    pad = max(h // 8, 1)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        padded = F.pad(x[i], (pad, pad, pad, pad))
        crop = padded[:, int(dy[i]) : int(dy[i]) + h, int(dx[i]) : int(dx[i]) + w]
        out[i] = crop.flip(2) if flip[i] else crop
    return out


def test_crop_flip_matches_reference() -> None:
    x = torch.rand(9, 3, 16, 12)
    got = TrainAugment("crop_flip")(x, torch.Generator().manual_seed(4))
    want = crop_flip_reference(x, torch.Generator().manual_seed(4))
    assert torch.equal(got, want)
    assert not torch.equal(got, x)


def test_other_augmentations() -> None:
    x = torch.rand(64, 3, 16, 16)
    gen = torch.Generator().manual_seed(0)
    assert TrainAugment("none")(x, gen) is x
    flipped = TrainAugment("flip")(x, gen)
    same = [torch.equal(flipped[i], x[i]) for i in range(64)]
    mirrored = [torch.equal(flipped[i], x[i].flip(2)) for i in range(64)]
    assert all(a or b for a, b in zip(same, mirrored, strict=True))
    assert 16 < sum(mirrored) < 48
    resized = TrainAugment("resized_crop_flip")(x, gen)
    assert resized.shape == x.shape and 0 <= resized.min() and resized.max() <= 1


# -- runs -------------------------------------------------------------------------------------------
def colour_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """32x32 images of 3 classes, each a noisy version of its own colour."""
    rng = np.random.default_rng(seed)
    base = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])
    labels = np.repeat(np.arange(3), n_per_class)
    noise = rng.integers(-40, 41, (len(labels), 32, 32, 3))
    return np.clip(base[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8), labels


TRAIN = colour_images(6, 0)
TEST = colour_images(4, 1)
MEAN = np.array([100.0, 100.0, 100.0], np.float32)
SEEDS = (11, 12, 13)


def run(cfg: FinetuneConfig, out: Path, ckpt: dict[str, Any], **kwargs: Any) -> Any:
    model, _ = build_classifier(
        ckpt["config"], 3, init="random_init", seed=7, dropout=cfg.head_dropout
    )
    return finetune(
        model,
        *TRAIN,
        *TEST,
        cfg,
        out,
        mean=MEAN,
        seeds=SEEDS,
        meta={"source": "random_init", "repeat": 0},
        progress=False,
        **kwargs,
    )


CFG = FinetuneConfig(
    dataset="cifar10", epochs=4, batch_size=5, lr=0.05, head_dropout=0.5, min_steps=0
)


@pytest.fixture(scope="module")
def four_epochs(
    cifar_ckpt: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("ft4")
    return out, run(CFG, out, cifar_ckpt)


def test_run_learns_and_writes_its_files(four_epochs: tuple[Path, Any]) -> None:
    out, result = four_epochs
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.accuracy == result.history[-1]["test_accuracy"]
    assert result.best_accuracy == max(h["test_accuracy"] for h in result.history)
    assert result.history[result.best_epoch - 1]["test_accuracy"] == result.best_accuracy
    assert result.history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine ends at 0
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    saved = json.loads((out / "result.json").read_text())
    assert saved["accuracy"] == result.accuracy and saved["meta"]["repeat"] == 0
    assert not [p for p in out.iterdir() if "partial" in p.name]


def test_fine_tuning_learns(
    cifar_ckpt: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = FinetuneConfig(
        dataset="cifar10",
        epochs=20,
        batch_size=6,
        lr=0.05,
        augment="none",
        head_init="random",
        min_steps=0,
        eval_every=1,
    )
    with caplog.at_level("WARNING"):
        result = run(cfg, tmp_path, cifar_ckpt)
    assert "did not learn" not in caplog.text
    assert result.history[0]["test_accuracy"] < 70
    assert result.accuracy > 90  # 3 colours, chance 33%
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] - 0.2


def test_checkpoints_load_with_weights_only(four_epochs: tuple[Path, Any]) -> None:
    out, result = four_epochs
    last = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    assert last["epoch"] == 4 and best["epoch"] == result.best_epoch
    assert last["config"]["augment"] == "crop_flip"  # auto, resolved for cifar10
    assert load_run_checkpoint(out / "last.pt")["best_accuracy"] == result.best_accuracy
    # the best checkpoint's network gives the best accuracy again
    model, _ = build_classifier(cifar_checkpoint_config(), 3, init="random_init", dropout=0.5)
    model.load_state_dict(best["model"])
    from tcdn.transfer.finetune import predict

    pred = predict(model, TEST[0], MEAN, torch.device("cpu"))
    assert 100.0 * np.mean(pred == TEST[1]) == pytest.approx(result.best_accuracy)


def cifar_checkpoint_config() -> dict[str, Any]:
    from tests.transfer.conftest import cifar_checkpoint

    return cifar_checkpoint()["config"]


def test_bad_checkpoint_file(tmp_path: Path) -> None:
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(TcdnError, match="not a tcdn fine-tuning checkpoint"):
        load_run_checkpoint(tmp_path / "x.pt")
    (tmp_path / "y.pt").write_bytes(b"junk")
    with pytest.raises(TcdnError, match="cannot read fine-tuning checkpoint"):
        load_run_checkpoint(tmp_path / "y.pt")


def test_interrupted_run_resumes_exactly(
    four_epochs: tuple[Path, Any],
    cifar_ckpt: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full_dir, full = four_epochs
    real = FinetuneRun.train_epoch

    def stop_in_third(self: FinetuneRun, bar: Any = None) -> dict[str, float]:
        if self.epoch == 2:
            raise KeyboardInterrupt
        return real(self, bar)

    monkeypatch.setattr(FinetuneRun, "train_epoch", stop_in_third)
    with pytest.raises(KeyboardInterrupt):
        run(CFG, tmp_path, cifar_ckpt)
    assert load_run_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    assert not (tmp_path / "result.json").exists()
    monkeypatch.setattr(FinetuneRun, "train_epoch", real)
    with pytest.raises(TcdnError, match="--resume"):
        run(CFG, tmp_path, cifar_ckpt)
    resumed = run(CFG, tmp_path, cifar_ckpt, resume=True)

    a = torch.load(full_dir / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "last.pt", weights_only=True)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert torch.equal(a["torch_rng"], b["torch_rng"])
    assert a["order_rng"] == b["order_rng"]
    assert torch.equal(a["augment_rng"], b["augment_rng"])

    def strip(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert strip(resumed.history) == strip(full.history)
    assert resumed.accuracy == full.accuracy
    epochs = [json.loads(r)["epoch"] for r in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]  # no epoch trained twice


def test_resume_of_a_complete_run_reads_it_back(
    four_epochs: tuple[Path, Any], cifar_ckpt: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, full = four_epochs

    def no_training(self: FinetuneRun, bar: Any = None) -> dict[str, float]:
        raise AssertionError("a complete run trained again")

    monkeypatch.setattr(FinetuneRun, "train_epoch", no_training)
    again = run(CFG, out, cifar_ckpt, resume=True)
    assert again.accuracy == full.accuracy and again.history == full.history


def test_resume_with_other_options_or_data(
    four_epochs: tuple[Path, Any], cifar_ckpt: dict[str, Any]
) -> None:
    out, _ = four_epochs
    other = FinetuneConfig(
        dataset="cifar10", epochs=4, batch_size=5, lr=0.1, head_dropout=0.5, min_steps=0
    )
    with pytest.raises(TcdnError, match=r"cannot resume .*config\.lr"):
        run(other, out, cifar_ckpt, resume=True)
    model, _ = build_classifier(cifar_ckpt["config"], 3, init="random_init", dropout=0.5)
    with pytest.raises(TcdnError, match=r"meta\.repeat"):
        finetune(
            model, *TRAIN, *TEST, CFG, out, mean=MEAN, seeds=SEEDS,
            meta={"source": "random_init", "repeat": 1}, resume=True, progress=False,
        )  # fmt: skip


def test_non_finite_loss_is_a_user_error(cifar_ckpt: dict[str, Any], tmp_path: Path) -> None:
    cfg = FinetuneConfig(
        dataset="cifar10", epochs=2, batch_size=6, lr=1e6, weight_decay=0, grad_clip=0
    )
    with pytest.raises(TcdnError, match="lower --lr"):
        run(cfg, tmp_path, cifar_ckpt)


def test_eval_every_evaluates_and_checkpoints_less_often_and_resumes_exactly(
    cifar_ckpt: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = FinetuneConfig(
        dataset="cifar10",
        epochs=5,
        batch_size=6,
        lr=0.05,
        head_dropout=0.5,
        eval_every=2,
        min_steps=0,
    )
    full = run(cfg, tmp_path / "full", cifar_ckpt)
    assert [h["epoch"] for h in full.history if "test_accuracy" in h] == [2, 4, 5]
    assert full.best_epoch in (2, 4, 5)
    real = FinetuneRun.train_epoch

    def stop_in_fourth(self: FinetuneRun, bar: Any = None) -> dict[str, float]:
        if self.epoch == 3:  # epoch 3 was trained but not checkpointed
            raise KeyboardInterrupt
        return real(self, bar)

    monkeypatch.setattr(FinetuneRun, "train_epoch", stop_in_fourth)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "cut", cifar_ckpt)
    assert load_run_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    monkeypatch.setattr(FinetuneRun, "train_epoch", real)
    resumed = run(cfg, tmp_path / "cut", cifar_ckpt, resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.accuracy == full.accuracy
    logged = (tmp_path / "cut" / "log.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in logged] == [1, 2, 3, 4, 5]


def test_a_run_that_did_not_learn_is_named(
    cifar_ckpt: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = FinetuneConfig(
        dataset="cifar10", epochs=1, batch_size=18, lr=1e-6, min_steps=0, head_init="random"
    )
    with caplog.at_level("WARNING"):
        run(cfg, tmp_path / "slow", cifar_ckpt)
    assert "did not learn" in caplog.text and "ln(3)" in caplog.text
