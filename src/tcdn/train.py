"""Training a temporal-coherence network on a :class:`~tcdn.data.FrameSet` (SPEC §2-§4).

One mechanism for every loss: the sampler returns a ``(B, k)`` array of frame indices, the
``B * k`` frames go through the network in **one** forward pass (all branches share the
weights), and the loss sees the ``k`` slices of the embedding.

Checkpoints are written atomically (temporary file, then rename) and hold the config, model,
optimiser, schedule, sampler state and step, so ``resume`` continues exactly where a run stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm.auto import tqdm

from tcdn.data.samplers import PairSampler, QuadrupletSampler
from tcdn.data.video import FrameSet
from tcdn.errors import TcdnError
from tcdn.losses import QuadrupletLoss, SiameseLoss
from tcdn.models import MODELS, build_model

log = logging.getLogger(__name__)

LOSSES = ("lq", "ls")
CHECKPOINT_PATTERN = "step_{:08d}.pt"
COLLAPSE_SPREAD = (
    1e-6  # mean per-dimension std of a batch's embeddings below which they have collapsed
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved inside every checkpoint.

    The defaults are the paper's Lq configuration (SPEC §3-§4) with the release's solver.
    """

    loss: str = "lq"
    model: str = "alexnet"
    embed_dim: int | None = None  # fc7: 1024 for lq, 4096 for ls
    model_options: dict[str, Any] = field(default_factory=dict)
    image_size: int = 227
    steps: int = 30000
    batch_size: int | None = None  # tuples per step: 40 quadruplets (lq), 120 pairs (ls)
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.005
    lr_step: int = 10000  # multiply the learning rate by lr_gamma every lr_step steps
    lr_gamma: float = 0.1
    grad_clip: float | None = 5.0
    margin: float | None = None  # 0.5 (lq) or 1.0 (ls)
    window: int = 1  # w: offset of the positive frame
    far: int = 20  # n: offset of the far frame (lq)
    negative_share: float = 0.5  # share of negative pairs (ls)
    squared: bool = False
    normalize: bool = False
    mu: bool = False
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
        return 4 if self.loss == "lq" else 2

    def resolved(self) -> TrainConfig:
        """A copy with the loss-dependent defaults filled in."""
        lq = self.loss == "lq"
        return dataclasses.replace(
            self,
            embed_dim=self.embed_dim or (1024 if lq else 4096),
            batch_size=self.batch_size or (40 if lq else 120),
            margin=self.margin if self.margin is not None else (0.5 if lq else 1.0),
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
        need(self.lr_step >= 1, "lr_step", "must be >= 1")
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


def model_from_config(cfg: TrainConfig, check_input: bool = False) -> nn.Module:
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


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[nn.Module, np.ndarray, TrainConfig]:
    """The trained network, its input mean and its config."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = model_from_config(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, np.asarray(ckpt["mean"], dtype=np.float32), cfg


# -- the loop ------------------------------------------------------------------------------------
def _make_sampler(cfg: TrainConfig, frames: FrameSet) -> QuadrupletSampler | PairSampler:
    names = [v.name for v in frames.videos]
    if cfg.loss == "lq":
        return QuadrupletSampler(
            frames.lengths, window=cfg.window, far=cfg.far, seed=cfg.seed, mu=cfg.mu, names=names
        )
    return PairSampler(
        frames.lengths,
        window=cfg.window,
        negative_share=cfg.negative_share,
        seed=cfg.seed,
        mu=cfg.mu,
        names=names,
    )


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Step schedule: multiply by ``lr_gamma`` every ``lr_step`` steps."""
    return lambda step: cfg.lr_gamma ** (step // cfg.lr_step)


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
        Run folder: checkpoints ``step_XXXXXXXX.pt``, ``config.yaml`` and ``log.jsonl`` go here.
    resume
        Continue from the last checkpoint in ``out_dir`` (its config must match ``config``).
    """
    cfg = config.resolved()
    run = Path(out_dir)
    run.mkdir(parents=True, exist_ok=True)
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

    torch.manual_seed(cfg.seed)
    model = model_from_config(cfg, check_input=True).to(device)
    sampler = _make_sampler(cfg, frames)
    criterion: nn.Module
    if cfg.loss == "lq":
        criterion = QuadrupletLoss(cfg.margin or 0.5, squared=cfg.squared, normalize=cfg.normalize)
    else:
        criterion = SiameseLoss(cfg.margin or 1.0, squared=cfg.squared, normalize=cfg.normalize)
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
            k for k, v in saved.to_dict().items() if k not in ("steps",) and cfg.to_dict()[k] != v
        }
        if differ:
            raise TcdnError(
                f"cannot resume {existing[-1]}: its config differs in {', '.join(sorted(differ))}; "
                "use the same options (only --steps may change) or another --out"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        sampler.load_state_dict(ckpt["sampler"])
        torch.set_rng_state(ckpt["torch_rng"])
        mean = np.asarray(ckpt["mean"], dtype=np.float32)
        step = int(ckpt["step"])
        log.info("resuming %s at step %d", existing[-1], step)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    def save(at_step: int) -> Path:
        path = run / CHECKPOINT_PATTERN.format(at_step)
        state = {
            "format": "tcdn-checkpoint-1",
            "config": cfg.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
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
        log.info("%s is already at step %d >= %d steps", run, step, cfg.steps)
        return last if last is not None else save(step)

    model.train()
    k = cfg.tuple_size
    batch = cfg.batch_size or 1
    log_path = run / "log.jsonl"
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        desc=f"training {cfg.loss}",
        unit="step",
        disable=not progress,
    )
    t0, tuples_since = time.perf_counter(), 0
    warned_collapse = False
    with log_path.open("a") as log_fh:
        while step < cfg.steps:
            y: torch.Tensor | None = None
            if isinstance(sampler, QuadrupletSampler):
                idx = sampler.sample(batch)
            else:
                idx, y_np = sampler.sample(batch)
                y = torch.from_numpy(y_np).to(device)
            # Column-major gather: the first B rows are all the queries, then all the positives, ...
            x = to_input(frames.frames[idx.T.reshape(-1)], mean, device)
            emb = model(x).view(k, batch, -1)
            loss = criterion(*emb) if y is None else criterion(emb[0], emb[1], y)
            if not torch.isfinite(loss):
                where = (
                    f"the last good checkpoint is {last}"
                    if last
                    else "no checkpoint was written yet"
                )
                raise TcdnError(
                    f"the loss became {loss.item()} at step {step + 1}; {where}. Lower --lr or enable gradient clipping."
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
            if step % cfg.log_every == 0 or step == cfg.steps:
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
                        loss.item(),
                    )
                    warned_collapse = True
                bar.set_postfix(loss=f"{loss.item():.4f}", tuples_s=f"{rate:.0f}")
                rec = {
                    "step": step,
                    "loss": loss.item(),
                    "lr": scheduler.get_last_lr()[0],
                    "embedding_spread": spread,
                    "tuples_per_s": rate,
                }
                log_fh.write(json.dumps(rec) + "\n")
                log_fh.flush()
                t0, tuples_since = time.perf_counter(), 0
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                last = save(step)
    bar.close()
    assert last is not None
    log.info("finished %d steps; checkpoint %s", step, last)
    return last
