"""What a training run saves and restores: the checkpoint of a :class:`~tcdn.training.trainer.Trainer`
(every tensor and plain value a run needs to continue exactly: weights, optimiser, schedule,
sampler, augmentation and RNG states, the input statistics, the step), written atomically, and
the checks a resumed run passes (the same config but for
:data:`~tcdn.training.config.RESUMABLE_CHANGES`, the same videos).

Checkpoints hold tensors and plain Python values only, so ``torch.load(weights_only=True)``
reads them (:func:`~tcdn.training.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tcdn.errors import TcdnError
from tcdn.models.input import InputTransform
from tcdn.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_PATTERN,
    atomic_save,
    list_checkpoints,
    load_checkpoint,
)
from tcdn.training.config import RESUMABLE_CHANGES, TrainConfig
from tcdn.training.distributed import gather

if TYPE_CHECKING:
    from tcdn.training.trainer import Trainer

log = logging.getLogger(__name__)


def trainer_state(trainer: Trainer) -> dict[str, Any] | None:
    """The checkpoint of this step (``None`` on ranks other than 0; collective under DDP)."""
    rng = gather(torch.get_rng_state(), trainer.ddp)
    cuda_rng = (
        gather(torch.cuda.get_rng_state(trainer.device), trainer.ddp)
        if trainer.device.type == "cuda"
        else None
    )
    if not trainer.ddp.main:
        return None
    # tensors and plain Python values only: torch.load(weights_only=True) reads it
    return {
        "format": CHECKPOINT_FORMAT,
        "config": trainer.cfg.to_dict(),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "sampler": trainer.sampler.state_dict(),
        "augment_rng": trainer.aug_gen.get_state(),
        "torch_rng": rng[0],
        "torch_rng_ranks": rng,
        "cuda_rng_ranks": cuda_rng,
        "world_size": trainer.ddp.world,
        "mean": torch.as_tensor(np.asarray(trainer.mean, dtype=np.float32)),
        # input_norm / motion: the statistics extraction must use (tensors and a string)
        "input": trainer.transform.state() if trainer.transform is not None else None,
        "step": trainer.step_count,
        "precision": "bf16" if trainer.use_bf16 else "fp32",
        "videos": [v.name for v in trainer.frames.videos],
    }


def save_trainer(trainer: Trainer, run: Path) -> Path:
    """Write ``run/step_XXXXXXXX.pt`` atomically (rank 0) and keep the last ``keep_last``
    (only files named as checkpoints are ever removed)."""
    path = run / CHECKPOINT_PATTERN.format(trainer.step_count)
    state = trainer_state(trainer)
    if state is not None:
        try:
            atomic_save(state, path)
        except TcdnError as exc:
            last = trainer.last_checkpoint
            raise TcdnError(
                f"{exc}. The run stopped at step {trainer.step_count}; "
                + (
                    f"its last complete checkpoint is {last}: `--resume` continues from it"
                    if last
                    else "no checkpoint was written yet"
                )
            ) from None
        for old in list_checkpoints(run)[: -trainer.cfg.keep_last]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    trainer.last_checkpoint = path
    return path


def restore_trainer(trainer: Trainer, checkpoint: Path | dict[str, Any]) -> None:
    """Continue from a checkpoint (a path, or a :func:`load_checkpoint` dict); its config must
    equal this run's but for :data:`~tcdn.training.config.RESUMABLE_CHANGES`, and it must have
    been trained on the same videos."""
    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    path = Path(ckpt["path"])
    saved = TrainConfig.from_dict(ckpt["config"]).resolved()
    mine = trainer.cfg.to_dict()
    differ = {k for k, v in saved.to_dict().items() if k not in RESUMABLE_CHANGES and mine[k] != v}
    if differ:
        raise TcdnError(
            f"cannot resume {path}: its config differs in {', '.join(sorted(differ))}; "
            f"use the same options (only {', '.join(RESUMABLE_CHANGES)} may change) or another --out"
        )
    names = [v.name for v in trainer.frames.videos]
    if "videos" in ckpt and list(ckpt["videos"]) != names:
        raise TcdnError(
            f"cannot resume {path}: it was trained on {len(ckpt['videos'])} videos and this "
            f"collection has {len(names)} (or other ones): {_video_difference(ckpt['videos'], names)}; "
            "give the same collection, or train into another --out"
        )
    try:
        trainer.model.load_state_dict(ckpt["model"])
        trainer.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:2])
        raise TcdnError(
            f"cannot resume {path}: its weights do not fit the run's network ({detail}): the "
            "file is damaged or was edited; resume from an earlier checkpoint or train anew"
        ) from None
    trainer.scheduler.load_state_dict(ckpt["scheduler"])
    trainer.sampler.load_state_dict(ckpt["sampler"])
    if "augment_rng" in ckpt:
        trainer.aug_gen.set_state(ckpt["augment_rng"])
    saved_world = int(ckpt.get("world_size", 1))
    rng_states = ckpt.get("torch_rng_ranks") or [ckpt["torch_rng"]]
    if saved_world == trainer.ddp.world:
        torch.set_rng_state(rng_states[trainer.ddp.rank])
    elif trainer.ddp.main:
        log.warning(
            "%s was written by %d process(es), this run has %d: the tuples continue exactly, "
            "dropout masks do not",
            path,
            saved_world,
            trainer.ddp.world,
        )
    cuda_states = ckpt.get("cuda_rng_ranks")
    if trainer.device.type == "cuda" and cuda_states and saved_world == trainer.ddp.world:
        torch.cuda.set_rng_state(cuda_states[trainer.ddp.rank], trainer.device)
    trainer.set_mean(np.asarray(ckpt["mean"], dtype=np.float32))
    if trainer.transform is not None and ckpt.get("input") is not None:
        trainer.transform = InputTransform.from_state(ckpt["input"])
    trainer.resumed_precision = ckpt.get("precision")
    trainer.step_count = int(ckpt["step"])
    trainer.last_checkpoint = path
    if trainer.ddp.main:
        log.info("resuming %s at step %d", path, trainer.step_count)


def resume_checkpoint(
    run: Path, resume: bool | str | Path | dict[str, Any]
) -> dict[str, Any] | None:
    """The checkpoint a run continues from (``None``: it starts at step 0), checked before any
    work: a run folder with checkpoints needs ``resume``; ``resume`` needs a checkpoint."""
    if isinstance(resume, dict):
        return resume
    if resume is False:
        existing = list_checkpoints(run)
        if existing:
            raise TcdnError(
                f"{run} already holds checkpoints (last: {existing[-1].name}): pass --resume to "
                "continue that run, or choose another --out"
            )
        return None
    if resume is True:
        if not list_checkpoints(run):
            raise TcdnError(
                f"--resume: {run} holds no checkpoint (step_XXXXXXXX.pt) to continue from: run "
                "without --resume to start at step 0"
            )
        return load_checkpoint(run)
    return load_checkpoint(Path(resume))


def _video_difference(saved: list[str], names: list[str]) -> str:
    missing = [n for n in saved if n not in set(names)]
    new = [n for n in names if n not in set(saved)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({', '.join(missing[:3])})")
    if new:
        parts.append(f"{len(new)} new ({', '.join(new[:3])})")
    return "; ".join(parts) or "the same videos in another order"
