"""Fault injection, each in real ``tcdn`` processes: SIGKILL during an ingest and during a
checkpoint write (at chosen points and at chosen times), two processes on one output folder, and
a full disk (a file-size limit, as ``ulimit -f`` sets it). Each ends with a usable store or run, or
a clear refusal; never with silent corruption."""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tcdn.cli import main
from tcdn.data.decode import DecodeSettings
from tcdn.data.store.manifest import MANIFEST, StoreSettings, read_manifest
from tcdn.data.store.reader import open_store, store_problems
from tcdn.data.store.writer import ingest
from tcdn.data.synthetic import write_video
from tests.cli.conftest import SMALL_TRAIN

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _tcdn(
    *argv: str,
    inject: str = "",
    limit_bytes: int | None = None,
    wait: bool = True,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Run ``tcdn argv`` in a new process (and process group); ``inject`` is Python run first (to
    patch a function, e.g. to SIGKILL itself at a chosen point); ``limit_bytes``: the largest
    file it may write (RLIMIT_FSIZE; SIGXFSZ ignored, so a write beyond fails with EFBIG)."""
    code = "\n".join(
        [
            "import os, signal, sys, time",
            textwrap.dedent(inject),
            "from tcdn.cli import main",
            f"sys.exit(main({list(argv)!r}))",
        ]
    )

    def limit() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", code]
    if not wait:
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            preexec_fn=limit, start_new_session=True,
        )  # fmt: skip
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, preexec_fn=limit, timeout=timeout,
        start_new_session=True,
    )  # fmt: skip


def _kill_after(proc: subprocess.Popen[str], seconds: float, *, must_kill: bool = False) -> None:
    """SIGKILL the whole job (decoding workers too) after ``seconds``, unless it ended before;
    with ``must_kill``, ending before is a failure (the test is about a killed run)."""
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    if must_kill:
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill: {err}"


def _killed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight videos of 40 frames at 64x64 in two classes: enough for kills to land mid-ingest."""
    root = tmp_path_factory.mktemp("inj") / "videos"
    rng = np.random.default_rng(0)
    for i in range(8):
        base = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        path = root / f"c{i % 2}" / f"v{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, np.stack([np.roll(base, t, axis=1) for t in range(40)]))
    return root


# -- SIGKILL during an ingest, then the same ingest again ----------------------------------------
INGEST_KILLS = {
    # after the journal records k videos: the manifest knows none of them
    "after-1-video": """
        import tcdn.data.store.writer as w
        real = w._StoreWriter._journal
        def journal(self, record):
            real(self, record)
            if len(self.records) and sum(1 for r in self.records.values() if "n_frames" in r) >= 1:
                os.kill(os.getpid(), signal.SIGKILL)
        w._StoreWriter._journal = journal
    """,
    # in the middle of writing a data file
    "mid-data-file": """
        import tcdn.data.store.writer as w
        real, calls = w._write, []
        def write(fh, data, crc, final):
            calls.append(1)
            if len(calls) == 5:  # in the second video (40 frames: blocks of 16, 16, 8)
                fh.write(bytes(data)[: len(data) // 2]); fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(fh, data, crc, final)
        w._write = write
    """,
    # in the middle of rewriting the manifest, after three videos
    "mid-manifest": """
        import tcdn.data.store.writer as w
        real, calls = w.write_json_atomic, []
        def write(path, obj):
            calls.append(1)
            if len(obj["videos"]) >= 3 or obj["complete"]:
                tmp = path.with_name("." + path.name + ".partial")
                tmp.write_text('{"format": "tcdn-fr')
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, obj)
        w.write_json_atomic = write
        w._CHECKPOINT_SECONDS = 0.0
    """,
}


@pytest.fixture(scope="module")
def clean_store(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "store"
    ingest(videos, out, StoreSettings(decode=DecodeSettings.make(64)), progress=False)
    return out


@pytest.mark.parametrize("point", [*INGEST_KILLS, "at-1s", "at-2.5s"])
def test_ingest_killed_then_run_again_is_whole(
    videos: Path, clean_store: Path, tmp_path: Path, point: str, capsys
) -> None:
    store = tmp_path / "store"
    args = ["ingest", str(videos), "--out", str(store), "--size", "64", "--no-progress"]
    if point in INGEST_KILLS:
        _killed(_tcdn(*args, "--workers", "1", inject=INGEST_KILLS[point]))
    else:
        _kill_after(_tcdn(*args, wait=False), float(point[3:-1]))  # type: ignore[arg-type]
    code, err = _in_process(capsys, *args, "--workers", "1")
    assert code == 0 and "Traceback" not in err, err
    manifest = read_manifest(store)
    assert manifest["complete"] and len(manifest["videos"]) == 8
    assert store_problems(store) == []  # every file's size and CRC-32 as recorded
    assert not [p for p in (store / "data").iterdir() if p.name.endswith(".partial")]
    assert not (store / f".{MANIFEST}.partial").exists()
    np.testing.assert_array_equal(open_store(store).frames[:], open_store(clean_store).frames[:])


# -- SIGKILL during a checkpoint write, then --resume ---------------------------------------------
def _save_kill(n: int) -> str:
    """Die in the middle of writing the ``n``-th checkpoint (half of it on disk)."""
    return f"""
        import tcdn.training.checkpoint as ck
        real, calls = ck.torch.save, []
        def save(obj, f, *a, **k):
            calls.append(1)
            if len(calls) == {n}:
                f.write(b"PK\\x03\\x04" + b"half a checkpoint" * 100); f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(obj, f, *a, **k)
        ck.torch.save = save
    """


SLOW_STEPS = """
    import tcdn.training.trainer as trainer
    real = trainer.Trainer.step
    def step(self, **kwargs):
        time.sleep(0.5)  # two steps outlast every kill delay below, on any machine
        return real(self, **kwargs)
    trainer.Trainer.step = step
"""

#: a small network (a checkpoint of about 1 MB), so that kills and resumes cost little
TRAIN = {
    **SMALL_TRAIN, "model": "cifar10_quick", "model_options": {}, "image_size": 32, "steps": 6,
    "checkpoint_every": 1, "keep_last": 2,
}  # fmt: skip
LAST = f"step_{TRAIN['steps']:08d}.pt"


@pytest.fixture(scope="module")
def train_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(yaml.safe_dump(TRAIN))
    return path


def _train_args(videos: Path, run: Path, config: Path) -> list[str]:
    return ["train", str(videos), "--out", str(run), "--config", str(config), "--device", "cpu", "--no-progress"]  # fmt: skip


def _in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run ``tcdn`` in this process (the process that comes after a killed one)."""
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def reference_run(
    videos: Path, train_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The run nobody killed (in this process: one torch thread, as in the killed ones)."""
    run = tmp_path_factory.mktemp("ref") / "run"
    root, level = logging.getLogger(), logging.getLogger().level
    handlers = list(root.handlers)
    assert main(_train_args(videos, run, train_config)) == 0
    root.handlers[:] = handlers
    root.setLevel(level)
    return run


@pytest.mark.parametrize("point", ["save-1", "save-4", "after-2+0.1s", "after-4+0.35s"])
def test_train_killed_while_saving_then_resumed_is_exact(
    videos: Path, train_config: Path, reference_run: Path, tmp_path: Path, point: str, capsys
) -> None:
    run = tmp_path / "run"
    args = _train_args(videos, run, train_config)
    if point.startswith("save-"):
        _killed(_tcdn(*args, inject=_save_kill(int(point[5:]))))
        assert list(run.glob(".step_*.pt.partial"))  # the write the kill interrupted
    else:  # at a moment after checkpoint N, wherever the run is then (saving included)
        after, delay = point[6:-1].split("+")
        proc = _tcdn(*args, inject=SLOW_STEPS, wait=False)
        _wait_for(lambda: (run / f"step_{int(after):08d}.pt").is_file(), proc)  # type: ignore[arg-type]
        _kill_after(proc, float(delay), must_kill=True)  # type: ignore[arg-type]
    code, said = _in_process(capsys, *args, "--resume")
    if point == "save-1" or (code == 2 and not list(run.glob("step_*.pt"))):
        # killed before any checkpoint was complete: a clear refusal, then a fresh start works
        assert code == 2 and "without --resume" in said and "Traceback" not in said, said
        code, fresh = _in_process(capsys, *args)
        assert code == 0, fresh
    assert code == 0, said
    assert "took over the lock" in said  # killed holding the lock: the next run says so
    assert not list(run.glob(".step_*.pt.partial"))
    a = torch.load(reference_run / LAST, weights_only=True)
    b = torch.load(run / LAST, weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["sampler"] == b["sampler"]


# -- two processes on one output folder ------------------------------------------------------------
SLOW_INGEST = """
    import tcdn.data.store.writer as w
    real = w._encode_video
    def encode(*a):
        time.sleep(0.5)
        return real(*a)
    w._encode_video = encode
"""


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen[str], seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end
        time.sleep(0.05)


def test_two_trains_on_one_run_folder(
    videos: Path, train_config: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    args = _train_args(videos, run, train_config)
    first = _tcdn(*args, inject=SLOW_STEPS, wait=False)
    _wait_for(lambda: (run / "config.yaml").is_file(), first)  # it holds the lock and trains
    code, err = _in_process(capsys, *args, "--seed", "7")  # the second process: this one
    assert code == 2 and "Traceback" not in err
    assert "is in use by another tcdn process" in err and f"pid {first.pid}" in err
    assert first.wait(timeout=300) == 0, first.communicate()
    log = (run / "log.jsonl").read_text().splitlines()
    assert [yaml.safe_load(line)["step"] for line in log] == list(range(1, 7))  # one run's lines
    assert torch.load(run / LAST, weights_only=True)["config"]["seed"] == 0
    assert not (run / ".tcdn.lock").exists()


def test_two_ingests_into_one_store(videos: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "store"
    args = ["ingest", str(videos), "--out", str(store), "--size", "64", "--workers", "1", "--no-progress"]  # fmt: skip
    first = _tcdn(*args, inject=SLOW_INGEST, wait=False)
    _wait_for(lambda: (store / "manifest.json").is_file(), first)
    _refused(_tcdn(*args), "is in use by another tcdn process")  # type: ignore[arg-type]
    assert first.wait(timeout=300) == 0, first.communicate()
    assert read_manifest(store)["complete"] and store_problems(store) == []


# -- a full disk (a file-size limit) ---------------------------------------------------------------
def test_ingest_on_a_full_disk_stops_cleanly_and_finishes_later(
    videos: Path, tmp_path: Path, capsys
) -> None:
    store = tmp_path / "store"
    args = ["ingest", str(videos), "--out", str(store), "--size", "64", "--workers", "1", "--no-progress"]  # fmt: skip
    full = _tcdn(*args, limit_bytes=200_000)  # a video's frames take 491,520 bytes
    _refused(full, "cannot write", "too large", "the same `tcdn ingest` finishes the rest")  # type: ignore[arg-type]
    assert not [p for p in (store / "data").iterdir() if p.name.endswith(".partial")]
    code, err = _in_process(capsys, *args)
    assert code == 0, err
    assert read_manifest(store)["complete"] and store_problems(store) == []


def test_train_on_a_full_disk_stops_cleanly(
    videos: Path, train_config: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    args = _train_args(videos, run, train_config)
    # the decoded frames (123 kB a video) fit; a checkpoint (about 1.2 MB) does not
    full = _tcdn(*args, limit_bytes=400_000)
    _refused(full, "cannot write checkpoint", "step_00000001.pt", "too large")  # type: ignore[arg-type]
    assert not list(run.glob(".step_*.pt.partial")) and not list(run.glob("step_*.pt"))
    code, err = _in_process(capsys, *args)  # with room, the same command starts the run again
    assert code == 0, err
    assert torch.load(run / LAST, weights_only=True)["step"] == TRAIN["steps"]
