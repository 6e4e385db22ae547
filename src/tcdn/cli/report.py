"""``tcdn report``: the HTML page of a discovery, from its results folder alone."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tcdn.errors import TcdnError

log = logging.getLogger("tcdn")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="build the HTML report of a discovery from its results folder",
        description="Build RESULTS_DIR/report.html (pictures in RESULTS_DIR/report/) from what "
        "`tcdn discover` wrote there: the scores, the number of clusters and its evidence, the "
        "training curves of the run, a 2-D map of the features, sample frames of every cluster, "
        "timelines of untrimmed videos and the per-video summary. The page is static: open it "
        "in any browser, no network needed.",
    )
    p.add_argument("results", type=Path, metavar="RESULTS_DIR", help="the --out of tcdn discover")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tcdn.report.page import build_report

    if not args.results.is_dir():
        raise TcdnError(f"{args.results} is not a folder: give the --out folder of `tcdn discover`")
    page = build_report(args.results)
    sys.stdout.write(f"{page.resolve()}\n")
    log.info("open %s in a browser", page.resolve().as_uri())
    return 0
