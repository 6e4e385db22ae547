"""``tcdn train``: train a network on a collection (its labels are never read)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from tcdn.cli.common import (
    add_collection_args,
    add_common_args,
    device,
    load_collection,
    positive_float,
    positive_int,
)
from tcdn.errors import TcdnError
from tcdn.training.config import AUGMENTS, LOSSES, SCHEDULES

log = logging.getLogger("tcdn")

#: the flags that set a TrainConfig field of the same name
CONFIG_FLAGS = (
    "loss",
    "model",
    "steps",
    "batch_size",
    "lr",
    "image_size",
    "far",
    "window",
    "mu",
    "schedule",
    "augment",
    "bf16",
    "channels_last",
    "compile",
    "tensorboard",
    "checkpoint_every",
    "seed",
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network on a folder of videos (labels unused)")
    add_collection_args(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="run folder for checkpoints, config.yaml and log.jsonl",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a YAML file of training options; flags override it",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="OPTION=VALUE",
        help="set any training option (a TrainConfig field, value read as YAML), e.g. --set lr=0.01 "
        "--set model_options='{dropout: 0}'; repeatable; wins over --config and the flags below",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default=None,
        help="lq: quadruplet (default, the paper's best); ls: siamese pairs; sfa: contrastive "
        "baseline (non-contiguous frames of one video as negatives); ld: cosine ranking triplets",
    )
    p.add_argument("--model", default=None, help="backbone (default: alexnet)")
    p.add_argument(
        "--steps", type=positive_int, default=None, help="training iterations (paper: 30000)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="tuples per step (default: 40 quadruplets / 120 pairs)",
    )
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (paper: 0.001)")
    p.add_argument(
        "--image-size", type=positive_int, default=None, help="network input size (paper: 227)"
    )
    p.add_argument(
        "--far",
        type=positive_int,
        default=None,
        help="n: offset of the far frame for lq (default: 20)",
    )
    p.add_argument(
        "--window",
        type=positive_int,
        default=None,
        help="w: offset of the positive frame (default: 1)",
    )
    p.add_argument(
        "--mu",
        action="store_true",
        default=None,
        help="MU mode: one long stream of all videos, negatives from anywhere else in it",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=None,
        help="learning-rate schedule: step (x lr_gamma every lr_step steps, the release's) or cosine "
        "(to 0 at --steps)",
    )
    p.add_argument(
        "--augment",
        choices=AUGMENTS,
        default=None,
        help="appearance: random flip, crop and colour for every frame on its own (off in the paper); "
        "helps where the same people appear in every video, can hurt where appearance is the signal",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        help="bfloat16 autocast of the forward pass (faster on recent GPUs)",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory layout (default: on; the same results to rounding, faster "
        "here, and needed by --compile); --no-channels-last turns it off",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the network (slow first step; needs a C++ compiler on CPU and "
        "channels-last)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also write TensorBoard events to OUT/tensorboard (needs the tensorboard package)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="steps between checkpoints (default: 1000)",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of initialisation and sampling (default: 0)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    add_common_args(p)
    p.epilog = (
        "Several processes or machines: torchrun --nproc_per_node=N -m tcdn train ... (DDP: NCCL "
        "on GPUs, gloo on CPUs); --batch-size is the global batch and must divide by the number "
        "of processes; rank 0 writes checkpoints and logs."
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tcdn.training.config import TrainConfig
    from tcdn.training.loop import train

    if os.environ.get("RANK", "0") not in ("", "0"):  # under torchrun: rank 0 speaks for all
        logging.getLogger().setLevel(logging.WARNING)
        args.no_progress = True
    cfg = TrainConfig.from_sources(
        args.config,
        {name: getattr(args, name) for name in CONFIG_FLAGS},
        args.overrides,
        defaults={"image_size": args.size},
    )
    if args.size is not None and args.size != cfg.image_size:
        raise TcdnError(
            f"--size {args.size} differs from the network's --image-size {cfg.image_size}: give one of them"
        )
    dev = device(args.device)
    frames = load_collection(args, cfg.image_size)
    ckpt = train(
        frames, cfg, args.out, resume=args.resume, device=dev, progress=not args.no_progress
    )
    log.info("last checkpoint: %s", ckpt)
    return 0
