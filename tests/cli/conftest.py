"""What the command-line tests share: a tiny training config, and running ``tcdn`` in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tcdn.cli import EXIT_USER_ERROR, main
from tests.conftest import TRAIN_SIZE


@pytest.fixture(autouse=True)
def _cli_logging(restore_logging: None) -> Iterator[None]:
    """Every test here runs ``tcdn.cli.main``, which reconfigures logging: undo it afterwards."""
    yield


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
