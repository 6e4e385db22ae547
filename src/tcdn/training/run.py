"""A training run (:func:`train`): the run folder checked, locked and claimed, the trainer built
(seeded) or restored, then stepped to ``steps`` with a progress bar, the run's log
(:mod:`tcdn.training.runlog`) and checkpoints (:mod:`tcdn.training.state`) every
``checkpoint_every`` steps. Ctrl-C or SIGTERM stops after the step in progress and writes a
checkpoint first, so ``--resume`` continues exactly.

Under ``torchrun`` rank 0 alone writes checkpoints, logs and TensorBoard events; every rank
returns once the last checkpoint is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from tcdn import runlock
from tcdn.data.frameset import FrameSet
from tcdn.data.samplers import shard_rows
from tcdn.device import resolve_device
from tcdn.errors import TcdnError
from tcdn.outputs import claim_folder, write_atomic
from tcdn.training.checkpoint import RUN_KIND, check_run_folder, checkpoint_step, remove_partials
from tcdn.training.config import TrainConfig
from tcdn.training.distributed import barrier, distributed, env_int
from tcdn.training.runlog import Monitor, RunLog, summary_writer_class
from tcdn.training.state import resume_checkpoint
from tcdn.training.trainer import Trainer

log = logging.getLogger(__name__)

#: steps after the first whose time gives the run's estimate (the first one warms up)
ETA_STEPS = 3

__all__ = ["ETA_STEPS", "cpu_scale_hint", "resume_checkpoint", "train"]


def train(
    frames: FrameSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool | str | Path | dict[str, Any] = False,
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Train on ``frames`` and return the path of the last checkpoint.

    Parameters
    ----------
    frames
        The training collection; its labels are never used.
    config
        The run's configuration.
    out_dir
        Run folder: checkpoints ``step_XXXXXXXX.pt``, ``config.yaml``, ``log.jsonl`` (and
        ``tensorboard/`` with ``tensorboard: true``) go here. It must be new, empty or a tcdn run;
        it is locked while the run lasts (a second run into it stops with a clear error).
    resume
        ``True``: continue from the last complete checkpoint in ``out_dir`` (an error if there
        is none; its config must match ``config`` except in
        :data:`~tcdn.training.config.RESUMABLE_CHANGES`). A path or a :func:`load_checkpoint`
        dict: continue from that checkpoint.
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. Under ``torchrun`` on GPUs each rank uses
        ``cuda:LOCAL_RANK``.
    progress
        Show a progress bar (rank 0 only); without one, the loss is logged every ``log_every``
        steps.

    An interruption (Ctrl-C, SIGTERM) stops the run after the step in progress and writes a
    checkpoint of that step before :class:`KeyboardInterrupt` propagates (one process only).
    """
    cfg = config.resolved()
    dev = resolve_device(device)
    run = Path(out_dir)
    main = env_int("RANK", 0) == 0
    if main:
        check_run_folder(run)
    if frames.frames.shape[1] != cfg.image_size or frames.frames.shape[2] != cfg.image_size:
        raise TcdnError(
            f"frames are {frames.frames.shape[2]}x{frames.frames.shape[1]} but the config asks for image_size="
            f"{cfg.image_size}: decode the videos at that size"
        )
    if cfg.compile:
        _check_compiler(dev)
    if cfg.tensorboard:
        summary_writer_class()  # every rank fails alike, before any collective call
    assert cfg.batch_size is not None  # resolved
    shard_rows(cfg.batch_size, 0, max(env_int("WORLD_SIZE", 1), 1))  # an uneven split fails first
    with runlock.hold(run) if main else contextlib.nullcontext():
        if main:
            claim_folder(run, RUN_KIND)
            remove_partials(run)
        start = resume_checkpoint(run, resume)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        with distributed(dev) as ddp:
            if ddp.world > 1 and dev.type == "cuda":
                dev = torch.device("cuda", ddp.local_rank)
            cuda = [dev.index or 0] if dev.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(cfg.seed)
                trainer = Trainer(frames, cfg, dev, ddp)
                if start is not None:
                    trainer.restore(start)
                trainer.settle_precision()
                return _run(trainer, run, progress)


def cpu_scale_hint(cfg: TrainConfig, device: str | torch.device) -> str | None:
    """On a CPU, the paper's scale (227-pixel frames, tens of thousands of steps) takes days: the
    warning that says so and names the config that fits a CPU; ``None`` elsewhere."""
    if torch.device(device).type != "cpu" or cfg.image_size < 160 or cfg.steps < 5000:
        return None
    return (
        f"training at {cfg.image_size}x{cfg.image_size} for {cfg.steps:,} steps on a CPU: these "
        "are the paper's settings, made for a GPU; here a step takes seconds (6-14 s measured for "
        "AlexNet) and the run days. The default recipe fits a CPU (64x64 frames, 300 steps): "
        "run without --recipe paper or --config (or --recipe best). The time per step measured "
        "after the first steps follows"
    )


def _check_compiler(device: torch.device) -> None:
    """``torch.compile`` on a CPU builds C++ kernels: fail early and clearly without a compiler."""
    if device.type != "cpu":
        return
    cc = os.environ.get("CXX") or os.environ.get("CC")
    found = [c for c in ([cc] if cc else []) + ["c++", "g++", "clang++"] if shutil.which(c)]
    if not found:
        raise TcdnError(
            "compile: true on a CPU needs a C++ compiler (g++ or clang++) on the PATH: install one "
            "or set compile: false"
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _banner(trainer: Trainer, run: Path, progress: bool) -> None:
    """The run's first lines: what it trains, where, how long, and when it saves."""
    cfg, dev = trainer.cfg, trainer.device
    where = f"{dev} ({torch.get_num_threads()} threads)" if dev.type == "cpu" else str(dev)
    if dev.type == "cuda":
        where += f", {torch.cuda.get_device_name(dev)}"
    if trainer.ddp.world > 1:
        where += f", {trainer.ddp.world} processes"
    start = f" from step {trainer.step_count}" if trainer.step_count else ""
    log.info(
        "training %s (%s) on %s: %d videos, %d frames at %dx%d; %d steps of %d tuples%s",
        cfg.loss,
        cfg.model,
        where,
        len(trainer.frames.videos),
        len(trainer.frames.frames),
        cfg.image_size,
        cfg.image_size,
        cfg.steps,
        trainer.batch,
        start,
    )
    log.info(
        "precision %s (%s); a checkpoint every %d steps in %s (the last %d kept); the time per "
        "step and an estimate follow after the first %d steps%s",
        "bf16" if trainer.use_bf16 else "fp32",
        trainer.precision_reason,
        cfg.checkpoint_every,
        run,
        cfg.keep_last,
        ETA_STEPS + 1,
        "" if progress else f"; the loss every {cfg.log_every} steps",
    )


class _StopFlag:
    """Ctrl-C (SIGINT) and SIGTERM during training: finish the step in progress, write a
    checkpoint, then stop; a second Ctrl-C stops at once. Only in the main thread of a single
    process (under torchrun every rank would have to stop at the same step)."""

    def __init__(self) -> None:
        self.stop = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        log.warning(
            "stopping after the step in progress to write a checkpoint (Ctrl-C again to stop at once)"
        )

    @contextlib.contextmanager
    def installed(self, enabled: bool) -> Iterator[_StopFlag]:
        if enabled and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[int(sig)] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for signum, old in self._previous.items():
                signal.signal(signum, old)
            self._previous.clear()


def _run(trainer: Trainer, run: Path, progress: bool) -> Path:
    """Step ``trainer`` to ``steps``, logging every ``log_every`` steps and saving checkpoints."""
    cfg, ddp = trainer.cfg, trainer.ddp
    if ddp.main:
        write_atomic(run / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if trainer.step_count >= cfg.steps:
        if ddp.main:
            log.info(
                "%s is already at step %d of %d: give a larger --steps to train on",
                run,
                trainer.step_count,
                cfg.steps,
            )
        return trainer.last_checkpoint or trainer.save(run)
    if ddp.main:
        _banner(trainer, run, progress)
        log.debug("config: %s", json.dumps(cfg.to_dict()))
    trainer.model.train()
    bar = tqdm(
        total=cfg.steps,
        initial=trainer.step_count,
        desc=f"training {cfg.loss}",
        unit="step",
        disable=not progress or not ddp.main,
    )
    with contextlib.ExitStack() as stack:
        stack.callback(bar.close)
        runlog = stack.enter_context(RunLog(run, tensorboard=cfg.tensorboard)) if ddp.main else None
        flag = stack.enter_context(_StopFlag().installed(ddp.world == 1))
        _steps(trainer, run, bar, runlog, flag, progress)
    barrier(ddp)  # every rank returns once rank 0 has written the last checkpoint
    last = trainer.last_checkpoint
    assert last is not None
    if ddp.main:
        log.info("finished %d steps; checkpoint %s", trainer.step_count, last)
    return last


def _steps(
    trainer: Trainer,
    run: Path,
    bar: Any,
    runlog: RunLog | None,
    flag: _StopFlag,
    progress: bool,
) -> None:
    """The steps themselves: one :meth:`Trainer.step` each, a log record every ``log_every``
    steps, a checkpoint every ``checkpoint_every`` steps and at the end; on a stop request, a
    checkpoint of the step reached and :class:`KeyboardInterrupt`."""
    cfg, ddp = trainer.cfg, trainer.ddp
    monitor = Monitor(trainer.batch)
    first = trainer.step_count
    t_first: float | None = None
    while trainer.step_count < cfg.steps:
        step = trainer.step_count + 1
        logs = ddp.main and (step % cfg.log_every == 0 or step == cfg.steps)
        result = trainer.step(diagnose=logs)
        bar.update(1)
        monitor.count()
        if step == first + 1:
            t_first = time.perf_counter()
        elif ddp.main and t_first is not None and step == first + 1 + ETA_STEPS:
            _estimate(trainer, (time.perf_counter() - t_first) / ETA_STEPS)
        if logs:
            assert runlog is not None
            rec = monitor.record(step, result, float(trainer.scheduler.get_last_lr()[0]))
            bar.set_postfix(loss=f"{rec['loss']:.4f}", tuples_s=f"{rec['tuples_per_s']:.0f}")
            runlog.write(rec)
            if not progress:
                _log_step(trainer, rec)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            trainer.save(run)
        if flag.stop:
            break
    if flag.stop and trainer.step_count < cfg.steps:
        if (
            trainer.last_checkpoint is None
            or checkpoint_step(trainer.last_checkpoint) != trainer.step_count
        ):
            trainer.save(run)
        log.warning(
            "interrupted at step %d of %d: wrote %s",
            trainer.step_count,
            cfg.steps,
            trainer.last_checkpoint,
        )
        raise KeyboardInterrupt


def _log_step(trainer: Trainer, rec: dict[str, Any]) -> None:
    """The loss line of a run without a progress bar."""
    cfg = trainer.cfg
    left = (cfg.steps - rec["step"]) * trainer.batch / max(rec["tuples_per_s"], 1e-9)
    log.info(
        "step %d/%d: loss %.4f, lr %.3g, embedding spread %.2g (relative %.3f), %.0f tuples/s, "
        "%s left",
        rec["step"],
        cfg.steps,
        rec["loss"],
        rec["lr"],
        rec["embedding_spread"],
        rec.get("relative_spread", float("nan")),
        rec["tuples_per_s"],
        _duration(left),
    )


def _estimate(trainer: Trainer, per_step: float) -> None:
    cfg, step = trainer.cfg, trainer.step_count
    left = (cfg.steps - step) * per_step
    until = time.strftime("%a %H:%M", time.localtime(time.time() + left))
    after = ((step // cfg.checkpoint_every) + 1) * cfg.checkpoint_every
    nxt = min(after, cfg.steps)
    log.info(
        "measured %.3g s per step: the remaining %d steps take about %s (until %s); the next "
        "checkpoint, at step %d, in about %s",
        per_step,
        cfg.steps - step,
        _duration(left),
        until,
        nxt,
        _duration((nxt - step) * per_step),
    )
