"""``tcdn run``: one experiment of a YAML config (configs/paper/), end to end."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tcdn.cli.common import add_common_args, device, positive_int, progress

log = logging.getLogger("tcdn")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run an experiment config (configs/paper/*.yaml): ingest, train, discover, report",
        description="Run one experiment config end to end on datasets in their official layouts: "
        "ingest the training split into a frame store, train (resuming the run if it exists), "
        "ingest the evaluation split, discover, and write OUT/results/NAME/ (results.json beside "
        "the paper's numbers, clusters.csv, videos.csv, report.html). Stores and runs are shared "
        "by the experiments that need the same ones.",
    )
    p.add_argument(
        "config", type=Path, help="the experiment YAML, e.g. configs/paper/ucf101-lq-fc6.yaml"
    )
    p.add_argument(
        "--data-root",
        type=Path,
        required=True,
        help="the folder holding the datasets, each in its official layout in the folder the "
        "config names (ucf101/, 5contexts/, hmdb51/)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("paper-runs"),
        help="where stores, runs and results go (default: paper-runs)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="change an option of the config, e.g. --set train.steps=1000 --set discover.repeats=3 "
        "(values read as YAML); repeatable",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="decoding processes for the ingests (default: all cores)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    add_common_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tcdn.discovery.results import format_table
    from tcdn.experiment import load_experiment, run_experiment

    exp = load_experiment(args.config, args.overrides)
    results = run_experiment(
        exp,
        args.data_root,
        args.out,
        device=device(args.device),
        workers=args.workers,
        progress=progress(args),
        report=not args.no_report,
    )
    paper = exp.paper
    if exp.discover is None:  # a transfer experiment (Tables 4-6)
        from tcdn.transfer.results import format_table as transfer_table

        said = ", ".join(f"{m} {paper[m]}" for m in ("random_init", "trained") if m in paper)
        lines = [transfer_table(results)]
    else:
        said = ", ".join(f"{m} {paper[m]}" for m in ("kmeans", "spectral") if m in paper)
        lines = [format_table(results)]
    if said:
        lines.append(
            f"the paper (table {paper.get('table', '?')}, {paper.get('row', exp.name)}): {said}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    where = args.out / "results" / exp.name
    report = not args.no_report and exp.discover is not None
    log.info("wrote %s%s", where, f"; open {(where / 'report.html').resolve()}" if report else "")
    return 0
