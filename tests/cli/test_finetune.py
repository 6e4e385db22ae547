"""``tcdn finetune``: options checked before any data is read; a whole run on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.cli.conftest import assert_user_error, run_cli
from tests.transfer.conftest import cifar_checkpoint, write_fashion_mnist, write_image_folder


@pytest.fixture(scope="module")
def ckpt_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cifar10_quick checkpoint file as ``tcdn train`` writes one (32x32)."""
    run = tmp_path_factory.mktemp("run")
    ckpt = cifar_checkpoint()
    ckpt.pop("path")
    torch.save(ckpt, run / "step_00000000.pt")
    return run


def test_bad_protocol_is_a_user_error(capsys, tmp_path: Path, ckpt_file: Path) -> None:
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path), "--dataset", "imagefolder", "--checkpoint",
        str(ckpt_file), "--out", str(tmp_path / "o"), "--protocols", "finetune,svm",
    )  # fmt: skip
    assert_user_error(code, err, "--protocols", "finetune, linear, knn")


def test_missing_data_and_checkpoint(capsys, tmp_path: Path, ckpt_file: Path) -> None:
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path / "nowhere"), "--dataset", "cifar10",
        "--checkpoint", str(ckpt_file), "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert_user_error(code, err, "nowhere", "does not exist")
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path), "--dataset", "cifar10",
        "--checkpoint", str(tmp_path / "norun"), "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert_user_error(code, err, "norun")


def test_video_options_with_an_image_dataset(capsys, tmp_path: Path, ckpt_file: Path) -> None:
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path), "--dataset", "fashion_mnist", "--checkpoint",
        str(ckpt_file), "--out", str(tmp_path / "o"), "--labels", str(tmp_path / "l.csv"),
    )  # fmt: skip
    assert_user_error(code, err, "--labels applies to --dataset videos only")


def test_too_many_shots(capsys, tmp_path: Path, ckpt_file: Path) -> None:
    write_fashion_mnist(tmp_path / "fm", n_train=20, n_test=10)
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path / "fm"), "--dataset", "fashion_mnist", "--checkpoint",
        str(ckpt_file), "--out", str(tmp_path / "o"), "--shots", "30", "--no-progress",
    )  # fmt: skip
    assert_user_error(code, err, "fewer than --shots 30")


@pytest.mark.slow
def test_finetune_image_folder_end_to_end(capsys, tmp_path: Path, ckpt_file: Path) -> None:
    data = write_image_folder(tmp_path / "imgs", {"red": 8, "green": 8, "blue": 8}, size=20)
    out = tmp_path / "out"
    args = [
        "finetune", str(data), "--dataset", "imagefolder", "--checkpoint", str(ckpt_file),
        "--out", str(out), "--shots", "3", "--repeats", "2", "--epochs", "3",
        "--batch-size", "4", "--no-progress",
    ]  # fmt: skip
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "accuracy (%)" in stdout and "trained - random_init" in stdout
    assert "weight transfer from" in err and "loaded 10 tensors" in err
    res = json.loads((out / "results.json").read_text())
    assert res["image_size"] == 32  # the checkpoint's
    assert res["n_train_values"] == [9, 9]
    assert res["results"]["trained"]["finetune"]["repeats"] == 2
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "r00-random_init",
        "r00-trained",
        "r01-random_init",
        "r01-trained",
    ]
    # again: refused without --resume, read back with it
    code, _, err = run_cli(capsys, *args)
    assert_user_error(code, err, "--resume")
    code, stdout2, err = run_cli(capsys, *args, "--resume")
    assert code == 0, err
    assert stdout2 == stdout


def test_a_folder_of_other_files_is_refused_before_any_work(
    capsys, tmp_path: Path, ckpt_file: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    code, _, err = run_cli(
        capsys, "finetune", str(tmp_path / "nowhere"), "--dataset", "cifar10",
        "--checkpoint", str(ckpt_file), "--out", str(out),
    )  # fmt: skip
    # refused for the output folder, not for the missing data: nothing was read first
    assert_user_error(code, err, str(out), "not empty")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
