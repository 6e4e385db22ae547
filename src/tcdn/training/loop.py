"""Training a temporal-coherence network on a :class:`~tcdn.data.FrameSet` (SPEC §2-§4).

One mechanism for every loss: the sampler returns a :class:`~tcdn.data.samplers.Tuples` of
``(B, k)`` frame indices, the ``B * k`` frames go through the network in **one** forward pass
(all branches share the weights), and the loss sees the ``k`` slices of the embedding.

:class:`Trainer` holds one run's state and takes one step at a time (the benchmarks time that
same step); :func:`train` restores, steps, logs and saves. Checkpoints are written atomically
(temporary file, then rename) and hold everything :meth:`Trainer.state_dict` lists, so a resumed
run continues exactly where it stopped.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on GPUs, gloo on CPUs). Every rank
draws the *global* batch of tuples (and of augmentation parameters) from the shared seed and
trains on its own block of rows (:func:`tcdn.data.samplers.shard_rows`): a run on ``W``
processes sees exactly the tuples of a one-process run with the same ``batch_size``, and, as DDP
averages the ranks' gradients of their local means, takes the same steps up to floating-point
summation order (dropout masks aside: each rank draws its own). Rank 0 alone writes checkpoints,
logs and TensorBoard events.

Randomness: the network's initialisation and dropout draw from torch's RNG, which :func:`train`
seeds inside :func:`torch.random.fork_rng` (the caller's RNG state is left as it was); the
sampler and the augmentation own seeded generators.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

from tcdn.data.frameset import FrameSet
from tcdn.data.samplers import (
    PairSampler,
    QuadrupletSampler,
    SFAPairSampler,
    TripletSampler,
    Tuples,
    shard_rows,
)
from tcdn.device import resolve_device
from tcdn.errors import TcdnError
from tcdn.losses import ContrastiveLoss, QuadrupletLoss, RankingLoss, SiameseLoss
from tcdn.models.input import channel_mean, to_input
from tcdn.training.checkpoint import (
    CHECKPOINT_PATTERN,
    atomic_save,
    list_checkpoints,
    load_checkpoint,
)
from tcdn.training.config import LOSS_DEFAULTS, RESUMABLE_CHANGES, TrainConfig
from tcdn.training.diagnostics import (
    COLLAPSE_SPREAD,
    DIRECTION_COLLAPSE,
    embedding_diagnostics,
    grad_norms,
    hinge_active_share,
)
from tcdn.training.distributed import Dist, barrier, distributed, env_int, gather, mean_over_ranks

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tcdn-checkpoint-1"

Sampler = QuadrupletSampler | PairSampler | SFAPairSampler | TripletSampler


def make_sampler(cfg: TrainConfig, frames: FrameSet) -> Sampler:
    """The tuple sampler of ``cfg.loss`` over the videos of ``frames``, seeded by ``cfg.seed``."""
    names = [v.name for v in frames.videos]
    common: dict[str, Any] = {"window": cfg.window, "seed": cfg.seed, "mu": cfg.mu, "names": names}
    if cfg.loss == "lq":
        return QuadrupletSampler(frames.lengths, far=cfg.far, **common)
    if cfg.loss == "ls":
        return PairSampler(frames.lengths, negative_share=cfg.negative_share, **common)
    if cfg.loss == "sfa":
        return SFAPairSampler(
            frames.lengths, far=cfg.far, negative_share=cfg.negative_share, **common
        )
    return TripletSampler(frames.lengths, **common)


def make_criterion(cfg: TrainConfig) -> nn.Module:
    """The loss module of ``cfg.loss`` with the config's margin and distance options."""
    margin = cfg.margin if cfg.margin is not None else LOSS_DEFAULTS[cfg.loss][3]
    if cfg.loss == "lq":
        return QuadrupletLoss(margin, squared=cfg.squared, normalize=cfg.normalize)
    if cfg.loss == "ls":
        return SiameseLoss(margin, squared=cfg.squared, normalize=cfg.normalize)
    if cfg.loss == "sfa":
        return ContrastiveLoss(margin, normalize=cfg.normalize)
    return RankingLoss(margin)


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """The learning-rate factor at a step: step decay (``x lr_gamma`` every ``lr_step`` steps) or a
    cosine from 1 to 0 over ``steps``, after ``warmup`` steps of linear warm-up (if any)."""

    def factor(step: int) -> float:
        if cfg.schedule == "cosine":
            span = max(cfg.steps - cfg.warmup, 1)
            progress = min(max(step - cfg.warmup, 0) / span, 1.0)
            f = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            f = cfg.lr_gamma ** (step // cfg.lr_step)
        if cfg.warmup and step < cfg.warmup:
            f *= (step + 1) / cfg.warmup
        return f

    return factor


@dataclass
class StepResult:
    """What one step saw: the global batch's loss, this rank's ``(k, B, D)`` embeddings and pair
    labels, and (when asked for) the diagnostics of :mod:`tcdn.training.diagnostics`."""

    loss: float
    embeddings: torch.Tensor
    labels: torch.Tensor | None = None
    diagnostics: dict[str, float] | None = None


class Trainer:
    """One training run's state (network, optimiser, schedule, sampler, augmentation, step) and
    its step.

    The network is initialised from torch's global RNG: seed it first (:func:`train` does, inside
    :func:`torch.random.fork_rng`).

    Parameters
    ----------
    frames
        The training collection; its labels are never used.
    config
        The run's configuration (loss-dependent defaults are resolved here).
    device
        Where the network runs.
    ddp
        This process's place in a ``torchrun`` job (rank 0 of 1 by default).
    """

    def __init__(
        self,
        frames: FrameSet,
        config: TrainConfig,
        device: torch.device,
        ddp: Dist | None = None,
    ) -> None:
        cfg = config.resolved()
        self.frames, self.cfg, self.device = frames, cfg, device
        self.ddp = ddp or Dist()
        self.model = cfg.build_model(check_input=True).to(device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.ddp.rank > 0:
            # Same initial weights on every rank (seeded by the caller; DDP also broadcasts rank
            # 0's), but each rank's own stream for dropout.
            torch.manual_seed(
                int(np.random.SeedSequence([cfg.seed, self.ddp.rank]).generate_state(1)[0])
            )
        self.sampler = make_sampler(cfg, frames)
        self.criterion = make_criterion(cfg)
        self.augment = cfg.augmenter()
        self.aug_gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence([cfg.seed, 2]).generate_state(1)[0])
        )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        self.mean = channel_mean(frames.frames, seed=cfg.seed)
        self.step_count = 0
        self.last_checkpoint: Path | None = None

        self.net: nn.Module = self.model
        if self.ddp.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if cfg.compile:
            self.net = torch.compile(self.net)  # type: ignore[assignment]
        assert cfg.batch_size is not None  # resolved
        self.batch = cfg.batch_size  # global tuples per step
        self.rows = shard_rows(self.batch, self.ddp.rank, self.ddp.world)
        k = cfg.tuple_size
        # Augmentation parameters of this rank's frames among the global batch's k * batch frames,
        # which are laid out column-major (all queries, then all positives, ...).
        self._aug_rows = (
            torch.arange(k)[:, None] * self.batch
            + torch.arange(self.rows.start, self.rows.stop)[None, :]
        ).reshape(-1)
        self._mean_t = torch.as_tensor(self.mean, dtype=torch.float32, device=device).view(
            1, 3, 1, 1
        )

    # -- one step ----------------------------------------------------------------------------
    def draw(self) -> Tuples:
        """This rank's block of the next global batch of tuples."""
        return self.sampler.sample(self.batch).take(self.rows)

    def inputs(self, indices: np.ndarray) -> torch.Tensor:
        """The network input of ``(B, k)`` tuples: ``k * B`` frames, column-major (all queries,
        then all positives, ...), augmented if the config says so."""
        chosen = self.frames.frames[indices.T.reshape(-1)]
        if self.augment is None:
            x = to_input(chosen, self.mean, self.device)
        else:
            k = self.cfg.tuple_size
            params = self.augment.sample_params(k * self.batch, self.aug_gen)[self._aug_rows]
            x = torch.from_numpy(np.ascontiguousarray(chosen)).to(self.device).permute(0, 3, 1, 2)
            x = self.augment.apply_params(x.float() / 255.0, params) - self._mean_t / 255.0
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def optimize(
        self, x: torch.Tensor, labels: np.ndarray | None = None, *, diagnose: bool = False
    ) -> StepResult:
        """Forward ``x`` (``k`` slices of ``B`` frames), the loss (with pair ``labels`` for Ls and
        SFA), backward, clip and one optimiser and schedule step; with ``diagnose``, also the
        diagnostics of :mod:`tcdn.training.diagnostics` (the gradient norms before clipping)."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            out = self.net(x)
        emb = out.float().view(cfg.tuple_size, len(x) // cfg.tuple_size, -1)
        y = None if labels is None else torch.from_numpy(labels).to(self.device)
        if y is None:
            loss = self.criterion(*emb)
        else:
            loss = self.criterion(emb[0], emb[1], y)
        seen = mean_over_ranks(loss.detach().clone(), self.ddp)  # the global batch's loss
        if not torch.isfinite(seen):
            where = (
                f"the last good checkpoint is {self.last_checkpoint}"
                if self.last_checkpoint
                else "no checkpoint was written yet"
            )
            raise TcdnError(
                f"the loss became {seen.item()} at step {self.step_count + 1}; {where}. Lower --lr or enable gradient clipping."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        found = None
        if diagnose:
            emb = emb.detach()
            found = {
                **embedding_diagnostics(emb, y),
                "hinge_active": hinge_active_share(self.criterion, emb, y),
                **grad_norms(self.model),
            }
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return StepResult(seen.item(), emb.detach(), y, found)

    def step(self, *, diagnose: bool = False) -> StepResult:
        """Draw a batch of tuples, gather and convert its frames, and :meth:`optimize` on it."""
        drawn = self.draw()
        return self.optimize(self.inputs(drawn.indices), drawn.labels, diagnose=diagnose)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The checkpoint of this step (``None`` on ranks other than 0; collective under DDP)."""
        rng = gather(torch.get_rng_state(), self.ddp)
        cuda_rng = (
            gather(torch.cuda.get_rng_state(self.device), self.ddp)
            if self.device.type == "cuda"
            else None
        )
        if not self.ddp.main:
            return None
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "augment_rng": self.aug_gen.get_state(),
            "torch_rng": rng[0],
            "torch_rng_ranks": rng,
            "cuda_rng_ranks": cuda_rng,
            "world_size": self.ddp.world,
            "mean": self.mean,
            "step": self.step_count,
            "videos": [v.name for v in self.frames.videos],
        }

    def save(self, run: Path) -> Path:
        """Write ``run/step_XXXXXXXX.pt`` atomically (rank 0) and keep the last ``keep_last``."""
        path = run / CHECKPOINT_PATTERN.format(self.step_count)
        state = self.state_dict()
        if state is not None:
            atomic_save(state, path)
            for old in list_checkpoints(run)[: -self.cfg.keep_last]:
                old.unlink()
        self.last_checkpoint = path
        return path

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint ``path``; its config must equal this run's but for
        :data:`~tcdn.training.config.RESUMABLE_CHANGES`."""
        ckpt = load_checkpoint(path)
        saved = TrainConfig.from_dict(ckpt["config"]).resolved()
        mine = self.cfg.to_dict()
        differ = {
            k for k, v in saved.to_dict().items() if k not in RESUMABLE_CHANGES and mine[k] != v
        }
        if differ:
            raise TcdnError(
                f"cannot resume {path}: its config differs in {', '.join(sorted(differ))}; "
                f"use the same options (only {', '.join(RESUMABLE_CHANGES)} may change) or another --out"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.sampler.load_state_dict(ckpt["sampler"])
        if "augment_rng" in ckpt:
            self.aug_gen.set_state(ckpt["augment_rng"])
        saved_world = int(ckpt.get("world_size", 1))
        rng_states = ckpt.get("torch_rng_ranks") or [ckpt["torch_rng"]]
        if saved_world == self.ddp.world:
            torch.set_rng_state(rng_states[self.ddp.rank])
        elif self.ddp.main:
            log.warning(
                "%s was written by %d process(es), this run has %d: the tuples continue exactly, "
                "dropout masks do not",
                path,
                saved_world,
                self.ddp.world,
            )
        cuda_states = ckpt.get("cuda_rng_ranks")
        if self.device.type == "cuda" and cuda_states and saved_world == self.ddp.world:
            torch.cuda.set_rng_state(cuda_states[self.ddp.rank], self.device)
        self.mean = np.asarray(ckpt["mean"], dtype=np.float32)
        self._mean_t = torch.as_tensor(self.mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1
        )
        self.step_count = int(ckpt["step"])
        self.last_checkpoint = path
        if self.ddp.main:
            log.info("resuming %s at step %d", path, self.step_count)


# -- the run -------------------------------------------------------------------------------------
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


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TcdnError(
            "tensorboard: true needs the tensorboard package: pip install 'tcdn[tensorboard]' "
            "(or tensorboard), or set tensorboard: false; log.jsonl is written either way"
        ) from None
    return SummaryWriter


def train(
    frames: FrameSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
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
        ``tensorboard/`` with ``tensorboard: true``) go here.
    resume
        Continue from the last checkpoint in ``out_dir`` (its config must match ``config``
        except in :data:`~tcdn.training.config.RESUMABLE_CHANGES`).
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. Under ``torchrun`` on GPUs each rank uses
        ``cuda:LOCAL_RANK``.
    progress
        Show a progress bar (rank 0 only).
    """
    cfg = config.resolved()
    dev = resolve_device(device)
    run = Path(out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    existing = list_checkpoints(run)
    if existing and not resume:
        raise TcdnError(
            f"{run} already holds checkpoints (last: {existing[-1].name}): pass --resume to continue that run, "
            "or choose another --out"
        )
    if frames.frames.shape[1] != cfg.image_size or frames.frames.shape[2] != cfg.image_size:
        raise TcdnError(
            f"frames are {frames.frames.shape[2]}x{frames.frames.shape[1]} but the config asks for image_size="
            f"{cfg.image_size}: decode the videos at that size"
        )
    if cfg.compile:
        _check_compiler(dev)
    if cfg.tensorboard:
        _summary_writer_class()  # every rank fails alike, before any collective call
    if cfg.bf16 and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TcdnError("bf16: true but this GPU has no bfloat16 support: set bf16: false")
    assert cfg.batch_size is not None  # resolved
    shard_rows(cfg.batch_size, 0, max(env_int("WORLD_SIZE", 1), 1))  # an uneven split fails first
    with distributed(dev) as ddp:
        if ddp.world > 1 and dev.type == "cuda":
            dev = torch.device("cuda", ddp.local_rank)
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(cfg.seed)
            if ddp.main:
                run.mkdir(parents=True, exist_ok=True)
            trainer = Trainer(frames, cfg, dev, ddp)
            if resume and existing:
                trainer.restore(existing[-1])
            return _run(trainer, run, progress)


def _run(trainer: Trainer, run: Path, progress: bool) -> Path:
    """Step ``trainer`` to ``steps``, logging every ``log_every`` steps and saving checkpoints."""
    cfg, ddp = trainer.cfg, trainer.ddp
    if ddp.main:
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if trainer.step_count >= cfg.steps:
        if ddp.main:
            log.info("%s is already at step %d >= %d steps", run, trainer.step_count, cfg.steps)
        return trainer.last_checkpoint or trainer.save(run)

    trainer.model.train()
    writer = (
        _summary_writer_class()(log_dir=str(run / "tensorboard"))
        if cfg.tensorboard and ddp.main
        else None
    )
    bar = tqdm(
        total=cfg.steps,
        initial=trainer.step_count,
        desc=f"training {cfg.loss}",
        unit="step",
        disable=not progress or not ddp.main,
    )
    log_fh = (run / "log.jsonl").open("a") if ddp.main else None
    monitor = _Monitor(trainer.batch)
    try:
        while trainer.step_count < cfg.steps:
            step = trainer.step_count + 1
            logs = ddp.main and (step % cfg.log_every == 0 or step == cfg.steps)
            result = trainer.step(diagnose=logs)
            bar.update(1)
            monitor.count()
            if logs:
                rec = monitor.record(step, result, float(trainer.scheduler.get_last_lr()[0]))
                bar.set_postfix(loss=f"{rec['loss']:.4f}", tuples_s=f"{rec['tuples_per_s']:.0f}")
                assert log_fh is not None
                log_fh.write(json.dumps(rec) + "\n")
                log_fh.flush()
                if writer is not None:
                    for name, value in rec.items():
                        if name != "step":
                            writer.add_scalar(f"train/{name}", value, step)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                trainer.save(run)
    finally:
        bar.close()
        if log_fh is not None:
            log_fh.close()
        if writer is not None:
            writer.close()
    barrier(ddp)  # every rank returns once rank 0 has written the last checkpoint
    last = trainer.last_checkpoint
    assert last is not None
    if ddp.main:
        log.info("finished %d steps; checkpoint %s", trainer.step_count, last)
    return last


class _Monitor:
    """The log record of a step: loss, learning rate, the step's diagnostics and the throughput
    since the last record; warns once when the embeddings have collapsed."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.t0, self.tuples = time.perf_counter(), 0
        self.warned: set[str] = set()

    def count(self) -> None:
        self.tuples += self.batch

    def record(self, step: int, result: StepResult, lr: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        rate = self.tuples / elapsed if elapsed > 0 else float("nan")
        found = result.diagnostics or embedding_diagnostics(result.embeddings, result.labels)
        self._warn(step, result.loss, found)
        self.t0, self.tuples = time.perf_counter(), 0
        return {"step": step, "loss": result.loss, "lr": lr, **found, "tuples_per_s": rate}

    def _warn(self, step: int, loss: float, found: dict[str, float]) -> None:
        # Spread 0 means the network maps every frame to one point, the trivial minimum of Lq
        # (loss = margin) and of Ls positives; a relative spread near 0 means every frame points
        # nearly the same way, which is all an L2-normalised loss sees.
        if found["embedding_spread"] < COLLAPSE_SPREAD and "point" not in self.warned:
            log.warning(
                "step %d: the embeddings have collapsed to one point (spread %.2g, loss %.4f): the "
                "network has stopped learning; lower the learning rate or try normalize: true",
                step,
                found["embedding_spread"],
                loss,
            )
            self.warned.add("point")
        elif found["relative_spread"] < DIRECTION_COLLAPSE and "direction" not in self.warned:
            log.warning(
                "step %d: the embeddings point nearly one way (relative spread %.3f, about 1 for "
                "unit vectors spread over every dimension): the loss sees little but noise and the "
                "features may learn little; a BatchNorm backbone starts spread out",
                step,
                found["relative_spread"],
            )
            self.warned.add("direction")
