"""A transfer experiment end to end: repeats x inits x protocols, scored on test images (SPEC §6).

For each repeat the split is drawn once (:func:`tcdn.transfer.splits.plan_split`); then, for the
learned init (``trained``: the checkpoint's weights) and the random init (``random_init``: the
same network freshly initialised), on the same images:

- ``linear`` / ``knn``: features of the frozen network at ``layer`` (at unit length when the
  checkpoint's recipe reads them so, ``feature_norm: l2``) -> logistic regression / k-nearest
  neighbours (also on ``raw_pixels``, the images themselves, as a floor);
- ``finetune``: every layer trained (:func:`tcdn.transfer.finetune.finetune`), run folder
  ``OUT/runs/rNN-SOURCE/``.

Accuracies are collected per source and protocol and summarised by
:func:`tcdn.transfer.results.build_results`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn.errors import TcdnError
from tcdn.models.input import InputTransform, channel_mean
from tcdn.transfer.classifier import TransferReport, build_classifier, weights_digest
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.finetune import LAST, RunResult, digest, finetune
from tcdn.transfer.images import ImageSet, LabelledData
from tcdn.transfer.inputs import NetInput, plan_input
from tcdn.transfer.probe import accuracy, knn_predict, linear_probe
from tcdn.transfer.results import build_results
from tcdn.transfer.splits import AUGMENT, DROPOUT, INIT, ORDER, child_seed, plan_split

log = logging.getLogger(__name__)

INITS = ("trained", "random_init")


def run_transfer(
    data: LabelledData,
    checkpoint: dict[str, Any],
    config: FinetuneConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run ``config``'s protocols on ``data`` with the network of ``checkpoint`` (a
    :func:`tcdn.training.load_checkpoint` dict) and return the ``results.json`` record.

    ``out_dir`` receives the fine-tuning runs (``runs/``); the caller writes the results. With
    ``resume``, completed runs are read back and interrupted ones continue where they stopped."""
    cfg = config
    out = Path(out_dir)
    runs = out / "runs"
    existing = sorted(runs.glob(f"*/{LAST}")) if runs.is_dir() else []
    if existing and not resume:
        raise TcdnError(
            f"{out} already holds fine-tuning runs ({existing[0].parent.name}...): pass --resume "
            "to continue them, or choose another --out"
        )
    transform, part = plan_input(checkpoint, video=data.train.successor is not None)
    report, layer = _account(checkpoint, cfg, len(data.classes), part)
    plan = _Plan(
        checkpoint,
        cfg,
        len(data.classes),
        layer,
        transform,
        part,
        weights_digest(checkpoint["model"]),
        runs,
        resume=resume,
        device=device,
        progress=progress,
    )
    tally = _Tally()
    for r in range(cfg.repeats):
        arrays, signs = _draw(data, cfg, r, tally, motion=plan.motion)
        net_input = NetInput(transform, channel_mean(arrays[0][..., :3], seed=cfg.seed), part)
        if r == 0:
            log.info("input: %s", net_input.describe())
            report.input = net_input.describe()
        for source in INITS:
            _run_init(plan, source, r, arrays, signs, net_input, tally)
        if plan.frozen:
            t0 = time.perf_counter()
            train_x, train_y, test_x, test_y = arrays
            pixels = [
                x[..., :3].reshape(len(x), -1).astype(np.float32) / 255.0 for x in (train_x, test_x)
            ]
            _probe(cfg, "raw_pixels", pixels[0], train_y, pixels[1], test_y, tally.add)
            tally.timed("raw_pixels/frozen", t0)
        summary = ", ".join(
            f"{s}/{p} {v[-1]:.1f}" for s, per in tally.values.items() for p, v in per.items()
        )
        log.info("repeat %d/%d accuracy (%%): %s", r + 1, cfg.repeats, summary)

    return build_results(
        data,
        cfg,
        tally.values,
        best=tally.best,
        best_epochs=tally.best_epochs,
        sizes=tally.sizes,
        splits=tally.splits,
        report=report,
        layer=layer,
        checkpoint=checkpoint,
        seconds=tally.seconds,
        size=int(data.train.size),
    )


@dataclass
class _Plan:
    """What every repeat and init of one experiment shares."""

    checkpoint: dict[str, Any]
    cfg: FinetuneConfig
    n_classes: int
    layer: str
    transform: InputTransform | None  # the checkpoint's input (None: the paper's)
    part: str  # the part of its network the classifier uses (tcdn.transfer.inputs)
    weights: str  # a fingerprint of the checkpoint's network
    runs: Path  # OUT/runs: the fine-tuning runs
    resume: bool
    device: str
    progress: bool

    @property
    def motion(self) -> bool:
        """Whether the input needs each frame's successor."""
        return self.transform is not None and self.transform.needs_successor

    @property
    def frozen(self) -> list[str]:
        """The protocols on frozen features."""
        return [p for p in self.cfg.protocols if p in ("linear", "knn")]


@dataclass
class _Tally:
    """What the repeats collect for :func:`~tcdn.transfer.results.build_results`."""

    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    best: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in INITS})
    best_epochs: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in INITS})
    sizes: list[tuple[int, int]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, source: str, protocol: str, value: float) -> None:
        self.values.setdefault(source, {}).setdefault(protocol, []).append(value)

    def timed(self, key: str, t0: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0


def _account(
    checkpoint: dict[str, Any], cfg: FinetuneConfig, n_classes: int, part: str
) -> tuple[TransferReport, str]:
    """The account of the weight transfer (logged) and the frozen-feature layer, worked out
    before the first image is read, so that a shape mismatch or a bad layer fails at once."""
    probe_model, report = build_classifier(
        checkpoint["config"],
        n_classes,
        init="trained",
        state=checkpoint["model"],
        dropout=cfg.head_dropout,
        upto=cfg.upto,
        source=str(checkpoint.get("path", "the checkpoint")),
        part=part,
    )
    assert report is not None
    log.info("weight transfer from %s: %s", checkpoint.get("path"), report.summary())
    for what, items in (("loaded", report.loaded), ("new", report.new), ("unused", report.unused)):
        for name, shape in items:
            log.debug("%s %s %s", what, name, list(shape))
    return report, probe_model.backbone.check_layer(cfg.layer)


def _read(images: ImageSet, rows: np.ndarray, motion: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``rows`` as ``(n, H, W, 3)`` uint8, or with ``motion`` ``(n, H, W, 6)``: each frame, then
    its successor; and the successors' signs (``None`` without ``motion``)."""
    x = images.read(rows)
    if not motion:
        return x, None
    after, sign = images.read_successors(rows)
    return np.concatenate([x, after], axis=3), sign


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _draw(
    data: LabelledData, cfg: FinetuneConfig, r: int, tally: _Tally, *, motion: bool = False
) -> tuple[Arrays, tuple[np.ndarray | None, np.ndarray | None]]:
    """Repeat ``r``'s split, read: ``(train_x, train_y, test_x, test_y)`` and the successor
    signs of train and test (motion input; else ``None``); its sizes and record go to ``tally``."""
    t0 = time.perf_counter()
    test_set = data.test if data.test is not None else data.train
    split = plan_split(
        data.train.labels,
        data.train.groups,
        None if data.test is None else len(data.test),
        shots=cfg.shots,
        test_size=cfg.test_size,
        test_fraction=cfg.test_fraction,
        seed=cfg.seed,
        repeat=r,
        classes=data.classes,
    )
    train_x, train_s = _read(data.train, split.train, motion)
    train_y = data.train.labels[split.train]
    test_x, test_s = _read(test_set, split.test, motion)
    test_y = test_set.labels[split.test]
    tally.timed("reading", t0)
    tally.sizes.append((len(split.train), len(split.test)))
    groups = split.test_groups(data.train.groups)
    tally.splits.append(
        {
            "repeat": r,
            "n_train": len(split.train),
            "n_test": len(split.test),
            "train": digest(split.train),
            "test": digest(split.test),
            **(
                {"test_videos": [data.train.group_names[g] for g in groups]}
                if groups and data.train.group_names
                else {}
            ),
        }
    )
    log.info(
        "repeat %d/%d: %d training and %d test images",
        r + 1,
        cfg.repeats,
        len(split.train),
        len(split.test),
    )
    return (train_x, train_y, test_x, test_y), (train_s, test_s)


@torch.inference_mode()
def _features(
    backbone: torch.nn.Module,
    images: np.ndarray,
    sign: np.ndarray | None,
    net_input: NetInput,
    layer: str,
    batch_size: int,
    device: str,
    l2: bool = False,
) -> np.ndarray:
    """The frozen network's ``(N, D)`` features at ``layer`` (eval mode); ``l2``: each row at
    unit length, as discovery reads a recipe of ``feature_norm: l2``."""
    backbone.eval().to(device)
    out = []
    for s in range(0, len(images), batch_size):
        rows = slice(s, s + batch_size)
        x = torch.from_numpy(np.ascontiguousarray(images[rows])).to(device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        sg = None if sign is None else torch.from_numpy(np.asarray(sign[rows], np.float32))
        feats = backbone.forward_features(net_input(x, sg), layer=layer)  # type: ignore[operator]
        if l2:
            feats = torch.nn.functional.normalize(feats.float(), dim=1)
        out.append(feats.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _run_init(
    plan: _Plan,
    source: str,
    r: int,
    arrays: Arrays,
    signs: tuple[np.ndarray | None, np.ndarray | None],
    net_input: NetInput,
    tally: _Tally,
) -> None:
    """Repeat ``r`` of one init (``trained`` or ``random_init``): its frozen-feature probes and
    its fine-tuning run, as ``plan.cfg`` asks."""
    cfg = plan.cfg
    model, report = build_classifier(
        plan.checkpoint["config"],
        plan.n_classes,
        init=source,
        state=plan.checkpoint["model"] if source == "trained" else None,
        seed=child_seed(cfg.seed, r, INIT),
        dropout=cfg.head_dropout,
        upto=cfg.upto,
        part=plan.part,
    )
    loaded = {name for name, _ in report.loaded} if report is not None else set()
    train_x, train_y, test_x, test_y = arrays
    if plan.frozen:
        t0 = time.perf_counter()
        # the recipe's own readout, for the random init of its network too
        l2 = plan.checkpoint["config"].get("feature_norm") == "l2"
        feats = [
            _features(
                model.backbone, x, s, net_input, plan.layer, cfg.eval_batch_size, plan.device, l2
            )
            for x, s in ((train_x, signs[0]), (test_x, signs[1]))
        ]
        _probe(cfg, source, feats[0], train_y, feats[1], test_y, tally.add)
        tally.timed(f"{source}/frozen", t0)
    if "finetune" in cfg.protocols:
        t0 = time.perf_counter()
        result = _finetune(
            model,
            cfg,
            plan.runs / f"r{r:02d}-{source}",
            arrays,
            signs,
            net_input,
            loaded,
            r,
            source,
            tally.splits[-1],
            resume=plan.resume,
            device=plan.device,
            progress=plan.progress,
            weights=plan.weights,
        )
        tally.add(source, "finetune", result.accuracy)
        tally.best[source].append(result.best_accuracy)
        tally.best_epochs[source].append(result.best_epoch)
        tally.timed(f"{source}/finetune", t0)


def _probe(
    cfg: FinetuneConfig,
    source: str,
    train: np.ndarray,
    train_y: np.ndarray,
    test: np.ndarray,
    test_y: np.ndarray,
    add: Any,
) -> None:
    if "linear" in cfg.protocols:
        add(source, "linear", accuracy(linear_probe(train, train_y, test, c=cfg.linear_c), test_y))
    if "knn" in cfg.protocols:
        add(source, "knn", accuracy(knn_predict(train, train_y, test, cfg.knn_k), test_y))


def _finetune(
    model: torch.nn.Module,
    cfg: FinetuneConfig,
    run_dir: Path,
    arrays: Arrays,
    signs: tuple[np.ndarray | None, np.ndarray | None],
    net_input: NetInput,
    loaded: set[str],
    repeat: int,
    source: str,
    split: dict[str, Any],
    *,
    resume: bool,
    device: str,
    progress: bool,
    weights: str,
) -> RunResult:
    train_x, train_y, test_x, test_y = arrays
    meta = {
        "source": source,
        "repeat": repeat,
        "seed": cfg.seed,
        "weights": weights,  # a fingerprint of the checkpoint's network
        "train": split["train"],
        "test": split["test"],
    }
    seeds = (
        child_seed(cfg.seed, repeat, ORDER),
        child_seed(cfg.seed, repeat, AUGMENT),
        child_seed(cfg.seed, repeat, DROPOUT),
    )
    return finetune(
        model,
        train_x,
        train_y,
        test_x,
        test_y,
        cfg,
        run_dir,
        mean=net_input,
        seeds=seeds,
        meta=meta,
        train_sign=signs[0],
        test_sign=signs[1],
        loaded=loaded,
        resume=resume,
        device=device,
        progress=progress,
        desc=f"repeat {repeat + 1}/{cfg.repeats} {source}",
    )
