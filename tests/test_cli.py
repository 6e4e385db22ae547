"""The ``tcdn`` command: user errors end in one clear line and exit status 2, never a traceback."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    for command in ("demo", "generate", "train", "features", "discover"):
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


# -- features, then discovery on them ------------------------------------------------------------
def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_choices_match_the_library() -> None:
    from tcdn import cli
    from tcdn.features import FRAME_SOURCES
    from tcdn.pipeline import LEVELS

    assert cli.FRAME_SOURCES == FRAME_SOURCES
    assert cli.LEVELS == LEVELS


def test_features_then_discover_features(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    from tcdn.features import FeatureSet

    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, *train_args(synthetic_collection, run, small_yaml, "--steps", "1")
    )
    assert code == 0, err

    npz = tmp_path / "feats" / "fc6.npz"
    code, _, err = run_cli(
        capsys, "features", str(synthetic_collection), "--checkpoint", str(run), "--out", str(npz),
        "--frame-stride", "4", "--max-per-video", "5", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 30 x 64 trained features of 6 videos" in err
    fs = FeatureSet.load(npz)
    assert fs.features.shape == (30, 64)  # 6 videos x 5 frames, fc6_dim 64
    assert fs.frame.tolist()[:5] == [0, 4, 8, 12, 16]
    assert fs.class_names == ["class00", "class01", "class02"]
    assert fs.meta["source"] == "trained" and fs.meta["layer"] == "fc6"
    assert fs.meta["checkpoint"].endswith("step_00000001.pt")
    assert fs.meta["frame_stride"] == 4 and fs.meta["collection"] == str(synthetic_collection)

    out = tmp_path / "disc"
    code, table, err = run_cli(
        capsys, "discover", "--features", str(npz), "--out", str(out), "--methods", "kmeans",
        "--repeats", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "given" in table and "random_assignment" in table and "30 frames" in table
    results = json.loads((out / "results.json").read_text())
    assert list(results["results"]) == ["given", "random_assignment"]
    assert results["level"] == "frame" and results["n_frames"] == 30
    assert results["layer"] == "fc6" and results["checkpoint"] == fs.meta["checkpoint"]
    assert results["features"]["path"] == str(npz)
    rows = read_csv(out / "clusters.csv")
    assert list(rows[0]) == ["video", "frame", "label", "given_kmeans"]
    assert [r["video"] for r in rows] == fs.video.tolist()
    assert [int(r["frame"]) for r in rows] == fs.frame.tolist()
    assert [r["label"] for r in rows] == fs.label.tolist()

    code, table, err = run_cli(
        capsys, "discover", "--features", str(npz), "--out", str(out), "--methods", "kmeans",
        "--repeats", "1", "--level", "video",
    )  # fmt: skip
    assert code == 0, err
    assert "6 videos" in table
    assert json.loads((out / "results.json").read_text())["n_frames"] == 6
    rows = read_csv(out / "clusters.csv")
    assert len(rows) == 6 and {r["frame"] for r in rows} == {"-1"}


def test_discover_features_npy_and_index(capsys, tmp_path: Path) -> None:
    """Features from elsewhere: two well-separated groups are found exactly (CE 0)."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["walk", "run"], 10)
    x = rng.normal(size=(20, 3)) * 0.01 + (labels == "run")[:, None] * 10.0
    np.save(tmp_path / "x.npy", x)
    with (tmp_path / "index.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "frame", "label"])
        w.writerows([f"clip{i // 5}.mp4", i % 5, lab] for i, lab in enumerate(labels))
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "discover", "--features-npy", str(tmp_path / "x.npy"), "--index",
        str(tmp_path / "index.csv"), "--out", str(out), "--repeats", "2",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    for method in ("kmeans", "spectral"):
        assert results["results"]["given"][method]["ce_mean"] == 0.0
    assert results["results"]["random_assignment"]["kmeans"]["ce_mean"] > 0.1
    assert results["features"]["index_csv"] == str(tmp_path / "index.csv")
    rows = read_csv(out / "clusters.csv")
    assert rows[7] == {
        "video": "clip1.mp4", "frame": "2", "label": "walk",
        "given_kmeans": rows[7]["given_kmeans"], "given_spectral": rows[7]["given_spectral"],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["VIDEOS", "--features", "F"], ["exactly one input", "VIDEOS and --features"]),
        ([], ["exactly one input", "got none"]),
        (["--features-npy", "X"], ["--features-npy needs --index"]),
        (["--index", "I"], ["--index needs --features-npy"]),
        (["--features", "F", "--checkpoint", "C"], ["--checkpoint applies to a VIDEOS folder"]),
        (["--features", "F", "--layer", "conv5"], ["drop --layer"]),
        (["--features", "F", "--skip-bad"], ["drop --skip-bad"]),
        (["--features", "F", "--device", "cpu"], ["drop --device"]),
        (["--features", "F"], ["feature file", "does not exist"]),
        (["--features", "F", "--level", "video", "--k", "3"], ["[2, 2], the number of videos", "--level frame"]),
        (["--features-npy", "X", "--index", "BAD"], ["index file", "has 3 row(s) but feature array", "has 4"]),
    ],
    ids=["two-inputs", "no-input", "npy-without-index", "index-without-npy", "checkpoint",
         "layer", "skip-bad", "device", "missing-file", "k-over-videos", "row-mismatch"],
)  # fmt: skip
def test_discover_features_user_errors(
    capsys, tmp_path: Path, argv: list[str], needles: list[str]
) -> None:
    from tcdn.features import FeatureSet

    feats = tmp_path / "f.npz"
    if argv != ["--features", "F"]:
        FeatureSet(np.eye(4), ["a", "a", "b", "b"], [0, 1, 0, 1], ["x", "x", "y", "y"]).save(feats)
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    (tmp_path / "bad.csv").write_text("video,frame\na,0\na,1\nb,0\n")
    names = {"F": feats, "X": tmp_path / "x.npy", "I": tmp_path / "bad.csv",
             "BAD": tmp_path / "bad.csv", "C": tmp_path, "VIDEOS": tmp_path}  # fmt: skip
    args = [str(names.get(a, a)) for a in argv]
    code, _, err = run_cli(capsys, "discover", *args, "--out", str(tmp_path / "out"))
    assert_user_error(code, err, *needles)
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_features_user_errors(capsys, synthetic_collection: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "features", str(synthetic_collection), "--out", str(tmp_path / "f.npz")
    )
    assert_user_error(code, err, "--source trained (the default) needs --checkpoint")
    code, _, err = run_cli(
        capsys, "features", str(synthetic_collection), "--out", str(tmp_path), "--source",
        "raw_pixels",
    )  # fmt: skip
    assert_user_error(code, err, f"--out {tmp_path} is a folder")
    code, _, err = run_cli(
        capsys, "features", str(tmp_path / "none"), "--out", str(tmp_path / "f.npz"),
        "--source", "raw_pixels",
    )  # fmt: skip
    assert_user_error(code, err, "does not exist")
    assert not (tmp_path / "f.npz").exists()


def test_features_raw_pixels_unlabelled(capsys, make_video, tmp_path: Path) -> None:
    """Features need no labels: an unlabelled folder gives rows labelled ''."""
    from tcdn.features import FeatureSet

    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 6)
    make_video(videos / "b.mp4", 4, seed=1)
    out = tmp_path / "raw.npz"
    code, _, err = run_cli(
        capsys, "features", str(videos), "--source", "raw_pixels", "--size", "16", "--out",
        str(out), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    fs = FeatureSet.load(out)
    assert fs.video.tolist() == ["a.mp4"] * 6 + ["b.mp4"] * 4
    assert fs.label.tolist() == [""] * 10 and fs.meta["layer"] is None
    # ... and discovery on them says what is missing
    code, _, err = run_cli(capsys, "discover", "--features", str(out), "--out", str(tmp_path / "o"))
    assert_user_error(code, err, "have no label")
