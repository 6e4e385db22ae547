"""``tcdn discover`` (``tcdn.cli.discover``): given features, feature arrays, and its user errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli.conftest import assert_user_error, run_cli, train_args


# -- features, then discovery on them ------------------------------------------------------------
def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_features_then_discover_features(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    from tcdn.features.featureset import FeatureSet

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
    half = tmp_path / "feats" / "fc6-half.npz"
    code, _, err = run_cli(
        capsys, "features", str(synthetic_collection), "--checkpoint", str(run), "--out", str(half),
        "--frame-stride", "4", "--max-per-video", "5", "--no-progress", "--float16",
    )  # fmt: skip
    assert code == 0, err
    fs_half = FeatureSet.load(half)
    assert fs_half.features.dtype == np.float16
    np.testing.assert_array_equal(fs_half.features, fs.features.astype(np.float16))

    out = tmp_path / "disc"
    code, table, err = run_cli(
        capsys, "discover", "--features", str(npz), "--out", str(out), "--methods", "kmeans",
        "--repeats", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "given" in table and "random_assignment" in table and "30 frames" in table
    results = json.loads((out / "results.json").read_text())
    assert list(results["results"]) == ["given", "random_assignment"]
    assert results["level"] == "frame" and results["n_frames"] == results["n_rows"] == 30
    assert results["layer"] == "fc6" and results["checkpoint"] == fs.meta["checkpoint"]
    assert results["features"]["path"] == str(npz)
    rows = read_csv(out / "clusters.csv")
    assert list(rows[0]) == [
        "video",
        "frame",
        "time",
        "label",
        "cluster",
        "distance",
        "given_kmeans",
    ]
    assert [r["cluster"] for r in rows] == [r["given_kmeans"] for r in rows]
    assert rows[1]["time"] == "0.160"  # frame 4 at 25 fps
    assert (out / "report.html").is_file() and (out / "videos.csv").is_file()
    assert [r["video"] for r in rows] == fs.video.tolist()
    assert [int(r["frame"]) for r in rows] == fs.frame.tolist()
    assert [r["label"] for r in rows] == fs.label.tolist()

    code, table, err = run_cli(
        capsys, "discover", "--features", str(npz), "--out", str(out), "--methods", "kmeans",
        "--repeats", "1", "--level", "video",
    )  # fmt: skip
    assert code == 0, err
    assert "6 videos" in table
    pooled = json.loads((out / "results.json").read_text())
    assert pooled["n_rows"] == 6 and pooled["n_frames"] == 30
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
        "video": "clip1.mp4", "frame": "2", "time": "", "label": "walk",
        "cluster": rows[7]["given_kmeans"], "distance": rows[7]["distance"],
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
    from tcdn.features.featureset import FeatureSet

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


# -- an unlabelled folder -----------------------------------------------------------------------
@pytest.mark.slow
def test_discover_an_unlabelled_folder(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    """No class folders, no labels.csv: K is chosen without labels, nothing is scored, the
    clusters, the per-video summary and the report are written."""
    import shutil

    videos = tmp_path / "unlabelled"
    videos.mkdir()
    for f in sorted(synthetic_collection.rglob("*.mp4")):
        shutil.copy(f, videos / f.name)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(videos, run, small_yaml, "--steps", "2"))
    assert code == 0, err
    out = tmp_path / "found"
    code, table, err = run_cli(
        capsys, "discover", str(videos), "--checkpoint", str(run), "--out", str(out),
        "--frame-stride", "3", "--max-k", "5", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "chosen without labels (silhouette)" in table and "not scored" in table
    assert "K-means silhouette per candidate K (higher is better): 2:" in table
    results = json.loads((out / "results.json").read_text())
    assert results["results"] == {} and results["discovered"]["source"] == "trained"
    k = results["discovered"]["k"]
    rows = read_csv(out / "clusters.csv")
    assert [r["frame"] for r in rows[:3]] == ["0", "3", "6"]  # the source video's frame index
    assert [r["time"] for r in rows[:3]] == ["0.000", "0.120", "0.240"]
    assert {r["label"] for r in rows} == {""}
    assert {int(r["cluster"]) for r in rows} <= set(range(k))
    assert all(float(r["distance"]) >= 0 for r in rows)
    summary = read_csv(out / "videos.csv")
    assert len(summary) == 6 and all(0 < float(r["share"]) <= 1 for r in summary)
    page = (out / "report.html").read_text()
    assert "Training" in page and "curves.png" in page  # the run's log.jsonl, found from results
    assert "open file://" in err and str((out / "report.html").resolve()) in err

    # the report again, from the folder alone
    code, said, err = run_cli(capsys, "report", str(out))
    assert code == 0, err
    assert said.strip() == str((out / "report.html").resolve())
    code, _, err = run_cli(capsys, "report", str(tmp_path / "nowhere"))
    assert_user_error(code, err, "is not a folder")
