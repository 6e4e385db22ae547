"""What fine-tuning does to a transferred network (tcdn.transfer.warmstart, issue 21): BatchNorm
statistics re-estimated and then fixed, the new layer started at the linear probe, the transferred
layers at a fraction of the learning rate, and at least min_steps steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tcdn.training.config import TrainConfig
from tcdn.transfer.classifier import build_classifier
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.finetune import FinetuneRun, predict
from tcdn.transfer.probe import linear_probe
from tcdn.transfer.warmstart import MAX_LOGIT_SPREAD, adapt_batchnorm, param_groups

from .test_finetune import MEAN, SEEDS
from .test_finetune import TEST as TEST32
from .test_finetune import TRAIN as TRAIN32


def _upsample(data: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return data[0].repeat(2, axis=1).repeat(2, axis=2), data[1]


TRAIN, TEST = _upsample(TRAIN32), _upsample(TEST32)  # 64x64: AlexNet's smallest


def _bn_checkpoint() -> dict[str, Any]:
    cfg = TrainConfig(
        model="alexnet_bn",
        image_size=64,
        embed_dim=8,
        model_options={"fc6_dim": 16, "pool_size": 1, "dropout": 0.0, "init": "he"},
    )
    torch.manual_seed(0)
    return {"config": cfg.to_dict(), "model": cfg.build_model().state_dict(), "path": "bn.pt"}


def _run(cfg: FinetuneConfig, init: str = "trained") -> FinetuneRun:
    ckpt = _bn_checkpoint()
    model, report = build_classifier(ckpt["config"], 3, init=init, state=ckpt["model"], seed=1)
    loaded = {n for n, _ in report.loaded} if report is not None else set()
    return FinetuneRun(
        model, *TRAIN, *TEST, cfg, MEAN, torch.device("cpu"), SEEDS, {}, loaded=loaded
    )


def test_adapted_batchnorm_holds_the_training_images_statistics_and_stays_fixed() -> None:
    cfg = FinetuneConfig(dataset="cifar10", batch_size=6, head_init="random", min_steps=0)
    run = _run(cfg)
    assert run.frozen_bn  # every BatchNorm layer of the backbone was transferred
    first = run.frozen_bn[0]
    conv = run.model.backbone.stages["conv1"][0]  # type: ignore[index]
    x = torch.from_numpy(TRAIN[0]).permute(0, 3, 1, 2).float() / 255
    x = x - torch.as_tensor(MEAN).view(1, 3, 1, 1) / 255
    with torch.no_grad():
        h = conv(x)
    torch.testing.assert_close(first.running_mean, h.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    before = [m.running_mean.clone() for m in run.frozen_bn]
    run.train_epoch()
    for m, b in zip(run.frozen_bn, before, strict=True):
        torch.testing.assert_close(m.running_mean, b)  # eval mode: the statistics stay
    # bn: train lets them move (the behaviour before issue 21)
    moving = _run(FinetuneConfig(dataset="cifar10", batch_size=6, bn="train", min_steps=0))
    assert not moving.frozen_bn
    m0 = next(m for m in moving.model.modules() if isinstance(m, nn.BatchNorm2d))
    b0 = m0.running_mean.clone()
    moving.train_epoch()
    assert not torch.equal(m0.running_mean, b0)


def test_adapt_batchnorm_is_the_plain_average_over_batches() -> None:
    bn = nn.BatchNorm1d(2)
    model = nn.Sequential(bn)
    data = [torch.tensor([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([[4.0, 5.0], [6.0, 7.0]])]
    adapt_batchnorm(model, [bn], lambda: iter(data))
    torch.testing.assert_close(bn.running_mean, torch.tensor([3.0, 4.0]))  # of all 4 rows
    assert bn.momentum == 0.1 and not model.training


def test_the_probed_head_predicts_what_the_linear_probe_does() -> None:
    run = _run(FinetuneConfig(dataset="cifar10", batch_size=6))
    pred = predict(run.model, TRAIN[0], MEAN, torch.device("cpu"))
    with torch.no_grad():
        run.model.eval()
        x = torch.from_numpy(TRAIN[0]).permute(0, 3, 1, 2).float() / 255
        x = x - torch.as_tensor(MEAN).view(1, 3, 1, 1) / 255
        logits = run.model(x)
        feats = run.model.head[:-1](run.model.backbone(x)).numpy()  # type: ignore[index]
    want = linear_probe(feats, TRAIN[1], feats)
    np.testing.assert_array_equal(pred, want)  # before any step: the probe's predictions
    assert np.mean(pred == TRAIN[1]) > 0.8
    spread = (logits.max(1).values - logits.min(1).values).max()
    assert float(spread) <= MAX_LOGIT_SPREAD + 1e-4
    # a random init: its BatchNorm layers are new; their running statistics are the training
    # images' before the probe reads them, so that the probe fits what training sees
    fresh = _run(FinetuneConfig(dataset="cifar10", batch_size=18, augment="none"), "random_init")
    assert fresh.train_epoch()["train_loss"] < 1.5  # not the hundreds of a probe on (0, 1) stats
    rand = _run(FinetuneConfig(dataset="cifar10", batch_size=6, head_init="random"))
    assert not torch.equal(rand.model.head[-1].weight, run.model.head[-1].weight)  # type: ignore[index]


def test_transferred_layers_train_at_a_fraction_of_the_rate_and_new_ones_at_the_full() -> None:
    run = _run(FinetuneConfig(dataset="cifar10", lr=0.02, transferred_lr=0.1))
    lrs = sorted(g["lr"] for g in run.optimizer.param_groups)
    assert lrs == pytest.approx([0.002, 0.02])
    sizes = sorted(len(g["params"]) for g in run.optimizer.param_groups)
    assert sizes[0] == 2  # the new layer's weight and bias
    random = _run(FinetuneConfig(dataset="cifar10", lr=0.02), init="random_init")
    assert [g["lr"] for g in random.optimizer.param_groups] == [0.02]  # all of it is new
    assert param_groups(nn.Linear(2, 2), set(), 1.0, 0.1)[0]["lr"] == 1.0


def test_min_steps_raises_the_epochs_of_a_small_training_set(tmp_path: Path) -> None:
    cfg = FinetuneConfig(dataset="cifar10", epochs=3, batch_size=32, min_steps=10)
    assert cfg.epochs_for(18) == 10 and cfg.epochs_for(1000) == 3
    assert cfg.eval_interval(100) == 10 and FinetuneConfig(eval_every=4).eval_interval(100) == 4
    assert _run(cfg).epochs == 10
