"""The ``tcdn`` command: one module per command, each holding its parser beside its handler.

A command module offers ``add_parser(sub)``, which declares its options (their choices read from
the library's light modules, so ``tcdn --help`` imports no torch) and sets ``run``, which checks
what the options ask for before any heavy work and calls the library, and ``interrupted``, which
says after a Ctrl-C what the command kept and how to continue.

The global flags (``-v``, ``-q``, ``--debug``, ``--no-progress``) are declared once
(:func:`tcdn.cli.common.add_global_args`) and accepted before or after the command's name.

Every problem a user can fix ends in one line naming the file or option and what to do, and a
non-zero exit status (2); no traceback unless ``--debug``. Log lines go to stderr; stdout carries
results only. Third-party libraries' informational log lines (and scikit-learn's convergence
warnings on tiny sets) are shown only with ``-v``.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Sequence

from tcdn import __version__
from tcdn.cli import (
    demo,
    discover,
    features,
    finetune,
    generate,
    ingest,
    report,
    run,
    search,
    sweep,
    train,
)
from tcdn.cli.common import add_global_args
from tcdn.errors import TcdnError

log = logging.getLogger("tcdn")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

#: the commands, in the order ``tcdn --help`` lists them
COMMANDS = (demo, generate, train, features, discover, report, search, finetune, ingest, sweep, run)

#: OS errors a user fixes (room, permissions, a missing or misplaced path): one line, status 2
_USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
    }
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcdn",
        description="Learn features from unlabelled video with temporal coherence; discover actions and scenes.",
    )
    parser.add_argument("--version", action="version", version=f"tcdn {__version__}")
    add_global_args(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    for name, command_parser in sub.choices.items():
        del name
        add_global_args(command_parser, command=True)
    return parser


class _Console(logging.Filter):
    """What reaches the console: tcdn's lines at the chosen level; other libraries' only from
    WARNING up (their INFO lines, e.g. faiss's "Could not load library with AVX512 support", only
    with -v); scikit-learn's ConvergenceWarning (tiny sets) only with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        if record.name == "py.warnings":
            return "ConvergenceWarning" not in record.getMessage()
        return record.levelno >= logging.WARNING or record.name.split(".")[0] == "tcdn"


def configure_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Console(verbose))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    if getattr(args, "quiet", False):  # -q hides every command's progress bars, decided here once
        args.no_progress = True
    try:
        return int(args.run(args))
    except TcdnError as exc:
        if args.debug:
            log.exception("error")
        log.error("%s", _one_line(str(exc)))
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.errno not in _USER_ERRNOS:
            raise
        from tcdn.outputs import os_error_hint

        if args.debug:
            log.exception("error")
        where = f"{exc.filename}: " if exc.filename else ""
        log.error("%s%s", where, os_error_hint(exc))
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        say = getattr(args, "interrupted", None)
        log.error("interrupted; %s", say(args) if say else "nothing more was written")
        return EXIT_INTERRUPTED
    finally:
        logging.captureWarnings(False)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
