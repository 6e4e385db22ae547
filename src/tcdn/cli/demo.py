"""``tcdn demo``: synthetic videos, a short run of the default recipe, the discovery of their
classes."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, device, positive_int, progress, seed_int
from tcdn.training.recipes import BEST_STEPS

log = logging.getLogger("tcdn")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate synthetic videos, train the default recipe (as a plain `tcdn train` does), "
        "discover their classes, print the table, write the report",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)"
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=BEST_STEPS,
        help=f"training steps (default: {BEST_STEPS}, the best recipe's)",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=10,
        help="clustering repeats for mean ± std (default: 10)",
    )
    p.add_argument(
        "--frame-stride",
        type=positive_int,
        default=2,
        help="score discovery on every S-th frame of each video (default: 2)",
    )
    p.add_argument(
        "--seed",
        type=seed_int,
        default=0,
        help="seed of the data, the training and the clustering",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    add_common_args(p)
    p.set_defaults(run=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    return (
        f"the videos and the checkpoints written so far are kept in {args.out}; run the same "
        "`tcdn demo` again to continue from them"
    )


def run(args: argparse.Namespace) -> int:
    from tcdn.demo import run_demo
    from tcdn.discovery.results import format_table

    results = run_demo(
        args.out,
        steps=args.steps,
        seed=args.seed,
        repeats=args.repeats,
        frame_stride=args.frame_stride,
        device=device(args.device),
        progress=progress(args),
        report=not args.no_report,
    )
    sys.stdout.write(format_table(results) + "\n")
    log.info("wrote %s, clusters.csv and videos.csv", args.out / "results.json")
    if not args.no_report:
        page = (args.out / "report.html").resolve()
        sys.stdout.write(f"\nthe report of this run: open {page} in a browser\n")
    return 0
