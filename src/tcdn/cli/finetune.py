"""``tcdn finetune``: did pre-training on my videos help? A classifier initialised with a checkpoint's
weights against the same network randomly initialised, on labelled images (SPEC §6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, frame_side, positive_float, positive_int, progress
from tcdn.transfer.config import (
    AUGMENTS,
    BN_MODES,
    DATASETS,
    HEAD_INITS,
    PROTOCOLS,
    SCHEDULES,
    FinetuneConfig,
)

#: the flags that set a FinetuneConfig field of the same name
CONFIG_FLAGS = (
    "dataset",
    "shots",
    "test_size",
    "test_fraction",
    "repeats",
    "seed",
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
    "layer",
    "knn_k",
    "linear_c",
)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a classifier from a checkpoint's weights vs a random init on labelled images",
        description="Initialise a classifier with the weights a `tcdn train` run learned from "
        "unlabelled video, train it on labelled images, and compare it with the same network "
        "randomly initialised, on the same images, over several repeats.",
    )
    p.add_argument(
        "data",
        type=Path,
        help="the labelled images: a folder in the layout --dataset names (for videos: a video "
        "folder or a frame store, labelled by class sub-folders or labels.csv)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        required=True,
        help="cifar10: the python batches (cifar-10-batches-py); fashion_mnist: the idx files; "
        "voc_action: VOCdevkit/VOC2012 (person crops, 10 actions; train -> val); imagefolder: "
        "<class>/<image>, optionally under train/ and test/; videos: the frames of a labelled "
        "collection, split by video",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="the learned init: a checkpoint file or a run folder (its last checkpoint)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for results.json and the runs/ of fine-tuning",
    )
    p.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help=f"comma-separated, from {', '.join(PROTOCOLS)} (default: all): fine-tuning of every "
        "layer, a logistic-regression probe and k-nearest neighbours on frozen features",
    )
    p.add_argument(
        "--shots",
        type=positive_int,
        default=None,
        help="k-shot: train on K images per class drawn per repeat (the PASCAL protocol: 5); "
        "default: the whole training split",
    )
    p.add_argument(
        "--test-size",
        type=positive_int,
        default=None,
        help="test on a fixed random sample of N test images (the PASCAL protocol: 2000); default: all",
    )
    p.add_argument(
        "--test-fraction",
        type=fraction,
        default=None,
        help="without an official test split (videos, a plain image folder): the share of each "
        "class's videos (or images) each repeat holds out for testing (default 0.5)",
    )
    p.add_argument("--repeats", type=positive_int, default=None, help="repeats (seeds) (default 5)")
    p.add_argument("--seed", type=int, default=None, help="seed of every draw (default 0)")
    p.add_argument(
        "--epochs", type=positive_int, default=None, help="fine-tuning epochs (default 30)"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=None, help="images per step (default 32)"
    )
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=fraction, default=None, help="SGD momentum (default 0.9)")
    p.add_argument(
        "--weight-decay", type=float, default=None, help="L2 weight decay (default 5e-4)"
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=None,
        help="cosine (to 0 at the last step, default) or step (x --lr-gamma every --lr-step epochs)",
    )
    p.add_argument("--lr-step", type=positive_int, default=None, help="epochs between lr steps")
    p.add_argument("--lr-gamma", type=positive_float, default=None, help="lr factor per step")
    p.add_argument(
        "--warmup", type=int, default=None, help="epochs of linear lr warm-up (default 0)"
    )
    p.add_argument(
        "--eval-every",
        type=positive_int,
        default=None,
        help="evaluate the test images and write last.pt/best.pt every N epochs and after the "
        "last (default: ten times a run); a run resumes from its latest evaluation",
    )
    p.add_argument(
        "--transferred-lr",
        type=float,
        default=None,
        help="factor on --lr for the layers whose weights came from the checkpoint (default "
        "0.1; the new layer, and every layer of the random init, train at --lr)",
    )
    p.add_argument(
        "--bn",
        choices=BN_MODES,
        default=None,
        help="the transferred BatchNorm layers: adapt (default: statistics re-estimated on the "
        "training images, then fixed), keep (the checkpoint's, fixed), train (batch statistics)",
    )
    p.add_argument(
        "--head-init",
        choices=HEAD_INITS,
        default=None,
        help="the new layer's start: probe (default: the logistic regression of the frozen "
        "features, LP-FT) or random",
    )
    p.add_argument(
        "--min-steps",
        type=int,
        default=None,
        help="train at least this many SGD steps, raising --epochs on small training sets "
        "(default 100)",
    )
    p.add_argument(
        "--grad-clip", type=float, default=None, help="gradient norm clip (default 5; 0: none)"
    )
    p.add_argument(
        "--augment",
        choices=AUGMENTS,
        default=None,
        help="training augmentation; auto (default): padded crops + flips for cifar10 and "
        "fashion_mnist, random resized crops + flips for photographs and video frames",
    )
    p.add_argument(
        "--head-dropout",
        type=fraction,
        default=None,
        help="dropout before the new classification layer (default 0)",
    )
    p.add_argument(
        "--upto",
        default=None,
        metavar="LAYER",
        help="transfer the weights of the layers up to LAYER only (default: every layer); the "
        "later ones start from the random init",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="the frozen-feature layer of linear and knn (default: the network's feature layer)",
    )
    p.add_argument(
        "--knn-k", type=positive_int, default=None, help="neighbours that vote (default 5)"
    )
    p.add_argument(
        "--linear-c",
        type=positive_float,
        default=None,
        help="inverse L2 strength of the linear probe on standardised features (default 1)",
    )
    p.add_argument(
        "--size",
        type=frame_side,
        default=None,
        help="image side (default: the checkpoint's image_size)",
    )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="--dataset videos: a video,label CSV (default: VIDEOS/labels.csv or class sub-folders)",
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=None,
        help="--dataset videos: keep at most this many frames of each video",
    )
    p.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs in --out: completed ones are read back, interrupted ones go on",
    )
    add_common_args(p)
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The :class:`FinetuneConfig` the options ask for (checked before any data is read)."""
    options = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    protocols = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    return FinetuneConfig(protocols=protocols, **options)


def run(args: argparse.Namespace) -> int:
    from tcdn.transfer.results import format_table
    from tcdn.transfer.run import finetune

    results = finetune(
        args.data,
        args.checkpoint,
        config_from_args(args),
        args.out,
        labels=args.labels,
        max_frames=args.max_frames,
        size=args.size,
        threads=args.threads,
        resume=args.resume,
        device=args.device,
        progress=progress(args),
    )
    sys.stdout.write(format_table(results) + "\n")
    return 0
