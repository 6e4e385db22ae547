"""``tcdn generate``: write the synthetic labelled videos to a folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tcdn.cli.common import positive_int, progress, seed_int

log = logging.getLogger("tcdn")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write the synthetic labelled videos to a folder")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument(
        "--classes", type=positive_int, default=6, help="number of categories (default: 6)"
    )
    p.add_argument(
        "--videos-per-class",
        type=positive_int,
        default=10,
        help="videos per category (default: 10)",
    )
    p.add_argument(
        "--min-frames",
        type=positive_int,
        default=60,
        help="shortest video in frames (default: 60)",
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=120,
        help="longest video in frames (default: 120)",
    )
    p.add_argument(
        "--size", type=positive_int, default=64, help="frame side in pixels (default: 64)"
    )
    p.add_argument(
        "--hue-spread",
        type=float,
        default=0.1,
        help="per-video colour nuisance, a fraction of the colour wheel in [0, 0.5] (default: 0.1); "
        "0.5 makes colour identify each video more strongly than its category does",
    )
    p.add_argument(
        "--seed", type=seed_int, default=0, help="seed; the same seed writes the same videos"
    )
    p.set_defaults(run=run, interrupted=interrupted)


def interrupted(args: argparse.Namespace) -> str:
    return f"the videos written so far are in {args.out}; run the same command again to finish"


def run(args: argparse.Namespace) -> int:
    from tcdn.data.synthetic import SyntheticConfig, generate

    cfg = SyntheticConfig(
        n_classes=args.classes,
        videos_per_class=args.videos_per_class,
        min_frames=args.min_frames,
        max_frames=args.max_frames,
        size=args.size,
        seed=args.seed,
        hue_spread=args.hue_spread,
    )
    path = generate(args.out, cfg, progress=progress(args))
    log.info("labels in %s", path)
    return 0
