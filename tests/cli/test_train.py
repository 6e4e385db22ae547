"""``tcdn train`` (``tcdn.cli.train``): user errors end in one clear line and exit status 2, resume, ``--set``."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tcdn.cli import main
from tcdn.errors import TcdnError
from tcdn.training.checkpoint import load_checkpoint
from tcdn.training.config import TrainConfig
from tests.cli.conftest import SMALL_TRAIN, assert_user_error, run_cli, train_args
from tests.conftest import small_config


# -- bad collections -----------------------------------------------------------------------------
def test_missing_folder(capsys, tmp_path: Path, small_yaml: Path) -> None:
    missing = tmp_path / "no_such_folder"
    code, _, err = run_cli(capsys, *train_args(missing, tmp_path / "run", small_yaml))
    assert_user_error(code, err, str(missing), "does not exist")
    assert not (tmp_path / "run").exists()  # nothing written before the data is checked


def test_empty_folder(capsys, tmp_path: Path, small_yaml: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no videos here")
    code, _, err = run_cli(capsys, *train_args(empty, tmp_path / "run", small_yaml))
    assert_user_error(code, err, "no video found", str(empty))


def test_non_video_named_mp4(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 12)
    (videos / "b.mp4").write_text("I am a text file\n" * 50)
    code, _, err = run_cli(capsys, *train_args(videos, tmp_path / "run", small_yaml))
    assert_user_error(code, err, "b.mp4", "--skip-bad")


def test_skip_bad_goes_on(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    """With --skip-bad the bad file is skipped with a warning; here only one video is left, so
    training still stops, now at the single-video check."""
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 12)
    (videos / "b.mp4").write_bytes(b"\x00\x01" * 500)
    code, _, err = run_cli(capsys, *train_args(videos, tmp_path / "run", small_yaml, "--skip-bad"))
    assert_user_error(code, err, "WARNING", "b.mp4", "--mu")


def test_videos_too_short_for_a_quadruplet(
    capsys, make_video, tmp_path: Path, small_yaml: Path
) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "short1.mp4", 2)
    make_video(videos / "short2.mp4", 2, seed=1)
    code, _, err = run_cli(capsys, *train_args(videos, tmp_path / "run", small_yaml))
    assert_user_error(code, err, "3 frames a tuple needs", "use longer videos")
    # each short video is named in a warning
    assert "short1.mp4" in err and "short2.mp4" in err
    assert not list((tmp_path / "run").glob("step_*.pt"))


def test_csv_naming_missing_file(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 4)
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        csv.writer(fh).writerows([["video", "label"], ["a.mp4", "x"], ["gone.mp4", "y"]])
    code, _, err = run_cli(
        capsys, *train_args(videos, tmp_path / "run", small_yaml, "--labels", str(labels))
    )
    assert_user_error(code, err, "gone.mp4", "line 3")


def test_missing_labels_option_file(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 4)
    labels = tmp_path / "nope.csv"
    code, _, err = run_cli(
        capsys, *train_args(videos, tmp_path / "run", small_yaml, "--labels", str(labels))
    )
    assert_user_error(code, err, str(labels), "--labels")


def test_single_video_suggests_mu(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "only.mp4", 12)
    code, _, err = run_cli(capsys, *train_args(videos, tmp_path / "run", small_yaml))
    assert_user_error(code, err, "only.mp4", "--mu")


def test_single_video_trains_with_mu(capsys, make_video, tmp_path: Path, small_yaml: Path) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "only.mp4", 16)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(videos, run, small_yaml, "--mu", "--steps", "1"))
    assert code == 0, err
    assert (run / "step_00000001.pt").is_file()


def test_bad_config_option(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("stepz: 10\n")
    code, _, err = run_cli(capsys, *train_args(tmp_path, tmp_path / "run", cfg))
    assert_user_error(code, err, "unknown training option", "stepz")


def test_size_conflicts_with_image_size(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "train", str(tmp_path), "--out", str(tmp_path / "r"), "--size", "48",
        "--image-size", "64",
    )  # fmt: skip
    assert_user_error(code, err, "--size 48", "--image-size 64")


# -- train, then resume --------------------------------------------------------------------------
def test_train_then_resume(capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path):
    run = tmp_path / "run"
    args = train_args(synthetic_collection, run, small_yaml, "--checkpoint-every", "1")
    code, _, err = run_cli(capsys, *args, "--steps", "2")
    assert code == 0, err
    assert sorted(p.name for p in run.glob("step_*.pt")) == ["step_00000001.pt", "step_00000002.pt"]
    assert "last checkpoint" in err

    # the same command again, without --resume: a clear error, nothing overwritten
    code, _, err = run_cli(capsys, *args, "--steps", "3")
    assert_user_error(code, err, "already holds checkpoints", "--resume", "step_00000002.pt")
    assert not (run / "step_00000003.pt").exists()

    code, _, err = run_cli(capsys, *args, "--steps", "3", "--resume")
    assert code == 0, err
    assert (run / "step_00000003.pt").is_file()
    assert "resuming" in err

    # resuming with another option is refused and says which, before decoding anything
    code, _, err = run_cli(capsys, *args, "--steps", "4", "--resume", "--lr", "0.5")
    assert_user_error(code, err, "lr is 0.001 in the run, 0.5 given (--lr)")
    assert "decoded" not in err

    # resume is one flag: the run's own config.yaml, extended by --steps
    plain = ["train", str(synthetic_collection), "--out", str(run), "--no-progress"]
    code, _, err = run_cli(capsys, *plain, "--resume", "--steps", "4")
    assert code == 0, err
    assert (run / "step_00000004.pt").is_file()
    assert "steps 3 -> 4" in err


# -- options that pass the type-free reading of YAML but cannot work ------------------------------
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("image_size: 32\n", "image_size=32"),  # AlexNet's pooling needs >= 39 pixels
        ("model_options: {fc6_dim: 64, bogus: 1}\n", "model_options"),  # unknown network option
        ("threads: -1\n", "threads"),
        ("steps: 2.5\n", "steps=2.5"),  # not a whole number of steps
        ("lr: fast\n", "lr='fast'"),
    ],
    ids=["image-size-32", "bogus-model-option", "threads--1", "steps-2.5", "lr-text"],
)
def test_config_value_that_cannot_work_is_a_user_error(
    capsys, synthetic_collection: Path, tmp_path: Path, extra: str, needle: str
) -> None:
    options = {**SMALL_TRAIN, "steps": 1}
    options.update(yaml.safe_load(extra))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(options))
    code, _, err = run_cli(capsys, *train_args(synthetic_collection, tmp_path / "run", cfg))
    assert_user_error(code, err, needle)


def test_yaml_number_written_as_text_is_accepted(
    capsys, synthetic_collection: Path, tmp_path: Path
) -> None:
    # YAML 1.1 reads 1e-3 as the string '1e-3'; the config converts it.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**SMALL_TRAIN, "steps": 1}) + "lr: 1e-3\n")
    code, _, err = run_cli(capsys, *train_args(synthetic_collection, tmp_path / "run", cfg))
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["lr"] == pytest.approx(1e-3)


def test_cli_set_overrides_config_and_flags(
    synthetic_collection: Path, tmp_path: Path, restore_logging: None
) -> None:

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


def test_a_plain_train_uses_the_best_recipe_and_recipe_names_another(
    capsys, synthetic_collection: Path, tmp_path: Path
) -> None:
    from tcdn.training.recipes import best, recipe

    run = tmp_path / "best"
    code, _, err = run_cli(
        capsys, "train", str(synthetic_collection), "--out", str(run), "--steps", "1",
        "--set", "batch_size=2", "--set", "threads=1", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    saved = TrainConfig.from_yaml(run / "config.yaml").to_dict()
    want = TrainConfig.from_dict({**best().to_dict(), "steps": 1, "batch_size": 2, "threads": 1})
    want = want.resolved().to_dict()
    assert {k: v for k, v in saved.items() if want[k] != v} == {}
    # --recipe names another; with --config as well it is an error that says so
    code, _, err = run_cli(
        capsys, "train", str(tmp_path / "none"), "--out", str(tmp_path / "r2"),
        "--recipe", "lq-64px", "--config", str(tmp_path / "x.yaml"),
    )  # fmt: skip
    assert code == 2 and "--recipe and --config" in err
    assert recipe("lq-64px").loss == "lq" and recipe("paper").image_size == 227
    with pytest.raises(
        TcdnError,
        match="unknown recipe 'fast'; choose from best, actions, scenes, lq-64px, paper, two-stream, "
        "appearance",
    ):
        recipe("fast")
