"""Fine-tuning a classifier on labelled images: one run, with the hygiene of ``tcdn train``.

A run first treats the transferred layers as pre-trained (:mod:`tcdn.transfer.warmstart`): their
BatchNorm statistics re-estimated on the training images and then fixed (``bn``), the new layer
started at the linear probe of the frozen features (``head_init``), the transferred layers given
``transferred_lr`` times the learning rate. It then trains every layer with SGD (momentum, weight
decay, gradient clipping) for at least ``min_steps`` steps under a per-step learning-rate schedule
(cosine to 0, or step decay by epochs; optional linear warm-up), augments each training image on
its own, evaluates the test images every ``eval_every`` epochs (default: ten times a run) and
after the last, and writes to its folder at each evaluation:

- ``last.pt``: the state after that epoch (network, optimiser, schedule, every RNG, the epoch,
  the history), so that ``resume`` continues exactly as if the run had not stopped;
- ``best.pt``: the same at the evaluated epoch with the highest test accuracy. The reported
  accuracy is the *last* epoch's: choosing an epoch by test accuracy would flatter the result;
- ``log.jsonl``: one record per epoch; ``result.json`` once the run is complete.

Checkpoints are written to a temporary name and renamed, and hold only tensors and plain Python
values, so ``torch.load(path, weights_only=True)`` reads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tcdn.augment import AppearanceAugment
from tcdn.errors import TcdnError
from tcdn.outputs import open_append
from tcdn.training.checkpoint import atomic_save
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.inputs import NetInput
from tcdn.transfer.warmstart import adapt_batchnorm, param_groups, probe_head, transferred_batchnorm

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "tcdn-finetune-checkpoint-1"
LAST, BEST, RESULT, LOG = "last.pt", "best.pt", "result.json", "log.jsonl"


# -- augmentation -----------------------------------------------------------------------------------
class TrainAugment:
    """Per-image training augmentation of ``(B, C, H, W)`` floats in [0, 1]; with ``C = 6`` (a
    video frame and its successor) both halves get the same crop and flip.

    - ``flip``: horizontal flip with probability 1/2;
    - ``crop_flip``: zero-pad by ``H // 8`` pixels on every side (4 at 32x32), take a random
      ``H x W`` crop, then ``flip`` (Krizhevsky's CIFAR recipe);
    - ``resized_crop_flip``: a random crop of 50-100% of the area (aspect 3/4-4/3) scaled back to
      ``H x W``, flipped with probability 1/2 (:class:`tcdn.augment.AppearanceAugment` without
      colour changes);
    - ``none``: nothing.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.resized = (
            AppearanceAugment(
                flip=0.5, crop_scale=0.5, brightness=0, contrast=0, saturation=0, grey=0
            )
            if kind == "resized_crop_flip"
            else None
        )

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        if self.kind == "none":
            return x
        if self.resized is not None:
            params = self.resized.sample_params(x.shape[0], gen)
            halves = [
                self.resized.apply_params(x[:, c : c + 3], params) for c in range(0, x.shape[1], 3)
            ]
            return torch.cat(halves, dim=1)
        n, _, h, w = x.shape
        if self.kind == "crop_flip":
            pad = max(h // 8, 1)
            padded = F.pad(x, (pad, pad, pad, pad))
            dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
            dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
            rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)  # (n, h)
            cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)  # (n, w)
            b = torch.arange(n, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # (n, h, w, c)
            x = x.permute(0, 3, 1, 2).contiguous()
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x)


# -- the schedule -------------------------------------------------------------------------------------
def lr_factor(
    cfg: FinetuneConfig, steps_per_epoch: int, epochs: int | None = None
) -> Callable[[int], float]:
    """The learning-rate factor at a step: cosine from 1 to 0 over every step after the warm-up,
    or ``x lr_gamma`` every ``lr_step`` epochs; times a linear warm-up over ``warmup`` epochs.
    ``epochs``: the run's (:meth:`FinetuneConfig.epochs_for`; default ``cfg.epochs``)."""
    total = (epochs or cfg.epochs) * steps_per_epoch
    warm = cfg.warmup * steps_per_epoch

    def factor(step: int) -> float:
        if cfg.schedule == "cosine":
            progress = min(max(step - warm, 0) / max(total - warm, 1), 1.0)
            f = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            f = cfg.lr_gamma ** ((step // steps_per_epoch) // cfg.lr_step)
        if warm and step < warm:
            f *= (step + 1) / warm
        return f

    return factor


def digest(rows: np.ndarray) -> str:
    """A short fingerprint of the rows a run trains or tests on (kept in its checkpoints)."""
    return hashlib.sha1(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]


def to_batch(images: np.ndarray, device: torch.device) -> Tensor:
    """``(B, H, W, C)`` uint8 -> ``(B, C, H, W)`` float in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float() / 255.0


def _sign(sign: np.ndarray | None, rows: Any) -> Tensor | None:
    return None if sign is None else torch.from_numpy(np.asarray(sign[rows], np.float32))


@torch.inference_mode()
def predict(
    model: nn.Module,
    images: np.ndarray,
    net_input: NetInput | np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    sign: np.ndarray | None = None,
) -> np.ndarray:
    """Class predictions of ``(N, H, W, C)`` uint8 images (the network in eval mode);
    ``net_input``: a :class:`~tcdn.transfer.inputs.NetInput` or the paper's channel mean."""
    if not isinstance(net_input, NetInput):  # the paper's input: a channel mean
        net_input = NetInput(None, np.asarray(net_input, np.float32))
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(images), batch_size):
        rows = slice(s, s + batch_size)
        x = net_input(to_batch(images[rows], device), _sign(sign, rows))
        out.append(model(x).argmax(1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)


@dataclass
class RunResult:
    """A finished fine-tuning run: the last epoch's test accuracy (the result), the best one and
    its epoch (for reference only: selected on the test images), and the per-epoch history (with
    ``test_accuracy`` on the evaluated epochs)."""

    accuracy: float
    best_accuracy: float
    best_epoch: int
    history: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
            "epochs": len(self.history),
            "seconds": self.seconds,
            "history": self.history,
        }


class FinetuneRun:
    """One fine-tuning run's state and its epoch.

    Parameters
    ----------
    model
        The classifier; its weights are its initialisation (learned or random).
    train_images, train_labels, test_images, test_labels
        ``(N, H, W, C)`` uint8 images (``C`` = 6: a video frame and its successor, for motion
        input) and their class indices.
    config
        The options (:meth:`FinetuneConfig.training_dict` is what a resumed run must match).
    net_input
        How images become the network's input (:class:`~tcdn.transfer.inputs.NetInput`), or a
        per-channel input mean (0-255) subtracted from every image (the paper's input).
    seeds
        ``(order, augmentation, torch)``: the generators of the batch order, of the
        augmentation, and of torch's RNG (dropout).
    meta
        Plain facts identifying the run (source, repeat, fingerprints of its rows...); a
        resumed run must match them.
    """

    def __init__(
        self,
        model: nn.Module,
        train_images: np.ndarray,
        train_labels: np.ndarray,
        test_images: np.ndarray,
        test_labels: np.ndarray,
        config: FinetuneConfig,
        net_input: NetInput | np.ndarray,
        device: torch.device,
        seeds: tuple[int, int, int],
        meta: dict[str, Any],
        *,
        train_sign: np.ndarray | None = None,
        test_sign: np.ndarray | None = None,
        loaded: set[str] | None = None,
    ) -> None:
        if len(train_images) == 0 or len(test_images) == 0:
            raise TcdnError("fine-tuning needs at least one training and one test image")
        self.model = model.to(device)
        self.cfg, self.device = config, device
        self.train_x, self.train_y = train_images, np.asarray(train_labels, np.int64)
        self.test_x, self.test_y = test_images, np.asarray(test_labels, np.int64)
        self.train_s, self.test_s = train_sign, test_sign
        if not isinstance(net_input, NetInput):
            net_input = NetInput(None, np.asarray(net_input, np.float32))
        self.net_input = net_input
        self.mean = np.asarray(net_input.mean, np.float32)
        self.meta = dict(meta)
        self.augment = TrainAugment(config.resolved_augment)
        self.loaded = set(loaded or ())  # the names of the transferred tensors
        self.frozen_bn = transferred_batchnorm(model, self.loaded) if config.bn != "train" else []
        self.epochs = config.epochs_for(len(train_images))
        self._warm_start()
        self.optimizer = torch.optim.SGD(
            param_groups(model, self.loaded, config.lr, config.transferred_lr),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.steps_per_epoch = math.ceil(len(train_images) / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(config, self.steps_per_epoch, self.epochs)
        )
        self.order = np.random.default_rng(seeds[0])
        self.aug_gen = torch.Generator().manual_seed(seeds[1])
        torch.manual_seed(seeds[2])  # the caller forks the RNG (see finetune)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_accuracy, self.best_epoch = -1.0, 0

    def _inputs(self, images: np.ndarray, sign: np.ndarray | None) -> Any:
        """The network inputs of ``images``, batch by batch, un-augmented."""
        bs = self.cfg.eval_batch_size
        for s in range(0, len(images), bs):
            rows = slice(s, s + bs)
            yield self.net_input(to_batch(images[rows], self.device), _sign(sign, rows))

    def _warm_start(self) -> None:
        """Before the first step: the BatchNorm statistics re-estimated on the training images
        (the new layers', and the transferred ones' with ``bn: adapt``), and the new layer set to
        their linear probe
        (``head_init: probe``); see :mod:`tcdn.transfer.warmstart`. A resumed run overwrites both
        with its checkpoint's state."""

        def batches() -> Any:
            return self._inputs(self.train_x, self.train_s)

        # the new BatchNorm layers (all of a random init's) train on batch statistics; their
        # running ones, which the probe below and any evaluation read, start at the training
        # images' instead of (0, 1)
        old = {id(m) for m in transferred_batchnorm(self.model, self.loaded)}
        new_bn = [
            m
            for m in self.model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in old
        ]
        adapt = new_bn + (self.frozen_bn if self.cfg.bn == "adapt" else [])
        adapt_batchnorm(self.model, adapt, batches)
        head, backbone = getattr(self.model, "head", None), getattr(self.model, "backbone", None)
        if self.cfg.head_init == "probe" and head is not None and backbone is not None:
            n_classes = int(getattr(self.model, "n_classes", int(self.train_y.max()) + 1))
            probe_head(head, backbone, batches, self.train_y, n_classes, self.cfg.linear_c)

    def _train_mode(self) -> None:
        """Train mode, except the transferred BatchNorm layers unless ``bn: train``."""
        self.model.train()
        for m in self.frozen_bn:
            m.eval()

    # -- one epoch ------------------------------------------------------------------------------
    def train_epoch(self, bar: Any = None) -> dict[str, float]:
        """One pass over the training images in a fresh random order; returns the mean loss and
        the accuracy on the (augmented) training batches."""
        self._train_mode()
        perm = self.order.permutation(len(self.train_x))
        bs = self.cfg.batch_size
        loss_sum, correct = 0.0, 0
        for s in range(0, len(perm), bs):
            rows = np.sort(perm[s : s + bs])  # sorted: a store reads faster; order is kept by perm
            x = self.augment(to_batch(self.train_x[rows], self.device), self.aug_gen)
            y = torch.from_numpy(self.train_y[rows]).to(self.device)
            logits = self.model(self.net_input(x, _sign(self.train_s, rows)))
            loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise TcdnError(
                    f"the fine-tuning loss became {loss.item()} in epoch {self.epoch + 1}: lower --lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.item() * len(rows)
            correct += int((logits.argmax(1) == y).sum())
            if bar is not None:
                bar.update(1)
        self.epoch += 1
        n = len(perm)
        return {"train_loss": loss_sum / n, "train_accuracy": 100.0 * correct / n}

    def evaluate(self) -> float:
        """Accuracy (%) on the test images."""
        pred = predict(
            self.model,
            self.test_x,
            self.net_input,
            self.device,
            self.cfg.eval_batch_size,
            self.test_s,
        )
        return float(100.0 * np.mean(pred == self.test_y))

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as tensors and plain Python values."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg.training_dict(),
            "meta": self.meta,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_rng": self.order.bit_generator.state,
            "augment_rng": self.aug_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "history": self.history,
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
            "mean": [float(v) for v in self.mean],
        }

    def restore(self, path: Path) -> None:
        """Continue from ``path`` (a ``last.pt``); its options and meta must equal this run's."""
        state = load_run_checkpoint(path)
        mine = {"config": self.cfg.training_dict(), "meta": self.meta}
        differ = sorted(
            f"{part}.{k}"
            for part in ("config", "meta")
            for k in set(state[part]) | set(mine[part])
            if state[part].get(k) != mine[part].get(k)
        )
        if differ:
            raise TcdnError(
                f"cannot resume {path}: it was made with other options or data ({', '.join(differ)}); "
                "use the same options, or another --out"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order.bit_generator.state = state["order_rng"]
        self.aug_gen.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best_accuracy = float(state["best_accuracy"])
        self.best_epoch = int(state["best_epoch"])
        log.info("resuming %s after epoch %d", path, self.epoch)


def load_run_checkpoint(path: str | Path) -> dict[str, Any]:
    """A fine-tuning checkpoint, read with ``weights_only=True`` (it holds nothing else)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise TcdnError(f"cannot read fine-tuning checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TcdnError(f"{path} is not a tcdn fine-tuning checkpoint")
    return state


def _write_json(path: Path, record: dict[str, Any]) -> None:
    from tcdn.outputs import write_atomic

    write_atomic(path, json.dumps(record, indent=2))


def read_result(run_dir: Path) -> RunResult | None:
    """The result of a completed run in ``run_dir``, or ``None``."""
    path = run_dir / RESULT
    if not path.is_file():
        return None
    rec = json.loads(path.read_text())
    return RunResult(
        rec["accuracy"], rec["best_accuracy"], rec["best_epoch"], rec["history"], rec["seconds"]
    )


def finetune(
    model: nn.Module,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    config: FinetuneConfig,
    run_dir: str | Path,
    *,
    mean: np.ndarray | NetInput,
    seeds: tuple[int, int, int],
    meta: dict[str, Any] | None = None,
    train_sign: np.ndarray | None = None,
    test_sign: np.ndarray | None = None,
    loaded: set[str] | None = None,
    resume: bool = False,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "fine-tuning",
) -> RunResult:
    """Fine-tune ``model`` for ``config.epochs_for(len(train_images))`` epochs, evaluating after
    each; see the module docstring for the run folder. ``mean``: the input (a
    :class:`~tcdn.transfer.inputs.NetInput`, or the paper's channel mean); ``train_sign`` /
    ``test_sign``: the successor signs of motion input; ``loaded``: the names of the tensors
    transferred from a checkpoint (they train at ``transferred_lr``, and their BatchNorm layers
    follow ``bn``). With ``resume``, a complete run is read back and an
    interrupted one continues from its ``last.pt``. Torch's global RNG is seeded inside
    :func:`torch.random.fork_rng`: the caller's RNG state is left as it was."""
    run = Path(run_dir)
    meta = dict(meta or {})
    last = run / LAST
    if last.exists() and not resume:
        raise TcdnError(
            f"{run} already holds a fine-tuning run: pass --resume to continue it, or choose another --out"
        )
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        state = FinetuneRun(
            model,
            train_images,
            train_labels,
            test_images,
            test_labels,
            config,
            mean,
            dev,
            seeds,
            meta,
            train_sign=train_sign,
            test_sign=test_sign,
            loaded=loaded,
        )
        if resume and last.exists():
            state.restore(last)
            done = read_result(run)
            if done is not None and state.epoch >= state.epochs:
                return done
        run.mkdir(parents=True, exist_ok=True)
        bar = tqdm(
            total=state.epochs * state.steps_per_epoch,
            initial=state.epoch * state.steps_per_epoch,
            desc=desc,
            unit="step",
            disable=not progress,
            leave=False,
        )
        try:
            _epochs(state, run, last, bar)
        finally:
            bar.close()
    result = RunResult(
        accuracy=state.history[-1]["test_accuracy"],
        best_accuracy=state.best_accuracy,
        best_epoch=state.best_epoch,
        history=state.history,
        seconds=float(sum(h["seconds"] for h in state.history)),  # every epoch, across resumes
    )
    _write_json(run / RESULT, {**result.to_dict(), "meta": meta})
    _warn_if_untrained(run, state.history, len(np.unique(train_labels)))
    return result


def _epochs(state: FinetuneRun, run: Path, last: Path, bar: Any) -> None:
    """Train ``state`` to its last epoch, evaluating every ``eval_interval`` epochs; each
    evaluation writes ``last.pt`` (and ``best.pt`` when it improved) and logs the epochs since
    the previous one, so a resumed run logs no epoch twice."""
    with open_append(run / LOG) as log_fh:
        pending: list[dict[str, Any]] = []  # epochs not yet in a checkpoint or the log
        interval = state.cfg.eval_interval(state.epochs)
        while state.epoch < state.epochs:
            t_epoch = time.perf_counter()
            record: dict[str, Any] = {"epoch": state.epoch + 1}
            record.update(state.train_epoch(bar))
            record["lr"] = float(state.scheduler.get_last_lr()[0])
            evaluate = state.epoch % interval == 0 or state.epoch == state.epochs
            if evaluate:
                record["test_accuracy"] = state.evaluate()
            record["seconds"] = time.perf_counter() - t_epoch
            state.history.append(record)
            pending.append(record)
            if not evaluate:
                continue
            improved = record["test_accuracy"] > state.best_accuracy
            if improved:
                state.best_accuracy, state.best_epoch = record["test_accuracy"], state.epoch
            ckpt = state.state_dict()
            atomic_save(ckpt, last)
            if improved:
                atomic_save(ckpt, run / BEST)
            # logged with the checkpoint that holds them: a resumed run logs no epoch twice
            log_fh.writelines(json.dumps(r) + "\n" for r in pending)
            log_fh.flush()
            pending = []
            bar.set_postfix(
                loss=f"{record['train_loss']:.3f}", test=f"{record['test_accuracy']:.1f}%"
            )


#: a last-epoch training loss above this share of ln(K) counts as "did not learn"
UNTRAINED_LOSS_SHARE = 0.95


def _warn_if_untrained(run: Path, history: list[dict[str, Any]], n_classes: int) -> None:
    """Warn when the training loss ended where a classifier that knows nothing starts, ln(K)."""
    chance = math.log(max(n_classes, 2))
    last = history[-1]["train_loss"]
    if last >= UNTRAINED_LOSS_SHARE * chance:
        log.warning(
            "%s: the training loss ended at %.3f, the chance level ln(%d) = %.3f: the network "
            "did not learn its training images; try more --epochs or a larger --lr (a network "
            "whose activations barely vary between images learns slowly)",
            run,
            last,
            n_classes,
            chance,
        )
