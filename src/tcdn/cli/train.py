"""``tcdn train``: train a network on a collection (its labels are never read)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
from pathlib import Path
from typing import Any

from tcdn.cli.common import (
    add_collection_args,
    add_common_args,
    device,
    load_collection,
    positive_float,
    positive_int,
    progress,
    seed_int,
)
from tcdn.errors import TcdnError
from tcdn.training.config import AUGMENTS, LOSSES, PRECISIONS, SCHEDULES

#: the names of tcdn.training.recipes.RECIPES (listed here so that --help imports nothing more)
RECIPE_NAMES = ("best", "actions", "scenes", "lq-64px", "paper", "two-stream", "appearance")

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
    "precision",
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
        "--recipe",
        choices=RECIPE_NAMES,
        default=None,
        help="the named recipe the options start from (default: best, alias two-stream, = "
        "configs/best.yaml: the RGB frame and its difference to the next, each its own network, "
        "augmented, with a cross-stream term; scenes, alias appearance: the RGB frame alone; "
        "actions: the frame's difference to the next, for collections where the same people and "
        "places appear in every class; paper: the paper's Lq at 227x227 for 30,000 steps; "
        "lq-64px: the Lq recipe shipped before the studies); flags and --set override it",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a YAML file of training options, instead of a --recipe; flags override it",
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
        help="nce: temporal InfoNCE; lq: quadruplet (the paper's best); ls: siamese pairs; sfa: "
        "contrastive baseline (non-contiguous frames of one video as negatives); ld: cosine "
        "ranking triplets (default: %(recipe_default)s)",
    )
    p.add_argument("--model", default=None, help="backbone (default: %(recipe_default)s)")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="training iterations (paper: 30000) (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help="tuples per step (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="learning rate (paper: 0.001) (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="network input size (paper: 227) (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--far",
        type=positive_int,
        default=None,
        help="n: offset of the far frame for lq (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--window",
        type=positive_int,
        default=None,
        help="w: offset of the positive frame (default: %(recipe_default)s)",
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
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="auto: bfloat16 autocast where the GPU or CPU has it natively (avx512_bf16, amx_bf16) "
        "and a 3-step check agrees with fp32, else fp32; fp32; bf16: always (emulated, "
        "and many times slower, on CPUs without native support) (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        default=None,
        help="the same as --precision bf16",
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
        help="steps between checkpoints (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--seed",
        type=seed_int,
        default=None,
        help="seed of initialisation and sampling (default: %(recipe_default)s)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last complete checkpoint, with its own "
        "config.yaml; only --steps and other options that do not change what is learned (log and "
        "checkpoint cadence, threads, tensorboard, compile, precision) may be given with it",
    )
    add_common_args(p)
    p.epilog = (
        "Several processes or machines: torchrun --nproc_per_node=N -m tcdn train ... (DDP: NCCL "
        "on GPUs, gloo on CPUs); --batch-size is the global batch and must divide by the number "
        "of processes; rank 0 writes checkpoints and logs."
    )
    for action in p._actions:  # each "(default: ...)" is read from the default recipe itself
        if action.help and "%(recipe_default)" in action.help:
            action.recipe_default = RecipeDefault(action.dest)
    p.set_defaults(run=run, interrupted=interrupted)


class RecipeDefault:
    """A flag's default as the help shows it: that option's value in the default recipe
    (:data:`tcdn.training.recipes.DEFAULT_RECIPE`), worked out from the code when the help is
    formatted (so the help never disagrees with what a plain ``tcdn train`` does)."""

    def __init__(self, option: str) -> None:
        self.option = option

    def __str__(self) -> str:
        from tcdn.training.recipes import DEFAULT_RECIPE, recipe

        value = getattr(recipe(DEFAULT_RECIPE).resolved(), self.option)
        return f"{value}, as in the {DEFAULT_RECIPE} recipe"


def run(args: argparse.Namespace) -> int:
    from tcdn import runlock
    from tcdn.training.checkpoint import check_run_folder
    from tcdn.training.config import TrainConfig
    from tcdn.training.run import cpu_scale_hint, resume_checkpoint, train

    main = os.environ.get("RANK", "0") in ("", "0")
    if not main:  # under torchrun: rank 0 speaks for all
        logging.getLogger().setLevel(logging.WARNING)
        args.no_progress = True
    if main:
        check_run_folder(args.out)
    if args.resume:
        cfg = _resumed_config(args)
    else:
        cfg = TrainConfig.from_sources(
            args.config,
            {name: getattr(args, name) for name in CONFIG_FLAGS},
            args.overrides,
            defaults={**_recipe_options(args), **({"image_size": args.size} if args.size else {})},
        )
        resume_checkpoint(args.out, False)  # a run folder with checkpoints needs --resume
    if args.size is not None and args.size != cfg.image_size:
        raise TcdnError(
            f"--size {args.size} differs from the network's --image-size {cfg.image_size}: give one of them"
        )
    dev = device(args.device)
    hint = cpu_scale_hint(cfg, dev)
    if hint and main:
        log.warning("%s", hint)
    with runlock.hold(args.out) if main else contextlib.nullcontext():
        start = resume_checkpoint(args.out, True) if args.resume else None  # before decoding
        if start is not None:
            _check_resumable(start, cfg)
        frames = load_collection(args, cfg.image_size)
        ckpt = train(
            frames,
            cfg,
            args.out,
            resume=start if start is not None else False,
            device=dev,
            progress=progress(args),
        )
    log.info("last checkpoint: %s", ckpt)
    return 0


def _recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``--recipe`` (``best`` when neither it nor ``--config`` is given)."""
    from tcdn.training.recipes import DEFAULT_RECIPE, recipe

    if args.config is not None:
        if args.recipe is not None:
            raise TcdnError("--recipe and --config both say where the options start: give one")
        return {}
    return recipe(args.recipe or DEFAULT_RECIPE).to_dict()


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The training options this command line sets: a --config file's, the flags', --set's."""
    from tcdn.training.config import TrainConfig, parse_overrides

    given: dict[str, Any] = {}
    if args.recipe:
        from tcdn.training.recipes import recipe

        given.update(recipe(args.recipe).to_dict())
    if args.config:
        given.update(TrainConfig.from_yaml(args.config).to_dict())
    given.update({k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None})
    given.update(parse_overrides(args.overrides))
    if args.size is not None:
        given.setdefault("image_size", args.size)
    return given


def _option_name(key: str) -> str:
    return f"--{key.replace('_', '-')}" if key in CONFIG_FLAGS else f"--set {key}=..."


def _resumed_config(args: argparse.Namespace) -> Any:
    """The config of the run being resumed: its own config.yaml, extended by the options given
    now that may change on resume (--steps...); any other option that differs is an error,
    reported before anything is decoded."""
    from tcdn.training.config import RESUMABLE_CHANGES, TrainConfig

    path = args.out / "config.yaml"
    if not path.is_file():
        raise TcdnError(
            f"--resume: {args.out} has no config.yaml, so it holds no run to continue: run "
            "without --resume to start one"
        )
    saved = TrainConfig.from_yaml(path).resolved()
    given = _given_options(args)
    merged = TrainConfig.from_dict({**saved.to_dict(), **given}).resolved()
    before, after = saved.to_dict(), merged.to_dict()
    conflicts = [
        f"{k} is {before[k]!r} in the run, {after[k]!r} given ({_option_name(k)})"
        for k in given
        if k not in RESUMABLE_CHANGES and before[k] != after[k]
    ]
    if conflicts:
        raise TcdnError(
            f"--resume continues {args.out} with its own {path.name}, and these options differ: "
            f"{'; '.join(conflicts)}. Only {', '.join(RESUMABLE_CHANGES)} may change on resume: "
            "drop the others (or train into another --out)"
        )
    changed = [k for k in given if before[k] != after[k]]
    if changed:
        log.info("resuming with %s", ", ".join(f"{k} {before[k]} -> {after[k]}" for k in changed))
    return merged


def _check_resumable(ckpt: dict[str, Any], cfg: Any) -> None:
    """The checkpoint to resume must belong to this config (but for resumable options)."""
    from tcdn.training.config import RESUMABLE_CHANGES, TrainConfig

    saved = TrainConfig.from_dict(ckpt["config"]).resolved().to_dict()
    mine = cfg.resolved().to_dict()
    differ = sorted(k for k, v in saved.items() if k not in RESUMABLE_CHANGES and mine[k] != v)
    if differ:
        raise TcdnError(
            f"cannot resume {ckpt['path']}: its config differs from the run's config.yaml in "
            f"{', '.join(differ)}; the run folder was changed by hand: train into another --out"
        )


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted `tcdn train` kept, and how to continue it."""
    from tcdn.training.checkpoint import checkpoint_step, list_checkpoints

    ckpts = list_checkpoints(args.out)
    if not ckpts:
        return f"no checkpoint was written to {args.out}: run the same command again to start over"
    cmd = f"tcdn train {shlex.quote(str(args.videos))} --out {shlex.quote(str(args.out))} --resume"
    return (
        f"the run is kept in {ckpts[-1]} (step {checkpoint_step(ckpts[-1])}); `{cmd}` continues it"
    )
