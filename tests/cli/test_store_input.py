"""Every command that takes a collection accepts a frame store in its place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tcdn.cli import main
from tcdn.data.store.reader import open_store
from tests.conftest import STORE_SIZE


# -- the rest of tcdn reads a store ---------------------------------------------------------------
def test_cli_commands_accept_a_store(
    raw_store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    out = tmp_path / "f.npz"
    code = main(
        [
            "features",
            str(raw_store),
            "--source",
            "raw_pixels",
            "--out",
            str(out),
            "--size",
            str(STORE_SIZE),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with np.load(out) as z:
        assert len(z["features"]) == len(open_store(raw_store).frames)
    assert main(["features", str(raw_store), "--source", "raw_pixels", "--out", str(out)]) == 2
    assert "ingest again with --size 227" in capsys.readouterr().err
    code = main(
        [
            "features",
            str(raw_store),
            "--source",
            "raw_pixels",
            "--out",
            str(out),
            "--size",
            str(STORE_SIZE),
            "--max-frames",
            "3",
        ]
    )
    assert code == 2 and "--max-frames applies to a video folder" in capsys.readouterr().err
