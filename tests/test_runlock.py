"""One process per output folder (``tcdn.runlock``): a second one is refused by name, a lock left
by a killed process is taken over, and the lock is re-entrant within a process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcdn import runlock
from tcdn.errors import TcdnError
from tcdn.outputs import check_output_folder

HOLD = """
import sys, time
from tcdn import runlock
with runlock.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_process_is_refused_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(
            TcdnError, match=rf"in use by another tcdn process \(pid {holder.pid} on"
        ):
            with runlock.hold(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    # killed: its lock file is left, its flock is gone; the next holder says so and takes it
    assert json.loads((folder / runlock.LOCK_NAME).read_text())["pid"] == holder.pid
    with runlock.hold(folder):
        record = json.loads((folder / runlock.LOCK_NAME).read_text())
        assert record["pid"] != holder.pid
    assert not (folder / runlock.LOCK_NAME).exists()


def test_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / runlock.LOCK_NAME).write_text(
        json.dumps({"pid": 999999, "host": "elsewhere", "since": time.time()})
    )
    with caplog.at_level("WARNING"), runlock.hold(folder):
        pass
    assert "took over the lock left by pid 999999 on elsewhere" in caplog.text


def test_reentrant_and_tidy(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    with runlock.hold(folder):
        assert runlock.holds(folder)
        with runlock.hold(folder):  # the library inside the command line
            assert (folder / runlock.LOCK_NAME).is_file()
        assert (folder / runlock.LOCK_NAME).is_file()
    assert not runlock.holds(folder)
    assert not folder.exists()  # made for the lock alone, and left empty: removed


def test_a_stale_lock_alone_does_not_make_a_folder_foreign(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / runlock.LOCK_NAME).write_text("{}")
    assert check_output_folder(folder, "frame-store") == folder
    (folder / "mine.txt").write_text("x")
    with pytest.raises(TcdnError, match="not empty"):
        check_output_folder(folder, "frame-store")
