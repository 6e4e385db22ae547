"""The files of a report inside a results folder, and the rule that guards them: tcdn writes into
(and deletes from) ``RESULTS/report/`` only when that folder holds its marker, and replaces
``RESULTS/report.html`` only when the page says tcdn made it."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from tcdn.errors import TcdnError

REPORT_DIR = "report"
PAGE = "report.html"
MARKER = ".tcdn-report"
SAMPLES_CSV = "samples.csv"
MAP_CSV = "map.csv"
FRAMES_DIR = "frames"
#: the page's generator tag: a report.html without it is not tcdn's and is never replaced
GENERATOR = '<meta name="generator" content="tcdn report">'


def claim_report_dir(results_dir: Path) -> Path:
    """``RESULTS/report/``, created with its marker; :class:`TcdnError` if it exists without
    one (tcdn did not write it, so it is left alone), or if ``RESULTS/report.html`` is not
    tcdn's (:func:`check_report_dir`)."""
    report = check_report_dir(results_dir)
    report.mkdir(parents=True, exist_ok=True)
    (report / MARKER).write_text("written by tcdn: its files are replaced by the next report\n")
    return report


def check_report_dir(results_dir: str | Path) -> Path:
    """Check, before any work, that a report can be written in ``results_dir`` without touching
    a file tcdn did not write; returns ``RESULTS/report/`` (not created)."""
    results_dir = Path(results_dir)
    page = results_dir / PAGE
    if page.exists():
        try:
            head = page.read_text(encoding="utf-8", errors="replace")[:2000]
        except OSError as exc:
            raise TcdnError(f"cannot read {page}: {exc}") from exc
        if GENERATOR not in head:
            raise TcdnError(
                f"{page} exists and was not written by tcdn: move it, or choose another folder"
            )
    report = results_dir / REPORT_DIR
    if report.exists():
        if not report.is_dir():
            raise TcdnError(
                f"{report} is a file, not tcdn's report folder: move it, or choose another folder"
            )
        if not (report / MARKER).is_file() and any(report.iterdir()):
            raise TcdnError(
                f"{report} exists and was not written by tcdn (no {MARKER} in it): move it, or "
                "choose another folder"
            )
    return report


def write_csv(path: Path, header: list[str], rows: Any) -> None:
    """A CSV written to a temporary name beside ``path``, then renamed."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV the report reads; :class:`TcdnError` naming it if it is unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TcdnError(f"cannot read {path}: {exc}") from exc


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    os.replace(tmp, path)
