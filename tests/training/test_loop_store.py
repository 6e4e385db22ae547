"""Training reads a frame store from disk as it reads frames in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tcdn.cli import main
from tcdn.data.decode import DecodeSettings
from tcdn.data.store.manifest import StoreSettings
from tcdn.data.store.writer import ingest
from tests.conftest import TRAIN_SIZE


def test_train_reads_a_store(
    synthetic_collection: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    store = tmp_path / "store"
    ingest(
        synthetic_collection,
        store,
        StoreSettings(decode=DecodeSettings.make(TRAIN_SIZE)),
        progress=False,
    )
    config = tmp_path / "small.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "image_size": TRAIN_SIZE,
                "model_options": {"fc6_dim": 64},
                "embed_dim": 16,
                "batch_size": 2,
                "far": 5,
            }
        )
    )
    argv = ["train", str(store), "--out", str(tmp_path / "run"), "--config", str(config)]
    code = main([*argv, "--steps", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert list((tmp_path / "run").glob("*.pt"))
