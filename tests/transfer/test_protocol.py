"""A transfer experiment end to end (``tcdn.transfer.protocol`` and ``results``), on tiny data
(marked slow: each runs the whole protocol)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tcdn.transfer.finetune as finetune_mod
from tcdn.data.frameset import FrameSet
from tcdn.errors import TcdnError
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.images import video_frames
from tcdn.transfer.protocol import run_transfer
from tcdn.transfer.results import format_table, write_results
from tests.conftest import tiny_checkpoint

CFG = FinetuneConfig(
    dataset="videos", shots=2, repeats=2, epochs=2, batch_size=4, test_size=None, knn_k=1
)


@pytest.fixture(scope="module")
def experiment(
    train_frames: FrameSet, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("transfer")
    data = video_frames(train_frames, "synthetic")
    results = run_transfer(data, tiny_checkpoint(), CFG, out, progress=False)
    write_results(out, results)
    return out, results


@pytest.mark.slow
def test_results_record(experiment: tuple[Path, dict[str, Any]], train_frames: FrameSet) -> None:
    out, res = experiment
    assert res["format"] == "tcdn-transfer-results-1"
    assert set(res["results"]) == {"trained", "random_init", "raw_pixels"}
    assert set(res["results"]["trained"]) == {"finetune", "linear", "knn"}
    assert set(res["results"]["raw_pixels"]) == {"linear", "knn"}
    for source, per in res["results"].items():
        for protocol, entry in per.items():
            vals = entry["accuracy_values"]
            assert len(vals) == 2 and all(0 <= v <= 100 for v in vals), (source, protocol)
            assert entry["accuracy_mean"] == pytest.approx(np.mean(vals))
            assert entry["accuracy_std"] == pytest.approx(np.std(vals))
    ft = res["results"]["trained"]["finetune"]
    assert all(
        b >= a for a, b in zip(ft["accuracy_values"], ft["best_accuracy_values"], strict=True)
    )
    diff = res["differences"]["finetune"]
    want = np.subtract(
        ft["accuracy_values"], res["results"]["random_init"]["finetune"]["accuracy_values"]
    )
    assert diff["trained_minus_random_init_values"] == pytest.approx(want.tolist())
    assert res["n_classes"] == 3 and res["chance_accuracy"] == pytest.approx(100 / 3)
    assert res["n_train_values"] == [6, 6]  # 2 shots x 3 classes
    assert res["layer"] == "fc6"
    assert res["transfer"]["new"][0]["name"] == "head.1.weight"
    assert res["augment"] == "resized_crop_flip"
    assert json.loads((out / "results.json").read_text())["results"] == res["results"]


@pytest.mark.slow
def test_no_video_on_both_sides(
    experiment: tuple[Path, dict[str, Any]], train_frames: FrameSet
) -> None:
    out, res = experiment
    names = [v.name for v in train_frames.videos]
    for split in res["splits"]:
        test_videos = set(split["test_videos"])
        assert len(test_videos) == 3  # one of each class's two videos
        # the test side is every frame of those videos
        n_test = sum(int(train_frames.lengths[names.index(v)]) for v in test_videos)
        assert split["n_test"] == n_test
    # and the training frames come from the other videos: checked on the run's checkpoint meta
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["r00-random_init", "r00-trained", "r01-random_init", "r01-trained"]


@pytest.mark.slow
def test_learned_and_random_see_the_same_images(experiment: tuple[Path, dict[str, Any]]) -> None:
    import torch

    out, _ = experiment
    for r in (0, 1):
        a = torch.load(out / "runs" / f"r{r:02d}-trained" / "last.pt", weights_only=True)
        b = torch.load(out / "runs" / f"r{r:02d}-random_init" / "last.pt", weights_only=True)
        assert a["meta"]["train"] == b["meta"]["train"] and a["meta"]["test"] == b["meta"]["test"]
        assert a["meta"]["source"] == "trained" and b["meta"]["source"] == "random_init"
        assert a["mean"] == b["mean"]


@pytest.mark.slow
def test_table(experiment: tuple[Path, dict[str, Any]]) -> None:
    _, res = experiment
    table = format_table(res)
    lines = table.splitlines()
    assert "3 classes (chance 33.3)" in lines[0] and "2 per class" in lines[0]
    assert lines[1].split() == ["init", "finetune", "linear", "knn"]
    row = next(line for line in lines if line.startswith("trained "))
    assert f"{res['results']['trained']['knn']['accuracy_mean']:.2f}" in row
    assert any(line.startswith("trained - random_init") for line in lines)
    assert "finetune" in lines[-1] and "/2" in lines[-1]


@pytest.mark.slow
def test_rerun_needs_resume_and_resume_reads_runs_back(
    experiment: tuple[Path, dict[str, Any]],
    train_frames: FrameSet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, res = experiment
    data = video_frames(train_frames, "synthetic")
    with pytest.raises(TcdnError, match="--resume"):
        run_transfer(data, tiny_checkpoint(), CFG, out, progress=False)

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a complete run trained again")

    monkeypatch.setattr(finetune_mod.FinetuneRun, "train_epoch", no_training)
    again = run_transfer(data, tiny_checkpoint(), CFG, out, resume=True, progress=False)
    assert again["results"] == res["results"]
    # another checkpoint is other weights: its runs cannot be resumed from these
    with pytest.raises(TcdnError, match=r"meta\.weights"):
        run_transfer(data, tiny_checkpoint(seed=1), CFG, out, resume=True, progress=False)


@pytest.mark.slow
def test_frozen_protocols_only(train_frames: FrameSet, tmp_path: Path) -> None:
    cfg = FinetuneConfig(
        dataset="videos", protocols=("knn",), repeats=3, test_size=10, layer="conv5"
    )
    res = run_transfer(video_frames(train_frames), tiny_checkpoint(), cfg, tmp_path, progress=False)
    assert set(res["results"]["trained"]) == {"knn"} and res["layer"] == "conv5"
    assert res["n_test_values"] == [10, 10, 10]
    assert not (tmp_path / "runs").exists()
    with pytest.raises(TcdnError, match="unknown layer 'fc9'"):
        run_transfer(
            video_frames(train_frames),
            tiny_checkpoint(),
            FinetuneConfig(dataset="videos", protocols=("knn",), layer="fc9"),
            tmp_path,
            progress=False,
        )


def test_config_validation() -> None:
    with pytest.raises(TcdnError, match="--protocols"):
        FinetuneConfig(protocols=("finetune", "svm"))
    with pytest.raises(TcdnError, match="--shots 0"):
        FinetuneConfig(shots=0)
    with pytest.raises(TcdnError, match="--warmup 5"):
        FinetuneConfig(epochs=5, warmup=5)
    assert FinetuneConfig(dataset="cifar10").resolved_augment == "crop_flip"
    assert FinetuneConfig(dataset="voc_action", augment="flip").resolved_augment == "flip"
    cfg = FinetuneConfig(dataset="videos", shots=3)
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg


def test_a_frame_difference_network_fine_tunes_on_video_frames(
    train_frames: FrameSet, tmp_path: Path
) -> None:
    # the shipped recipe's input (motion: diffonly): each frame read with its successor, and the
    # frozen features those of feature extraction with the checkpoint's own transform
    import torch

    from tcdn.features.extract import extract_features
    from tcdn.models.input import InputTransform, successor_rows
    from tcdn.training.config import TrainConfig
    from tests.conftest import TRAIN_SIZE

    cfg = TrainConfig(
        image_size=TRAIN_SIZE,
        model="alexnet_bn",
        model_options={"fc6_dim": 64},
        embed_dim=16,
        motion="diffonly",
        input_norm="meanstd",
    )
    transform = InputTransform.fit(
        train_frames.frames, train_frames.offsets, norm="meanstd", motion="diffonly"
    )
    torch.manual_seed(0)
    ckpt = {
        "config": cfg.to_dict(),
        "model": cfg.build_model().state_dict(),
        "mean": np.zeros(3, np.float32),
        "input": transform.state(),
        "path": "diff.pt",
    }
    data = video_frames(train_frames, "synthetic")
    cfg_ft = FinetuneConfig(
        dataset="videos", shots=2, repeats=1, epochs=1, min_steps=2, protocols=("finetune", "knn")
    )
    res = run_transfer(data, ckpt, cfg_ft, tmp_path, progress=False)
    assert "motion diffonly" in res["transfer"]["input"]
    assert res["results"]["trained"]["finetune"]["repeats"] == 1
    # the successor the protocol reads is the one training used
    rows = np.arange(len(train_frames.frames))
    after, sign = data.train.read_successors(rows)
    nxt, want_sign = successor_rows(train_frames.offsets)
    np.testing.assert_array_equal(after, train_frames.frames[nxt])
    np.testing.assert_array_equal(sign, want_sign)
    from tcdn.transfer.classifier import build_classifier
    from tcdn.transfer.inputs import NetInput
    from tcdn.transfer.protocol import _features

    model, _ = build_classifier(ckpt["config"], 3, init="trained", state=ckpt["model"])
    pairs = np.concatenate([train_frames.frames[:8], after[:8]], axis=3)
    ours = _features(
        model.backbone, pairs, sign[:8], NetInput(transform, np.zeros(3)), "fc6", 4, "cpu"
    )
    theirs = extract_features(
        model.backbone,
        train_frames.frames[:8].copy(),
        np.zeros(3),
        layer="fc6",
        transform=transform,
        successors=after[:8],
        sign=sign[:8],
        progress=False,
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    with pytest.raises(TcdnError, match="motion=none"):
        from tcdn.transfer.inputs import plan_input

        plan_input(ckpt, video=False)


@pytest.mark.slow
@pytest.mark.parametrize("feature_norm", ["none", "l2"])
def test_the_probe_reads_features_as_the_recipe_does(
    feature_norm: str, train_frames: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tcdn.transfer.protocol as protocol

    seen: list[np.ndarray] = []

    def probe(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, **kw: Any) -> np.ndarray:
        seen.extend([train, test])
        return np.zeros(len(test), dtype=np.int64)

    monkeypatch.setattr(protocol, "linear_probe", probe)
    cfg = FinetuneConfig(dataset="videos", protocols=("linear",), repeats=1, test_size=10)
    ckpt = tiny_checkpoint()
    ckpt["config"] = {**ckpt["config"], "feature_norm": feature_norm}
    run_transfer(video_frames(train_frames), ckpt, cfg, tmp_path, progress=False)
    nets = seen[:4]  # trained and random_init (raw pixels are the images themselves)
    lengths = np.concatenate([np.linalg.norm(f, axis=1) for f in nets])
    if feature_norm == "l2":
        np.testing.assert_allclose(lengths, 1.0, atol=1e-5)
    else:
        assert np.abs(lengths - 1.0).max() > 0.1
