"""``tcdn generate`` (``tcdn.cli.generate``): the synthetic videos and their labels."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.cli.conftest import assert_user_error, run_cli


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
    assert_user_error(code, err, "size (--size) must be an even number")
