"""One training step of a temporal-coherence network on a :class:`~tcdn.data.FrameSet` (SPEC §2-§4).

One mechanism for every loss: the sampler returns a :class:`~tcdn.data.samplers.Tuples` of
``(B, k)`` frame indices, the ``B * k`` frames go through the network in **one** forward pass
(all branches share the weights), and the loss sees the ``k`` slices of the embedding.

:class:`Trainer` holds one run's state and takes one step at a time (the benchmarks time that
same step). What it saves and restores is :mod:`tcdn.training.state`; the run around it (steps,
logs, checkpoints, interruptions) is :mod:`tcdn.training.run`.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on GPUs, gloo on CPUs). Every rank
draws the *global* batch of tuples (and of augmentation parameters) from the shared seed and
trains on its own block of rows (:func:`tcdn.data.samplers.shard_rows`): a run on ``W``
processes sees exactly the tuples of a one-process run with the same ``batch_size``, and, as DDP
averages the ranks' gradients of their local means, takes the same steps up to floating-point
summation order (dropout masks aside: each rank draws its own).

Randomness: the network's initialisation and dropout draw from torch's RNG, which
:func:`tcdn.training.run.train` seeds inside :func:`torch.random.fork_rng`; the sampler and the
augmentation own seeded generators.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tcdn.data.frameset import FrameSet
from tcdn.data.samplers import (
    PairSampler,
    QuadrupletSampler,
    SFAPairSampler,
    TripletSampler,
    Tuples,
    shard_rows,
)
from tcdn.errors import TcdnError
from tcdn.losses import (
    ContrastiveLoss,
    QuadrupletLoss,
    RankingLoss,
    SiameseLoss,
    TemporalInfoNCELoss,
)
from tcdn.models.input import InputTransform, channel_mean, successor_rows, to_input
from tcdn.training import state
from tcdn.training.config import LOSS_DEFAULTS, TrainConfig
from tcdn.training.diagnostics import embedding_diagnostics, grad_norms, hinge_active_share
from tcdn.training.distributed import Dist, mean_over_ranks
from tcdn.training.precision import CHECK_STEPS, choose_precision

log = logging.getLogger(__name__)

Sampler = QuadrupletSampler | PairSampler | SFAPairSampler | TripletSampler


def make_sampler(cfg: TrainConfig, frames: FrameSet) -> Sampler:
    """The tuple sampler of ``cfg.loss`` over the videos of ``frames``, seeded by ``cfg.seed``."""
    names = [v.name for v in frames.videos]
    common: dict[str, Any] = {"window": cfg.window, "seed": cfg.seed, "mu": cfg.mu, "names": names}
    if cfg.loss in ("lq", "nce"):
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
    if cfg.loss == "nce":
        return TemporalInfoNCELoss(
            cfg.temperature, far_positive=cfg.far_positive, cross_stream=cfg.cross_stream
        )
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
        #: the input of ``input_norm`` / ``motion`` (``None``: the paper's, :func:`to_input`)
        self.transform: InputTransform | None = None
        if not cfg.plain_input:
            self.transform = InputTransform.fit(
                frames.frames, frames.offsets, norm=cfg.input_norm, motion=cfg.motion, seed=cfg.seed
            )
        self.next_row, self.sign = successor_rows(frames.offsets)
        self.video_of = frames.video_index
        self.step_count = 0
        self.last_checkpoint: Path | None = None
        #: bfloat16 autocast of the forward pass; ``precision: auto`` is settled by
        #: :meth:`settle_precision`
        self.use_bf16 = cfg.asked_precision == "bf16"
        self.precision_reason = "asked for"
        #: the precision of the checkpoint this run continues (``precision: auto`` keeps it)
        self.resumed_precision: str | None = None

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
        rows = indices.T.reshape(-1)
        chosen = self.frames.frames[rows]
        params = None
        if self.augment is not None:
            k = self.cfg.tuple_size
            params = self.augment.sample_params(k * self.batch, self.aug_gen)[self._aug_rows]
        if self.transform is not None:
            after = (
                self.frames.frames[self.next_row[rows]] if self.transform.needs_successor else None
            )
            x = self.transform(
                chosen,
                after,
                self.sign[rows],
                device=self.device,
                augment=self.augment,
                params=params,
            )
        elif self.augment is None or params is None:
            x = to_input(chosen, self.mean, self.device)
        else:
            x = torch.from_numpy(np.ascontiguousarray(chosen)).to(self.device).permute(0, 3, 1, 2)
            x = self.augment.apply_params(x.float() / 255.0, params) - self._mean_t / 255.0
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def optimize(
        self,
        x: torch.Tensor,
        labels: np.ndarray | None = None,
        *,
        videos: np.ndarray | None = None,
        diagnose: bool = False,
    ) -> StepResult:
        """Forward ``x`` (``k`` slices of ``B`` frames), the loss (with pair ``labels`` for Ls and
        SFA, the ``(k B,)`` ``videos`` of the frames for temporal InfoNCE), backward, clip and one
        optimiser and schedule step; with ``diagnose``, also the diagnostics of
        :mod:`tcdn.training.diagnostics` (the gradient norms before clipping)."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16):
            out = self.net(x)
        emb = out.float().view(cfg.tuple_size, len(x) // cfg.tuple_size, -1)
        y = None if labels is None else torch.from_numpy(labels).to(self.device)
        v = None
        if cfg.loss == "nce":
            if videos is None:
                raise ValueError("loss nce needs the video of every frame (videos=...)")
            v = torch.from_numpy(np.asarray(videos, dtype=np.int64)).to(self.device)
            loss = self.criterion(*emb, v)
        elif y is None:
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
            fix = (
                f"lower --lr (gradient clipping at norm {cfg.grad_clip:g} is already on)"
                if cfg.grad_clip
                else "lower --lr, or set grad_clip (e.g. --set grad_clip=5)"
            )
            raise TcdnError(
                f"the loss became {seen.item()} at step {self.step_count + 1}; {where}: {fix}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        found = None
        if diagnose:
            emb = emb.detach()
            found = {
                **embedding_diagnostics(emb, y),
                "hinge_active": hinge_active_share(self.criterion, emb, y, v),
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
        videos = self.video_of[drawn.indices.T.reshape(-1)]
        return self.optimize(
            self.inputs(drawn.indices), drawn.labels, videos=videos, diagnose=diagnose
        )

    # -- what is saved (tcdn.training.state) --------------------------------------------------
    def state_dict(self) -> dict[str, Any] | None:
        """The checkpoint of this step (``None`` on ranks other than 0; collective under DDP):
        :func:`tcdn.training.state.trainer_state`."""
        return state.trainer_state(self)

    def save(self, run: Path) -> Path:
        """Write ``run/step_XXXXXXXX.pt`` atomically (rank 0) and keep the last ``keep_last``:
        :func:`tcdn.training.state.save_trainer`."""
        return state.save_trainer(self, run)

    def restore(self, checkpoint: Path | dict[str, Any]) -> None:
        """Continue from a checkpoint (a path or a loaded dict): :func:`tcdn.training.state.restore_trainer`."""
        state.restore_trainer(self, checkpoint)

    def set_mean(self, mean: np.ndarray) -> None:
        """The per-channel mean subtracted from the frames (restored from a checkpoint)."""
        self.mean = mean
        self._mean_t = torch.as_tensor(mean, dtype=torch.float32, device=self.device).view(
            1, 3, 1, 1
        )

    # -- precision -----------------------------------------------------------------------------
    def settle_precision(self) -> None:
        """Decide ``precision: auto`` (:func:`~tcdn.training.precision.choose_precision`); every
        rank decides alike (the check uses the global batch)."""
        asked = self.cfg.asked_precision
        if asked == "auto" and self.ddp.world > 1:
            chosen, why = choose_precision(asked, self.device, lambda: ([1.0], [1.0]))
            if chosen == "bf16":  # the check is not collective: be safe under DDP
                chosen, why = "fp32", "auto under several processes picks fp32"
        else:
            chosen, why = choose_precision(
                asked, self.device, self.compare_precisions, resumed=self.resumed_precision
            )
        self.use_bf16, self.precision_reason = chosen == "bf16", why

    def compare_precisions(self, steps: int = CHECK_STEPS) -> tuple[list[float], list[float]]:
        """The losses of ``steps`` steps in fp32 and in bf16 from this same state; the state
        (weights, optimiser, schedule, sampler, augmentation and RNGs) is left as it was."""
        import copy

        saved: dict[str, Any] = {
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()),
            "sampler": copy.deepcopy(self.sampler.state_dict()),
            "aug": self.aug_gen.get_state(),
            "step": self.step_count,
            "bf16": self.use_bf16,
        }
        curves: list[list[float]] = []
        for bf16 in (False, True):
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                self.use_bf16 = bf16
                curves.append([self.step().loss for _ in range(steps)])
            # copies each time: load_state_dict may keep the very tensors it is given (the
            # optimiser's momentum), which the next steps would then change in ``saved``
            self.model.load_state_dict(copy.deepcopy(saved["model"]))
            self.optimizer.load_state_dict(copy.deepcopy(saved["optimizer"]))
            self.scheduler.load_state_dict(copy.deepcopy(saved["scheduler"]))
            self.sampler.load_state_dict(copy.deepcopy(saved["sampler"]))
            self.aug_gen.set_state(saved["aug"])
            self.step_count = saved["step"]
        self.use_bf16 = saved["bf16"]
        return curves[0], curves[1]
