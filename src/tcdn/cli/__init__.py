"""The ``tcdn`` command: one module per command, each holding its parser beside its handler.

A command module offers ``add_parser(sub)``, which declares its options (their choices read from
the library's light modules, so ``tcdn --help`` imports no torch) and sets ``run``, which checks
what the options ask for before any heavy work and calls the library.

Every problem a user can fix ends in one line naming the file or option and what to do, and a
non-zero exit status (2); no traceback unless ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tcdn import __version__
from tcdn.cli import demo, discover, features, generate, ingest, report, run, search, train
from tcdn.errors import TcdnError

log = logging.getLogger("tcdn")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

#: the commands, in the order ``tcdn --help`` lists them
COMMANDS = (demo, generate, train, features, discover, report, search, ingest, run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcdn",
        description="Learn features from unlabelled video with temporal coherence; discover actions and scenes.",
    )
    parser.add_argument("--version", action="version", version=f"tcdn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    try:
        return int(args.run(args))
    except TcdnError as exc:
        if args.debug:
            log.exception("error")
        log.error("%s", exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        log.error(
            "interrupted; checkpoints already written are complete and `--resume` continues from the last one"
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
