"""``tcdn ingest`` (``tcdn.cli.ingest``): the summary, ``--strict`` and user errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tcdn.cli import main
from tcdn.data.store.manifest import MANIFEST, read_manifest


def test_cli_ingest_strict_and_summary(
    broken_collection: tuple[Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    root, why = broken_collection
    args = ["ingest", str(root), "--out", str(tmp_path / "s"), "--size", "16", "--no-progress"]
    assert main([*args, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for name in why:
        assert f"bad: {name}" in out
    assert main([*args, "--workers", "1", "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err
    assert read_manifest(tmp_path / "s")["complete"] is True


def test_cli_ingest_user_errors(
    make_video: Callable[..., Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    def run(*argv: str) -> str:
        assert main(["ingest", *argv, "--out", str(tmp_path / "s"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err

    (tmp_path / "empty").mkdir()
    assert "no video found" in run(str(tmp_path / "empty"))
    make_video(tmp_path / "v" / "a.mp4", 3)
    (tmp_path / "v" / "labels.csv").write_text("video,label\na.mp4,x\ngone.mp4,y\n")
    assert "gone.mp4" in run(str(tmp_path / "v"))
    assert "--split needs --dataset" in run(str(tmp_path / "v"), "--split", "test")
    assert "does not exist" in run(str(tmp_path / "nowhere"), "--dataset", "ucf101")
    assert not (tmp_path / "s" / MANIFEST).exists()
