"""``tcdn sweep``: a recipe study (recipes x data sets x training seeds), resumable."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, device, positive_int, progress

log = logging.getLogger("tcdn")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train and score a grid of recipes x data sets x training seeds; one table",
        description="Run a recipe study from a YAML spec (see tcdn.sweep.spec or the README): every "
        "cell trains, extracts, clusters and scores exactly as `tcdn train` and `tcdn discover` do; "
        "the baselines run once per data set. Finished cells are kept: run the same command again "
        "to continue a stopped sweep. Writes table.csv, table.json, summary.md and the training "
        "curves to --out.",
    )
    p.add_argument("spec", type=Path, help="the sweep spec (YAML)")
    p.add_argument("--out", type=Path, required=True, help="the sweep folder to create or continue")
    p.add_argument(
        "--train-seeds",
        type=positive_int,
        default=None,
        help="independently trained networks per recipe and data set (default: the spec's, else 3)",
    )
    add_common_args(p)
    p.set_defaults(run=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    return (
        f"the cells finished so far (and any training's checkpoints) are kept in {args.out}; run "
        "the same `tcdn sweep` again to continue"
    )


def run(args: argparse.Namespace) -> int:
    from tcdn.sweep.run import run_sweep
    from tcdn.sweep.spec import SweepSpec

    spec = SweepSpec.from_yaml(args.spec, train_seeds=args.train_seeds)
    dev = device(args.device)
    run_sweep(spec, args.out, device=dev, progress=progress(args))
    sys.stdout.write((args.out / "summary.md").read_text())
    log.info(
        "wrote %s, %s and %s",
        args.out / "table.csv",
        args.out / "table.json",
        args.out / "summary.md",
    )
    return 0
