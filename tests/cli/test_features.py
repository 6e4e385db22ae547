"""``tcdn features`` (``tcdn.cli.features``): user errors and unlabelled collections."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import assert_user_error, run_cli


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
    from tcdn.features.featureset import FeatureSet

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
    # ... and discovery on them clusters them, with K chosen without labels, unscored
    code, table, err = run_cli(
        capsys, "discover", "--features", str(out), "--out", str(tmp_path / "o"), "--no-report"
    )
    assert code == 0, err
    assert "chosen without labels" in table and "not scored: the collection has no labels" in table
    assert not (tmp_path / "o" / "report.html").exists()
