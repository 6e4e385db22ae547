"""The ``tcdn`` command: user errors end in one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TRAIN_SIZE
from tcdn.cli import EXIT_USER_ERROR, main

pytestmark = pytest.mark.usefixtures("restore_logging")

#: a tiny model and batch, so that reaching the sampler or a training step costs little
SMALL_TRAIN = {
    "image_size": TRAIN_SIZE,
    "model_options": {"fc6_dim": 64},
    "embed_dim": 16,
    "batch_size": 2,
    "far": 5,
    "log_every": 1,
}


@pytest.fixture
def small_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL_TRAIN))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def train_args(videos: Path, out: Path, config: Path, *extra: str) -> list[str]:
    return [
        "train",
        str(videos),
        "--out",
        str(out),
        "--config",
        str(config),
        "--no-progress",
        *extra,
    ]


def assert_user_error(code: int, err: str, *needles: str) -> None:
    assert code == EXIT_USER_ERROR
    assert "Traceback" not in err
    assert "ERROR tcdn:" in err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"


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


def test_debug_shows_traceback(capsys, tmp_path: Path, small_yaml: Path) -> None:
    code, _, err = run_cli(
        capsys, "--debug", *train_args(tmp_path / "missing", tmp_path / "run", small_yaml)
    )
    assert code == EXIT_USER_ERROR
    assert "Traceback" in err


def test_argparse_rejects_bad_number(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", str(tmp_path), "--out", str(tmp_path / "r"), "--steps", "0"])
    assert info.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err


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

    # resuming with another option is refused and says which
    code, _, err = run_cli(capsys, *args, "--steps", "4", "--resume", "--lr", "0.5")
    assert_user_error(code, err, "differs in lr")


# -- generate ------------------------------------------------------------------------------------
def test_generate_writes_labels_csv(capsys, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    code, _, err = run_cli(
        capsys, "generate", str(out), "--classes", "2", "--videos-per-class", "2",
        "--min-frames", "4", "--max-frames", "6", "--size", "16", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    with (out / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {r["label"] for r in rows} == {"class00", "class01"}
    for r in rows:
        assert (out / r["video"]).is_file()
        assert 4 <= int(r["frames"]) <= 6
    assert not list(out.rglob("*partial*"))


def test_generate_bad_size(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "generate", str(tmp_path / "s"), "--size", "15")
    assert_user_error(code, err, "size must be an even number")


# -- as a program --------------------------------------------------------------------------------
def test_module_help_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tcdn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for command in ("demo", "generate", "train", "discover"):
        assert command in proc.stdout
    assert "Traceback" not in proc.stderr


def test_module_user_error_subprocess(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    proc = subprocess.run(
        [sys.executable, "-m", "tcdn", "discover", str(missing), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_USER_ERROR
    assert str(missing) in proc.stderr
    assert "Traceback" not in proc.stderr


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
