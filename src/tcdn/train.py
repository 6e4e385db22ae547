"""Training a temporal-coherence network on a :class:`~tcdn.data.FrameSet` (SPEC §2-§4).

One mechanism for every loss: the sampler returns a ``(B, k)`` array of frame indices, the
``B * k`` frames go through the network in **one** forward pass (all branches share the
weights), and the loss sees the ``k`` slices of the embedding.

Checkpoints are written atomically (temporary file, then rename) and hold the config, model,
optimiser, schedule, sampler and augmentation generator states, the torch RNG and the step, so
``resume`` continues exactly where a run stopped.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on GPUs, gloo on CPUs). Every rank
draws the *global* batch of tuples (and of augmentation parameters) from the shared seed and
trains on its own block of rows (:func:`tcdn.data.samplers.shard_rows`): a run on ``W``
processes sees exactly the tuples of a one-process run with the same ``batch_size``, and, as DDP
averages the ranks' gradients of their local means, takes the same steps up to floating-point
summation order (dropout masks aside: each rank draws its own). Rank 0 alone writes checkpoints,
logs and TensorBoard events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from tqdm.auto import tqdm

from tcdn.augment import AppearanceAugment
from tcdn.data.samplers import (
    PairSampler,
    QuadrupletSampler,
    SFAPairSampler,
    TripletSampler,
    shard_rows,
)
from tcdn.data.video import FrameSet
from tcdn.errors import TcdnError
from tcdn.losses import ContrastiveLoss, QuadrupletLoss, RankingLoss, SiameseLoss
from tcdn.models import MODELS, Backbone, build_model

log = logging.getLogger(__name__)

LOSSES = ("lq", "ls", "sfa", "ld")
SCHEDULES = ("step", "cosine")
AUGMENTS = ("none", "appearance")
#: per loss: frames per tuple, embedding size (fc7), tuples per step, margin
LOSS_DEFAULTS: dict[str, tuple[int, int, int, float]] = {
    "lq": (4, 1024, 40, 0.5),  # SPEC §1-§3: 40 quadruplets, α = 0.5, fc7 1024
    "ls": (2, 4096, 120, 1.0),  # 120 pairs, δ = 1, fc7 4096
    "sfa": (2, 4096, 120, 1.0),  # pairs like Ls; m = 1 (Hadsell et al.; the paper gives none)
    # Ld: 40 triplets, the same number of queries per step as Lq (Table 6 compares the two);
    # 1024-d like Lq and Wang & Gupta's embedding; M = 0.5 (SPEC §1)
    "ld": (3, 1024, 40, 0.5),
}
#: options that may change when a run is resumed: they do not change what is learned
RESUMABLE_CHANGES = (
    "steps",
    "threads",
    "log_every",
    "checkpoint_every",
    "keep_last",
    "tensorboard",
    "compile",
)
CHECKPOINT_PATTERN = "step_{:08d}.pt"
COLLAPSE_SPREAD = (
    1e-6  # mean per-dimension std of a batch's embeddings below which they have collapsed
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved inside every checkpoint.

    The defaults are the paper's Lq configuration (SPEC §3-§4) with the release's solver.
    Loss-dependent defaults (``None`` here) are filled in by :meth:`resolved` from
    :data:`LOSS_DEFAULTS`.
    """

    loss: str = "lq"  # lq | ls | sfa | ld
    model: str = "alexnet"
    embed_dim: int | None = None  # fc7: 1024 for lq and ld, 4096 for ls and sfa
    model_options: dict[str, Any] = field(default_factory=dict)
    image_size: int = 227
    steps: int = 30000
    batch_size: int | None = None  # tuples per step (global): 40 (lq, ld), 120 pairs (ls, sfa)
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.005
    schedule: str = "step"  # step: x lr_gamma every lr_step steps; cosine: to 0 at `steps`
    lr_step: int = 10000  # multiply the learning rate by lr_gamma every lr_step steps
    lr_gamma: float = 0.1
    warmup: int = 0  # steps of linear warm-up from lr / warmup (either schedule)
    grad_clip: float | None = 5.0
    margin: float | None = None  # 0.5 (lq, ld) or 1.0 (ls, sfa)
    window: int = 1  # w: offset of the positive frame
    far: int = 20  # n: offset of the far frame (lq); least distance of an sfa negative
    negative_share: float = 0.5  # share of negative pairs (ls, sfa)
    squared: bool = False  # lq, ls
    normalize: bool = False  # lq, ls, sfa (ld is a cosine distance already)
    mu: bool = False
    augment: str = "none"  # none | appearance: per-frame flip, crop and colour (tcdn.augment)
    aug_flip: float = 0.5
    aug_crop_scale: float = 0.6
    aug_brightness: float = 0.4
    aug_contrast: float = 0.4
    aug_saturation: float = 0.4
    aug_grey: float = 0.2
    bf16: bool = False  # bfloat16 autocast of the forward pass (the loss stays float32)
    # NHWC activations: the same results to rounding, about 7% faster for AlexNet at 227x227 and
    # 64x64 on the 2-core CPU (benchmarks/bench_step.py), and the layout torch.compile needs.
    channels_last: bool = True
    compile: bool = (
        False  # torch.compile the network (needs a C compiler on CPU, and channels_last)
    )
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    seed: int = 0
    checkpoint_every: int = 1000
    keep_last: int = 3
    log_every: int = 10
    threads: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), str(f.type)))
        self.validate()

    @property
    def tuple_size(self) -> int:
        return LOSS_DEFAULTS[self.loss][0]

    def resolved(self) -> TrainConfig:
        """A copy with the loss-dependent defaults filled in."""
        _, embed_dim, batch, margin = LOSS_DEFAULTS[self.loss]
        return dataclasses.replace(
            self,
            embed_dim=self.embed_dim or embed_dim,
            batch_size=self.batch_size or batch,
            margin=self.margin if self.margin is not None else margin,
        )

    def augmenter(self) -> AppearanceAugment | None:
        """The augmentation this config asks for, or ``None``."""
        if self.augment == "none":
            return None
        return AppearanceAugment(
            flip=self.aug_flip,
            crop_scale=self.aug_crop_scale,
            brightness=self.aug_brightness,
            contrast=self.aug_contrast,
            saturation=self.aug_saturation,
            grey=self.aug_grey,
        )

    def validate(self) -> None:
        def need(ok: bool, option: str, what: str) -> None:
            if not ok:
                raise TcdnError(
                    f"invalid training option {option}={getattr(self, option)!r}: {what}"
                )

        need(self.loss in LOSSES, "loss", f"choose one of {', '.join(LOSSES)}")
        need(self.model in MODELS, "model", f"choose one of {', '.join(sorted(MODELS))}")
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.batch_size is None or self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.embed_dim is None or self.embed_dim >= 1, "embed_dim", "must be >= 1")
        need(self.image_size >= 32, "image_size", "must be >= 32 pixels")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "must be a positive number")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.schedule in SCHEDULES, "schedule", f"choose one of {', '.join(SCHEDULES)}")
        need(self.lr_step >= 1, "lr_step", "must be >= 1")
        need(self.warmup >= 0, "warmup", "must be >= 0")
        need(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
        need(
            self.grad_clip is None or self.grad_clip > 0,
            "grad_clip",
            "must be > 0 (or null to disable)",
        )
        need(self.margin is None or self.margin > 0, "margin", "must be > 0")
        need(self.window >= 1, "window", "must be >= 1")
        need(self.far > self.window, "far", "must be larger than window")
        need(0 <= self.negative_share <= 1, "negative_share", "must be in [0, 1]")
        need(self.augment in AUGMENTS, "augment", f"choose one of {', '.join(AUGMENTS)}")
        for name in ("aug_flip", "aug_brightness", "aug_contrast", "aug_saturation", "aug_grey"):
            need(0 <= getattr(self, name) <= 1, name, "must be in [0, 1]")
        need(0 < self.aug_crop_scale <= 1, "aug_crop_scale", "must be in (0, 1]")
        need(
            not self.compile or self.channels_last,
            "compile",
            "needs channels_last: true (torch 2.13's compiled CPU kernels return zero gradients "
            "for conv -> ReLU -> max-pool in the default NCHW layout, so the convolutions would "
            "never train)",
        )
        need(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        need(self.keep_last >= 1, "keep_last", "must be >= 1")
        need(self.log_every >= 1, "log_every", "must be >= 1")
        need(
            self.threads is None or self.threads >= 1,
            "threads",
            "must be >= 1 (or null for torch's choice)",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from plain values (e.g. YAML), converting numbers written as text."""
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise TcdnError(
                f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
            )
        return cls(**{k: _coerce(k, v, fields[k]) for k, v in data.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TcdnError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise TcdnError(f"config file {path} must hold a mapping of option: value")
        return cls.from_dict(data)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` (values read as YAML) -> ``{key: value}``, for ``tcdn train --set``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise TcdnError(f"--set {item!r}: write option=value, e.g. --set lr=0.01")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TcdnError(f"--set {item!r}: cannot read the value as YAML ({exc})") from None
    return out


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Check ``value`` against a field's annotation; accept numbers written as text (YAML reads
    ``1e-3`` as a string) and whole floats for integers. Raise :class:`TcdnError` otherwise."""
    if value is None and "None" in annotation:
        return None
    base = annotation.split("|")[0].strip()
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if base == "int":
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, int | float) or number != int(number):
                raise ValueError
            return int(number)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if base.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError, OverflowError):
        raise TcdnError(
            f"invalid training option {name}={value!r}: expected {annotation}"
        ) from None
    return value


# -- frames -> tensors ---------------------------------------------------------------------------
def channel_mean(frames: np.ndarray, max_frames: int = 10000, seed: int = 0) -> np.ndarray:
    """Per-channel mean (0-255) of up to ``max_frames`` frames: the mean subtracted from every input."""
    idx = np.arange(len(frames))
    if len(idx) > max_frames:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_frames, replace=False))
    return frames[idx].reshape(-1, 3).mean(axis=0, dtype=np.float64).astype(np.float32)


def to_input(
    frames: np.ndarray, mean: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32, mean subtracted, scaled to about [-0.5, 0.5]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    x = x.permute(0, 3, 1, 2).float()
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - m) / 255.0


# -- checkpoints ---------------------------------------------------------------------------------
def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def list_checkpoints(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("step_*.pt"))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        ckpts = list_checkpoints(path)
        if not ckpts:
            raise TcdnError(f"no checkpoint (step_*.pt) in {path}: train first with `tcdn train`")
        path = ckpts[-1]
    if not path.is_file():
        raise TcdnError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise TcdnError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise TcdnError(f"{path} is not a tcdn checkpoint")
    ckpt["path"] = str(path)
    return ckpt


def model_from_config(cfg: TrainConfig, check_input: bool = False) -> Backbone:
    """The network a config describes; with ``check_input``, also check it accepts ``image_size`` frames."""
    cfg = cfg.resolved()
    try:
        model = build_model(cfg.model, embed_dim=cfg.embed_dim, **cfg.model_options)
    except TypeError as exc:
        raise TcdnError(
            f"invalid model_options {cfg.model_options} for model {cfg.model!r}: {exc}"
        ) from None
    if check_input:
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(1, 3, cfg.image_size, cfg.image_size))
        except RuntimeError as exc:
            raise TcdnError(
                f"image_size={cfg.image_size} is too small for model {cfg.model!r} ({exc}); use larger frames"
            ) from None
        model.train()
    return model


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Backbone, np.ndarray, TrainConfig]:
    """The trained network, its input mean and its config."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = model_from_config(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, np.asarray(ckpt["mean"], dtype=np.float32), cfg


# -- the loop ------------------------------------------------------------------------------------
Sampler = QuadrupletSampler | PairSampler | SFAPairSampler | TripletSampler


def _make_sampler(cfg: TrainConfig, frames: FrameSet) -> Sampler:
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


def _make_criterion(cfg: TrainConfig) -> nn.Module:
    margin = cfg.margin if cfg.margin is not None else LOSS_DEFAULTS[cfg.loss][3]
    if cfg.loss == "lq":
        return QuadrupletLoss(margin, squared=cfg.squared, normalize=cfg.normalize)
    if cfg.loss == "ls":
        return SiameseLoss(margin, squared=cfg.squared, normalize=cfg.normalize)
    if cfg.loss == "sfa":
        return ContrastiveLoss(margin, normalize=cfg.normalize)
    return RankingLoss(margin)


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
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


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N`` -> a device; unavailable CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise TcdnError(f"--device must be cpu, cuda, cuda:N or auto, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TcdnError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise TcdnError(f"--device {name!r}: {exc}") from None


@dataclass(frozen=True)
class _Dist:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 outside one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call initialised the process group (and destroys it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise TcdnError(
            f"environment variable {name}={text!r} is not a whole number (set by torchrun)"
        ) from None


@contextmanager
def _distributed(device: torch.device) -> Iterator[_Dist]:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        yield _Dist()
        return
    local_rank = _env_int("LOCAL_RANK", 0)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    try:
        yield _Dist(dist.get_rank(), dist.get_world_size(), local_rank, owns)
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


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
        except in :data:`RESUMABLE_CHANGES`).
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
    world = _env_int("WORLD_SIZE", 1)
    shard_rows(cfg.batch_size or 1, 0, max(world, 1))  # an uneven split fails before any work
    with _distributed(dev) as ddp:
        if ddp.world > 1 and dev.type == "cuda":
            dev = torch.device("cuda", ddp.local_rank)
        return _train(frames, cfg, run, existing, resume, dev, progress, ddp)


def _train(
    frames: FrameSet,
    cfg: TrainConfig,
    run: Path,
    existing: list[Path],
    resume: bool,
    dev: torch.device,
    progress: bool,
    ddp: _Dist,
) -> Path:
    if ddp.main:
        run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = model_from_config(cfg, check_input=True).to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if ddp.rank > 0:
        # Same initial weights on every rank (seeded above; DDP also broadcasts rank 0's), but
        # each rank's own stream for dropout.
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, ddp.rank]).generate_state(1)[0]))
    sampler = _make_sampler(cfg, frames)
    criterion = _make_criterion(cfg)
    augment = cfg.augmenter()
    aug_gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence([cfg.seed, 2]).generate_state(1)[0])
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    mean = channel_mean(frames.frames, seed=cfg.seed)
    step = 0

    if resume and existing:
        ckpt = load_checkpoint(existing[-1])
        saved = TrainConfig.from_dict(ckpt["config"]).resolved()
        differ = {
            k
            for k, v in saved.to_dict().items()
            if k not in RESUMABLE_CHANGES and cfg.to_dict()[k] != v
        }
        if differ:
            raise TcdnError(
                f"cannot resume {existing[-1]}: its config differs in {', '.join(sorted(differ))}; "
                f"use the same options (only {', '.join(RESUMABLE_CHANGES)} may change) or another --out"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        sampler.load_state_dict(ckpt["sampler"])
        if "augment_rng" in ckpt:
            aug_gen.set_state(ckpt["augment_rng"])
        saved_world = int(ckpt.get("world_size", 1))
        rng_states = ckpt.get("torch_rng_ranks") or [ckpt["torch_rng"]]
        if saved_world == ddp.world:
            torch.set_rng_state(rng_states[ddp.rank])
        elif ddp.main:
            log.warning(
                "%s was written by %d process(es), this run has %d: the tuples continue exactly, "
                "dropout masks do not",
                existing[-1],
                saved_world,
                ddp.world,
            )
        cuda_states = ckpt.get("cuda_rng_ranks")
        if dev.type == "cuda" and cuda_states and saved_world == ddp.world:
            torch.cuda.set_rng_state(cuda_states[ddp.rank], dev)
        mean = np.asarray(ckpt["mean"], dtype=np.float32)
        step = int(ckpt["step"])
        if ddp.main:
            log.info("resuming %s at step %d", existing[-1], step)
    if ddp.main:
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    net: nn.Module = model
    if ddp.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]

    def gather(state: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of ``state`` (collective: all ranks call it together)."""
        if ddp.world == 1:
            return [state]
        states: list[Any] = [None] * ddp.world
        dist.all_gather_object(states, state)
        return states

    def save(at_step: int) -> Path:
        path = run / CHECKPOINT_PATTERN.format(at_step)
        rng = gather(torch.get_rng_state())
        cuda_rng = gather(torch.cuda.get_rng_state(dev)) if dev.type == "cuda" else None
        if ddp.main:
            state = {
                "format": "tcdn-checkpoint-1",
                "config": cfg.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "sampler": sampler.state_dict(),
                "augment_rng": aug_gen.get_state(),
                "torch_rng": rng[0],
                "torch_rng_ranks": rng,
                "cuda_rng_ranks": cuda_rng,
                "world_size": ddp.world,
                "mean": mean,
                "step": at_step,
                "videos": [v.name for v in frames.videos],
            }
            atomic_save(state, path)
            for old in list_checkpoints(run)[: -cfg.keep_last]:
                old.unlink()
        return path

    last = existing[-1] if existing else None
    if step >= cfg.steps:
        if ddp.main:
            log.info("%s is already at step %d >= %d steps", run, step, cfg.steps)
        return last if last is not None else save(step)

    model.train()
    k = cfg.tuple_size
    batch = cfg.batch_size or 1  # global tuples per step
    rows = shard_rows(batch, ddp.rank, ddp.world)
    # Augmentation parameters of this rank's frames among the global batch's k * batch frames,
    # which are laid out column-major (all queries, then all positives, ...).
    aug_rows = (
        torch.arange(k)[:, None] * batch + torch.arange(rows.start, rows.stop)[None, :]
    ).reshape(-1)
    local = rows.stop - rows.start
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=dev).view(1, 3, 1, 1)
    writer = (
        _summary_writer_class()(log_dir=str(run / "tensorboard"))
        if cfg.tensorboard and ddp.main
        else None
    )
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"training {cfg.loss}",
        unit="step",
        disable=not progress or not ddp.main,
    )
    t0, tuples_since = time.perf_counter(), 0
    warned_collapse = False

    def inputs(idx: np.ndarray) -> torch.Tensor:
        # Column-major gather: the first rows are all the queries, then all the positives, ...
        chosen = frames.frames[idx.T.reshape(-1)]
        if augment is None:
            x = to_input(chosen, mean, dev)
        else:
            params = augment.sample_params(k * batch, aug_gen)[aug_rows]
            x = torch.from_numpy(np.ascontiguousarray(chosen)).to(dev).permute(0, 3, 1, 2)
            x = augment.apply_params(x.float() / 255.0, params) - mean_t / 255.0
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    log_fh = (run / "log.jsonl").open("a") if ddp.main else None
    try:
        while step < cfg.steps:
            drawn = sampler.sample(batch)
            y: torch.Tensor | None = None
            if isinstance(drawn, tuple):
                idx, y_np = drawn[0][rows], drawn[1][rows]
                y = torch.from_numpy(y_np).to(dev)
            else:
                idx = drawn[rows]
            x = inputs(idx)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                out = net(x)
            emb = out.float().view(k, local, -1)
            loss = criterion(*emb) if y is None else criterion(emb[0], emb[1], y)
            seen = loss.detach().clone()
            if ddp.world > 1:  # the global batch's loss, for logs and for every rank's check
                dist.all_reduce(seen)
                seen /= ddp.world
            if not torch.isfinite(seen):
                where = (
                    f"the last good checkpoint is {last}"
                    if last
                    else "no checkpoint was written yet"
                )
                raise TcdnError(
                    f"the loss became {seen.item()} at step {step + 1}; {where}. Lower --lr or enable gradient clipping."
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            step += 1
            tuples_since += batch
            bar.update(1)
            if ddp.main and (step % cfg.log_every == 0 or step == cfg.steps):
                elapsed = time.perf_counter() - t0
                rate = tuples_since / elapsed if elapsed > 0 else float("nan")
                # Spread of the embeddings over the batch: 0 means the network maps every frame to
                # one point, the trivial minimum of Lq (loss = margin) and of Ls positives.
                spread = emb.detach().flatten(0, 1).std(dim=0).mean().item()
                if spread < COLLAPSE_SPREAD and not warned_collapse:
                    log.warning(
                        "step %d: the embeddings have collapsed to one point (spread %.2g, loss %.4f): the "
                        "network has stopped learning; lower the learning rate or try normalize: true",
                        step,
                        spread,
                        seen.item(),
                    )
                    warned_collapse = True
                bar.set_postfix(loss=f"{seen.item():.4f}", tuples_s=f"{rate:.0f}")
                rec = {
                    "step": step,
                    "loss": seen.item(),
                    "lr": scheduler.get_last_lr()[0],
                    "embedding_spread": spread,
                    "tuples_per_s": rate,
                }
                assert log_fh is not None
                log_fh.write(json.dumps(rec) + "\n")
                log_fh.flush()
                if writer is not None:
                    for name in ("loss", "lr", "embedding_spread", "tuples_per_s"):
                        writer.add_scalar(f"train/{name}", rec[name], step)
                t0, tuples_since = time.perf_counter(), 0
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                last = save(step)
    finally:
        bar.close()
        if log_fh is not None:
            log_fh.close()
        if writer is not None:
            writer.close()
    if ddp.world > 1:
        dist.barrier()  # every rank returns once rank 0 has written the last checkpoint
    assert last is not None
    if ddp.main:
        log.info("finished %d steps; checkpoint %s", step, last)
    return last
