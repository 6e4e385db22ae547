"""Checkpoints are data, never code: every checkpoint tcdn writes loads with
``torch.load(weights_only=True)``, and a crafted one runs nothing in any command that reads one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tcdn.cli import main
from tcdn.errors import TcdnError
from tcdn.outputs import claim_folder
from tcdn.training.checkpoint import RUN_KIND, atomic_save, load_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.run import train
from tests.cli.conftest import assert_user_error
from tests.conftest import small_config, tiny_checkpoint


class _Payload:
    """Unpickling this creates ``marker``: the code a crafted checkpoint would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch '{self.marker}'",))


def _evil(path: Path, marker: Path) -> Path:
    """A checkpoint that looks like tcdn's (config, model, mean) with a payload inside."""
    ckpt = tiny_checkpoint()
    ckpt.pop("path")
    ckpt["mean"] = torch.as_tensor(ckpt["mean"])
    ckpt["sampler"] = _Payload(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def test_the_payload_would_run_if_unpickled(tmp_path: Path) -> None:
    """The control: the crafted file does run its code under a plain unpickler, so the tests
    below, which find no marker, could have failed."""
    marker = tmp_path / "ran"
    evil = _evil(tmp_path / "evil.pt", marker)
    torch.load(evil, weights_only=False)  # runs `touch marker`, as a plain unpickler would
    assert marker.exists()


@pytest.mark.parametrize("command", ["features", "discover", "discover-run-folder", "train-resume"])
def test_a_crafted_checkpoint_runs_nothing(
    command: str, capsys, synthetic_collection: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    claim_folder(run, RUN_KIND)
    cfg = TrainConfig.from_dict(tiny_checkpoint()["config"]).resolved()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    _evil(run / "step_00000001.pt", tmp_path / "older-ran")  # an older one: never reached
    evil = _evil(run / "step_00000002.pt", marker)
    videos, out = str(synthetic_collection), str(tmp_path / "out")
    argv = {
        "features": ["features", videos, "--checkpoint", str(evil), "--out", f"{out}.npz"],
        "discover": ["discover", videos, "--checkpoint", str(evil), "--out", out],
        "discover-run-folder": ["discover", videos, "--checkpoint", str(run), "--out", out],
        "train-resume": ["train", videos, "--out", str(run), "--resume"],
    }[command]
    code = main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert_user_error(code, err, "refused checkpoint", "step_00000002.pt", "posix.system")
    assert "nothing in it ran" in err
    assert not marker.exists() and not (tmp_path / "older-ran").exists()
    assert not (tmp_path / "out").exists()  # nothing was computed or written


def test_load_checkpoint_refuses_and_names_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = _evil(tmp_path / "evil.pt", marker)
    with pytest.raises(TcdnError, match=r"refused checkpoint .*evil\.pt"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_every_checkpoint_tcdn_writes_loads_with_weights_only(train_frames, tmp_path: Path) -> None:
    for options in ({}, {"augment": "appearance", "loss": "ls", "batch_size": 4}):
        run = tmp_path / str(len(options))
        last = train(train_frames, small_config(steps=2, **options), run, progress=False)
        for path in sorted(run.glob("step_*.pt")):
            ckpt = torch.load(path, weights_only=True)
            assert ckpt["format"] == "tcdn-checkpoint-2"
            assert isinstance(ckpt["mean"], torch.Tensor)
        assert load_checkpoint(last)["mean"].dtype == np.float32


def test_a_checkpoint_of_an_earlier_tcdn_still_loads(tmp_path: Path) -> None:
    """Format 1 held the mean as a NumPy array: read with NumPy's array reconstruction alone."""
    ckpt = tiny_checkpoint()
    ckpt.pop("path")
    ckpt["format"] = "tcdn-checkpoint-1"
    ckpt["sampler"] = {"seed": 0, "bit_generator": np.random.default_rng(0).bit_generator.state}
    assert isinstance(ckpt["mean"], np.ndarray)
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    with pytest.raises(Exception):  # noqa: B017  # the plain safe loader refuses it...
        torch.load(old, weights_only=True)
    loaded = load_checkpoint(old)  # ...tcdn reads it, allowing NumPy arrays only
    np.testing.assert_array_equal(loaded["mean"], ckpt["mean"])


@pytest.mark.parametrize(
    "extra",
    [
        np.random.default_rng(0),  # a Generator: numpy.random globals, not an array
        np.array([1, "a", None], dtype=object),  # an object array: its items could be anything
    ],
    ids=["generator", "object-array"],
)
def test_numpy_objects_beyond_plain_arrays_are_refused(tmp_path: Path, extra: object) -> None:
    ckpt = tiny_checkpoint()
    ckpt.pop("path")
    ckpt["extra"] = extra
    path = tmp_path / "odd.pt"
    torch.save(ckpt, path)
    with pytest.raises(TcdnError, match="refused checkpoint"):
        load_checkpoint(path)


def test_damaged_last_checkpoint_falls_back_and_says_so(
    train_frames, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    train(train_frames, small_config(steps=4, checkpoint_every=2), run, progress=False)
    last = run / "step_00000004.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with caplog.at_level("WARNING"):
        ckpt = load_checkpoint(run)
    assert ckpt["step"] == 2
    assert "step_00000004.pt" in caplog.text and "step_00000002.pt" in caplog.text
    # resume continues from the complete one and rewrites the damaged step
    done = train(
        train_frames, small_config(steps=4, checkpoint_every=2), run, resume=True, progress=False
    )
    assert torch.load(done, weights_only=True)["step"] == 4


def test_saving_on_a_full_disk_leaves_no_partial(tmp_path: Path, monkeypatch) -> None:
    class Full:
        def __init__(self, fh):  # type: ignore[no-untyped-def]
            self.fh, self.error = fh, None

        def write(self, data):  # type: ignore[no-untyped-def]
            self.error = OSError(28, "No space left on device")
            raise self.error

        def flush(self) -> None:
            pass

    import tcdn.training.checkpoint as ck

    monkeypatch.setattr(ck, "_Recording", Full)
    with pytest.raises(TcdnError, match=r"cannot write checkpoint .*disk is full"):
        atomic_save({"a": torch.zeros(3)}, tmp_path / "step_00000001.pt")
    assert list(tmp_path.iterdir()) == []
