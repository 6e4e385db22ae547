"""The ``tcdn`` command itself (``tcdn.cli``): ``python -m tcdn``, ``--debug``, argparse errors, choices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tcdn.cli import EXIT_USER_ERROR, main
from tests.cli.conftest import run_cli, train_args


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


# -- as a program --------------------------------------------------------------------------------
def test_module_help_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tcdn", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for command in ("demo", "generate", "train", "features", "discover", "finetune"):
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


def test_cli_choices_are_the_librarys_and_help_imports_no_torch() -> None:
    """Choices are read from the library's light modules: the same tuples, and building the
    parser (what `tcdn --help` does) imports neither torch nor scikit-learn."""
    from tcdn.cli import build_parser
    from tcdn.data.datasets import DATASETS
    from tcdn.discovery.config import LEVELS
    from tcdn.features.featureset import FRAME_SOURCES
    from tcdn.training.config import LOSSES
    from tcdn.transfer.config import AUGMENTS
    from tcdn.transfer.config import DATASETS as IMAGE_DATASETS

    def choices(command: str, option: str) -> list[str]:
        sub = next(a for a in build_parser()._actions if a.dest == "command")
        parser = sub.choices[command]  # type: ignore[index]
        action = next(a for a in parser._actions if option in a.option_strings)
        return list(action.choices)

    assert choices("features", "--source") == list(FRAME_SOURCES)
    assert choices("discover", "--level") == list(LEVELS)
    assert choices("train", "--loss") == list(LOSSES)
    assert choices("ingest", "--dataset") == list(DATASETS)
    assert choices("finetune", "--dataset") == list(IMAGE_DATASETS)
    assert choices("finetune", "--augment") == list(AUGMENTS)
    code = (
        "import sys; from tcdn.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'av') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
