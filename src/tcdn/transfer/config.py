"""The options of a transfer experiment: one dataclass, validated once (SPEC §6).

This module imports no torch and no scikit-learn: ``tcdn finetune`` reads its choices here, so
``tcdn --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from tcdn.errors import TcdnError

#: the labelled-image layouts :mod:`tcdn.transfer.images` reads
DATASETS = ("cifar10", "fashion_mnist", "voc_action", "imagefolder", "videos")
#: full fine-tuning of every layer; a logistic-regression probe and k-nearest neighbours on
#: frozen features
PROTOCOLS = ("finetune", "linear", "knn")
#: where the weights come from: the checkpoint (the learned init), a fresh random init of the same
#: network, and raw pixels (no network: ``linear`` and ``knn`` only)
SOURCES = ("trained", "random_init", "raw_pixels")
#: training augmentation: ``auto`` picks the dataset's (:data:`DATASET_AUGMENT`)
AUGMENTS = ("auto", "none", "flip", "crop_flip", "resized_crop_flip")
#: the augmentation ``auto`` means: small images get padded random crops (Krizhevsky's CIFAR
#: recipe), photographs and video frames random resized crops; a horizontal flip for all
DATASET_AUGMENT = {
    "cifar10": "crop_flip",
    "fashion_mnist": "crop_flip",
    "voc_action": "resized_crop_flip",
    "imagefolder": "resized_crop_flip",
    "videos": "resized_crop_flip",
}
SCHEDULES = ("cosine", "step")
#: the transferred BatchNorm layers while fine-tuning: ``adapt``: their statistics re-estimated on
#: the training images before the first step, then fixed (AdaBN; the layers stay in eval mode);
#: ``keep``: the checkpoint's statistics, fixed; ``train``: batch statistics, as a new layer
BN_MODES = ("adapt", "keep", "train")
#: the new classification layer's start: ``probe``: the logistic regression of the frozen
#: network's features of the training images (LP-FT, Kumar et al. 2022); ``random``: random
HEAD_INITS = ("probe", "random")


@dataclass
class FinetuneConfig:
    """Everything that defines a transfer experiment except the data and the checkpoint.

    Each of ``repeats`` repeats draws its own training sample (``shots`` per class, or the whole
    training split), its own split where the data has no official one, and its own new layers;
    the learned and the random init of one repeat see the same images in the same order with the
    same augmentation, so their accuracies are paired.
    """

    dataset: str = "imagefolder"
    protocols: tuple[str, ...] = PROTOCOLS
    shots: int | None = None  # training images per class (k-shot); None: the whole training split
    test_size: int | None = None  # a fixed random sample of the test split; None: all of it
    test_fraction: float = 0.5  # share of each class held out where the data has no official split
    repeats: int = 5
    seed: int = 0
    # fine-tuning
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine: to 0 over all steps; step: x lr_gamma every lr_step epochs
    lr_step: int = 10
    lr_gamma: float = 0.1
    warmup: int = 0  # epochs of linear warm-up
    # epochs between evaluations (and checkpoints); the last is always one; None: about 10 a run
    eval_every: int | None = None
    augment: str = "auto"
    head_dropout: float = 0.0  # dropout before the new classification layer
    upto: str | None = None  # the last layer whose weights are transferred; None: every layer
    transferred_lr: float = 0.1  # factor on lr for transferred layers (new ones train at lr)
    bn: str = "adapt"  # the transferred BatchNorm layers: one of BN_MODES
    head_init: str = "probe"  # the new layer's start: one of HEAD_INITS
    min_steps: int = 100  # at least this many steps: epochs raised when the training set is small
    grad_clip: float = 5.0  # the gradient's L2 norm is clipped to this (0: no clipping)
    # frozen features
    layer: str | None = None  # feature layer of linear/knn; None: the network's default layer
    knn_k: int = 5
    linear_c: float = 1.0  # inverse L2 strength of the logistic regression (standardised features)
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        self.protocols = tuple(self.protocols)
        self.validate()

    @property
    def resolved_augment(self) -> str:
        """The augmentation this config applies (``auto`` resolved by the dataset)."""
        return DATASET_AUGMENT[self.dataset] if self.augment == "auto" else self.augment

    def epochs_for(self, n_train: int) -> int:
        """The epochs a run on ``n_train`` images trains: ``epochs``, raised so that the run takes
        at least ``min_steps`` steps (5 shots of 4 classes are one step an epoch)."""
        per_epoch = max(math.ceil(n_train / self.batch_size), 1)
        return max(self.epochs, math.ceil(self.min_steps / per_epoch))

    def eval_interval(self, epochs: int) -> int:
        """Epochs between evaluations of a run of ``epochs`` epochs: ``eval_every``, or (None)
        a tenth of them (each evaluation reads every test image)."""
        return self.eval_every or max(1, math.ceil(epochs / 10))

    def validate(self) -> None:
        def need(ok: bool, option: str, what: str) -> None:
            if not ok:
                flag = "--" + option.replace("_", "-")
                raise TcdnError(f"invalid option {flag} {getattr(self, option)!r}: {what}")

        need(self.dataset in DATASETS, "dataset", f"choose one of {', '.join(DATASETS)}")
        need(
            bool(self.protocols) and all(p in PROTOCOLS for p in self.protocols),
            "protocols",
            f"choose from {', '.join(PROTOCOLS)}",
        )
        need(len(set(self.protocols)) == len(self.protocols), "protocols", "named twice")
        need(self.shots is None or self.shots >= 1, "shots", "must be >= 1")
        need(self.test_size is None or self.test_size >= 1, "test_size", "must be >= 1")
        need(0 < self.test_fraction < 1, "test_fraction", "must be in (0, 1)")
        need(self.repeats >= 1, "repeats", "must be >= 1")
        need(self.epochs >= 1, "epochs", "must be >= 1")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "must be a positive number")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.schedule in SCHEDULES, "schedule", f"choose one of {', '.join(SCHEDULES)}")
        need(self.lr_step >= 1, "lr_step", "must be >= 1")
        need(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
        need(0 <= self.warmup < self.epochs, "warmup", "must be >= 0 and less than --epochs")
        need(self.eval_every is None or self.eval_every >= 1, "eval_every", "must be >= 1")
        need(self.augment in AUGMENTS, "augment", f"choose one of {', '.join(AUGMENTS)}")
        need(0 <= self.transferred_lr <= 1, "transferred_lr", "must be in [0, 1]")
        need(self.bn in BN_MODES, "bn", f"choose one of {', '.join(BN_MODES)}")
        need(self.head_init in HEAD_INITS, "head_init", f"choose one of {', '.join(HEAD_INITS)}")
        need(self.min_steps >= 0, "min_steps", "must be >= 0")
        need(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0: no clipping)")
        need(0 <= self.head_dropout < 1, "head_dropout", "must be in [0, 1)")
        need(self.knn_k >= 1, "knn_k", "must be >= 1")
        need(self.linear_c > 0, "linear_c", "must be > 0")
        need(self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["protocols"] = list(self.protocols)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TcdnError(f"unknown transfer option(s): {', '.join(unknown)}")
        return cls(**data)

    def training_dict(self) -> dict[str, Any]:
        """The options one fine-tuning run depends on: a resumed run must agree on all of them."""
        keys = (
            "epochs",
            "batch_size",
            "lr",
            "momentum",
            "weight_decay",
            "schedule",
            "lr_step",
            "lr_gamma",
            "warmup",
            "eval_every",
            "augment",
            "head_dropout",
            "upto",
            "transferred_lr",
            "bn",
            "head_init",
            "min_steps",
            "grad_clip",
        )
        out = {k: getattr(self, k) for k in keys}
        out["augment"] = self.resolved_augment
        return out
