"""A new user's first hour: the start banner and estimate, precision, resume as one flag, Ctrl-C
that keeps the work, logs for batch jobs, global flags, quiet third parties, checks before work,
and the surprises that used to be silent."""

from __future__ import annotations

import logging
import signal
import warnings
from pathlib import Path

import pytest
import torch

from tcdn.cli import EXIT_INTERRUPTED, configure_logging
from tcdn.data.collection import find_videos
from tcdn.errors import TcdnError
from tcdn.training import precision as prec
from tcdn.training import run as run_mod
from tcdn.training import trainer as trainer_mod
from tests.cli.conftest import assert_user_error, run_cli, train_args


# -- the banner, the estimate, the loss as log lines ---------------------------------------------
def test_train_starts_with_a_banner_and_an_estimate(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    args = train_args(synthetic_collection, tmp_path / "run", small_yaml, "--steps", "6")
    code, _, err = run_cli(capsys, *args, "--checkpoint-every", "3", "--device", "cpu")
    assert code == 0, err
    assert "training lq (alexnet) on cpu (1 threads): 6 videos," in err
    assert "frames at 40x40; 6 steps of 2 tuples" in err
    assert "a checkpoint every 3 steps" in err and "precision fp32 (asked for)" in err
    assert "measured " in err and "the next checkpoint, at step 6" in err
    # --no-progress: the loss every log_every (1) steps, as log lines
    assert "step 1/6: loss " in err and "step 6/6: loss " in err


def test_paper_settings_on_a_cpu_name_the_config_that_fits(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "train", str(tmp_path / "none"), "--out", str(tmp_path / "r"), "--device", "cpu",
        "--recipe", "paper",
    )  # fmt: skip
    assert code == 2
    assert "paper's settings" in err and "--recipe best" in err
    assert err.index("paper's settings") < err.index("does not exist")  # said before decoding


def test_quiet_hides_info_and_flags_go_before_or_after_the_command(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    args = train_args(synthetic_collection, tmp_path / "a", small_yaml, "--steps", "1")
    code, _, err = run_cli(capsys, *args, "-q")
    assert code == 0 and "INFO" not in err
    args = train_args(synthetic_collection, tmp_path / "b", small_yaml, "--steps", "1")
    code, _, err = run_cli(capsys, "-q", *args)
    assert code == 0 and "INFO" not in err
    args = train_args(synthetic_collection, tmp_path / "c", small_yaml, "--steps", "1")
    code, _, err = run_cli(capsys, *args, "-v")
    assert code == 0 and "DEBUG tcdn.training.run: config:" in err


def test_third_party_info_and_convergence_warnings_only_with_verbose(
    capsys, restore_logging: None
) -> None:
    from sklearn.exceptions import ConvergenceWarning

    for verbose in (False, True):
        configure_logging(verbose=verbose, quiet=False)
        logging.getLogger("faiss.loader").info("Could not load library with AVX512 support")
        logging.getLogger("tcdn.x").info("a tcdn line")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("Number of distinct clusters (2) found", ConvergenceWarning, stacklevel=1)
        logging.captureWarnings(False)
        err = capsys.readouterr().err
        assert "a tcdn line" in err
        assert ("AVX512" in err) is verbose
        assert ("distinct clusters" in err) is verbose


# -- precision -----------------------------------------------------------------------------------
def test_cpu_flags_and_native_bf16(tmp_path: Path) -> None:
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    epyc = tmp_path / "epyc"
    epyc.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    cpu = torch.device("cpu")
    assert not prec.native_bf16(cpu, avx2)
    assert prec.native_bf16(cpu, epyc) and prec.native_bf16(cpu, arm)
    assert not prec.native_bf16(cpu, tmp_path / "missing")


def test_auto_picks_bf16_only_where_native_and_the_check_agrees(caplog) -> None:
    cpu = torch.device("cpu")
    calls: list[int] = []

    def compare(gap: float):  # type: ignore[no-untyped-def]
        def run() -> tuple[list[float], list[float]]:
            calls.append(1)
            return [0.5, 0.49, 0.48], [0.5, 0.49 * (1 + gap), 0.48]

        return run

    # emulated: fp32, and the (slow) check is not even run
    assert prec.choose_precision("auto", cpu, compare(0), native=False)[0] == "fp32"
    assert calls == []
    # native and agreeing to a bf16-sized tolerance (far above fp32's 1e-4): bf16
    chosen, why = prec.choose_precision("auto", cpu, compare(3e-3), native=True)
    assert chosen == "bf16" and "agrees" in why
    # native but departing: fp32
    chosen, why = prec.choose_precision("auto", cpu, compare(0.05), native=True)
    assert chosen == "fp32" and "departs" in why
    # asked for: honoured, with a warning where it is emulated
    with caplog.at_level("WARNING"):
        assert prec.choose_precision("bf16", cpu, compare(0), native=False)[0] == "bf16"
    assert "emulated" in caplog.text
    assert prec.choose_precision("fp32", cpu, compare(0), native=True)[0] == "fp32"
    with pytest.raises(TcdnError, match="--precision"):
        prec.choose_precision("fp16", cpu, compare(0))
    nan = lambda: ([0.5], [float("nan")])  # noqa: E731
    assert prec.choose_precision("auto", cpu, nan, native=True)[0] == "fp32"


def test_the_precision_check_leaves_the_run_as_it_was(train_frames, monkeypatch) -> None:
    """The check's steps do not count: a run that checked takes the same steps as one that
    did not. (One bf16 step on a tiny network: a correctness check, not a timing.)"""
    from tests.conftest import small_config

    def trainer() -> trainer_mod.Trainer:
        torch.manual_seed(0)
        return trainer_mod.Trainer(train_frames, small_config(), torch.device("cpu"))

    plain = trainer()
    checked = trainer()
    for t in (plain, checked):  # mid-run, with momentum: a resumed run checks there
        torch.manual_seed(2)
        t.step()
        t.step()
    momentum = {k: v["momentum_buffer"].clone() for k, v in checked.optimizer.state.items()}
    assert momentum
    fp32, bf16 = checked.compare_precisions(steps=1)
    assert len(fp32) == len(bf16) == 1 and abs(fp32[0] - bf16[0]) < 0.05
    assert checked.step_count == 2 and not checked.use_bf16
    for k, v in checked.optimizer.state.items():
        assert torch.equal(v["momentum_buffer"], momentum[k])
    for _ in range(2):
        torch.manual_seed(1)
        a = plain.step().loss
        torch.manual_seed(1)
        b = checked.step().loss
        assert a == b
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, checked.model.state_dict()[k]), k


def test_precision_auto_in_a_run_uses_the_decision(
    monkeypatch, train_frames, tmp_path: Path
) -> None:
    from tests.conftest import small_config

    monkeypatch.setattr(prec, "native_bf16", lambda device, cpuinfo="": True)
    monkeypatch.setattr(
        trainer_mod.Trainer, "compare_precisions", lambda self, steps=3: ([0.5], [0.5001])
    )
    last = run_mod.train(
        train_frames, small_config(steps=1, precision="auto"), tmp_path / "r", progress=False
    )
    assert torch.load(last, weights_only=True)["precision"] == "bf16"
    monkeypatch.setattr(prec, "native_bf16", lambda device, cpuinfo="": False)
    last = run_mod.train(
        train_frames, small_config(steps=1, precision="auto"), tmp_path / "s", progress=False
    )
    assert torch.load(last, weights_only=True)["precision"] == "fp32"


def test_precision_auto_keeps_the_decision_of_the_run_it_resumes(
    monkeypatch, train_frames, tmp_path: Path, caplog
) -> None:
    """Deciding again at a resume could switch precision mid-run: ``auto`` keeps the
    checkpoint's (bf16 only where this device has it natively)."""
    from tests.conftest import small_config

    monkeypatch.setattr(prec, "native_bf16", lambda device, cpuinfo="": True)
    monkeypatch.setattr(
        trainer_mod.Trainer, "compare_precisions", lambda self, steps=3: ([0.5], [0.5001])
    )
    run = tmp_path / "r"
    run_mod.train(train_frames, small_config(steps=1, precision="auto"), run, progress=False)
    # the check would now say fp32; the resumed run stays in bf16 and says why
    monkeypatch.setattr(
        trainer_mod.Trainer, "compare_precisions", lambda self, steps=3: ([0.5], [0.9])
    )
    with caplog.at_level("INFO"):
        last = run_mod.train(
            train_frames, small_config(steps=2, precision="auto"), run, resume=True, progress=False
        )
    assert torch.load(last, weights_only=True)["precision"] == "bf16"
    assert "as the run it continues chose" in caplog.text
    cpu = torch.device("cpu")
    never = lambda: pytest.fail("no check when resuming")  # noqa: E731
    assert prec.choose_precision("auto", cpu, never, native=True, resumed="fp32")[0] == "fp32"
    assert prec.choose_precision("auto", cpu, never, native=False, resumed="bf16")[0] == "fp32"
    assert prec.choose_precision("fp32", cpu, never, native=True, resumed="bf16")[0] == "fp32"


# -- Ctrl-C keeps the work -----------------------------------------------------------------------
def test_ctrl_c_in_train_writes_a_checkpoint_and_resume_is_exact(
    capsys, monkeypatch, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    full = tmp_path / "full"
    args = train_args(
        synthetic_collection, full, small_yaml, "--steps", "5", "--checkpoint-every", "10"
    )
    assert run_cli(capsys, *args)[0] == 0

    real_step = trainer_mod.Trainer.step

    def step(self, **kwargs):  # type: ignore[no-untyped-def]
        result = real_step(self, **kwargs)
        if self.step_count == 3:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the run
        return result

    monkeypatch.setattr(trainer_mod.Trainer, "step", step)
    part = tmp_path / "part"
    args = train_args(
        synthetic_collection, part, small_yaml, "--steps", "5", "--checkpoint-every", "10"
    )
    code, _, err = run_cli(capsys, *args)
    assert code == EXIT_INTERRUPTED
    assert "interrupted at step 3 of 5" in err
    assert "step_00000003.pt (step 3)" in err and "--resume` continues it" in err
    assert sorted(p.name for p in part.glob("step_*.pt")) == ["step_00000003.pt"]
    monkeypatch.undo()
    code, _, err = run_cli(
        capsys, "train", str(synthetic_collection), "--out", str(part), "--resume", "--no-progress"
    )
    assert code == 0, err
    a = torch.load(full / "step_00000005.pt", weights_only=True)["model"]
    b = torch.load(part / "step_00000005.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("command", ["ingest", "features", "discover"])
def test_ctrl_c_messages_say_what_each_command_kept(
    command: str, capsys, monkeypatch, synthetic_collection: Path, tmp_path: Path
) -> None:
    import tcdn.cli.common as common
    import tcdn.data.store.writer as writer

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    import tcdn.data.load

    monkeypatch.setattr(common, "load_collection", interrupt)
    monkeypatch.setattr(writer, "_run", interrupt)
    monkeypatch.setattr(tcdn.data.load, "open_collection", interrupt)
    out = tmp_path / "out"
    argv = {
        "ingest": ["ingest", str(synthetic_collection), "--out", str(out)],
        "features": [
            "features",
            str(synthetic_collection),
            "--source",
            "raw_pixels",
            "--out",
            str(out),
        ],
        "discover": ["discover", str(synthetic_collection), "--out", str(out)],
    }[command]
    code, _, err = run_cli(capsys, *argv, "--no-progress")
    assert code == EXIT_INTERRUPTED
    assert "--resume" not in err
    assert "run the same" in err


# -- checks before work, and what used to be silent ------------------------------------------------
def test_resume_without_a_checkpoint_is_an_error(
    capsys, synthetic_collection: Path, tmp_path: Path, small_yaml: Path
) -> None:
    run = tmp_path / "run"
    args = train_args(synthetic_collection, run, small_yaml, "--steps", "1")
    code, _, err = run_cli(capsys, *args, "--checkpoint-every", "5")
    assert code == 0
    for p in run.glob("step_*.pt"):
        p.unlink()
    code, _, err = run_cli(capsys, *args, "--resume")
    assert_user_error(code, err, "--resume", "holds no checkpoint", "without --resume")


def test_discover_without_checkpoint_says_what_it_clusters(
    capsys, synthetic_collection: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        capsys, "discover", str(synthetic_collection), "--out", str(tmp_path / "r"),
        "--sources", "raw_pixels", "--methods", "kmeans", "--repeats", "1", "--size", "16",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "randomly initialised network" in err and "raw pixels only" in err


def test_a_label_file_listing_some_videos_says_how_many_are_left_out(
    make_video, tmp_path: Path, caplog
) -> None:
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_video(tmp_path / "v" / name, 3)
    (tmp_path / "v" / "labels.csv").write_text("video,label\na.mp4,x\n")
    with caplog.at_level("WARNING"):
        entries = find_videos(tmp_path / "v")
    assert [e.name for e in entries] == ["a.mp4"]
    assert "holds 2 more that it does not list" in caplog.text
    assert "b.mp4" in caplog.text and "c.mp4" in caplog.text


def test_a_truncated_video_is_kept_with_a_warning(capsys, tmp_path: Path) -> None:
    """A file cut short (its index at the front) decodes to fewer frames than it lists."""
    import av
    import numpy as np

    path = tmp_path / "v" / "cut.mp4"
    path.parent.mkdir()
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=25)
        s.width = s.height = 32  # type: ignore[union-attr]
        s.pix_fmt = "yuv420p"  # type: ignore[union-attr]
        base = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        for t in range(61):
            frame = np.roll(base, t, axis=1)
            for pk in s.encode(av.VideoFrame.from_ndarray(frame, "rgb24")):  # type: ignore[union-attr]
                c.mux(pk)
        for pk in s.encode():  # type: ignore[union-attr]
            c.mux(pk)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    code, out, err = run_cli(
        capsys, "ingest", str(tmp_path / "v"), "--out", str(tmp_path / "s"), "--size", "16",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "short: cut.mp4" in out and "of the 61 frames its container lists" in out
    assert "of the 61 frames" in err  # and a warning as it happens
