"""The files of a report inside a results folder, and the rule that guards them: tcdn writes into
(and deletes from) ``RESULTS/report/`` only when that folder holds its marker, and replaces
``RESULTS/report.html`` only when the page says tcdn made it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from tcdn.errors import TcdnError
from tcdn.outputs import atomic_writer, sub_folder, write_atomic

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
    sub_folder(results_dir, REPORT_DIR)
    write_atomic(report / MARKER, "written by tcdn: its files are replaced by the next report\n")
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
    if report.is_symlink():
        raise TcdnError(
            f"{report} is a symbolic link: tcdn never writes its report through a link (into a "
            "folder it may not own): remove the link, or choose another folder"
        )
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


def remove_report(results_dir: str | Path) -> bool:
    """Remove the report tcdn wrote in ``results_dir``, if any: ``report.html`` when it carries
    tcdn's generator tag, and in ``report/`` (only with its marker) the page's pictures, the
    samples, the map and the sample frames; any other file is left, and a folder is removed only
    once empty. Called when new results are written without a report, so that an old report never
    sits beside results it does not describe. Returns whether anything was removed."""
    results_dir = Path(results_dir)
    removed = False
    page = results_dir / PAGE
    if page.is_file() and not page.is_symlink():
        try:
            ours = GENERATOR in page.read_text(encoding="utf-8", errors="replace")[:2000]
        except OSError:
            ours = False
        if ours:
            page.unlink()
            removed = True
    report = results_dir / REPORT_DIR
    if report.is_dir() and not report.is_symlink() and (report / MARKER).is_file():
        frames = report / FRAMES_DIR
        known = [*report.glob("*.png"), report / SAMPLES_CSV, report / MAP_CSV]
        if frames.is_dir() and not frames.is_symlink():
            known += list(frames.glob("*.png"))
        for f in known:
            if f.is_file() and not f.is_symlink():
                f.unlink()
                removed = True
        for d in (frames, report):
            if d.is_dir() and not any(p.name != MARKER for p in d.iterdir()):
                (d / MARKER).unlink(missing_ok=True)
                d.rmdir()
    return removed


def write_csv(path: Path, header: list[str], rows: Any) -> None:
    """A CSV written to a temporary name beside ``path``, then renamed."""
    with atomic_writer(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV the report reads; :class:`TcdnError` naming it if it is unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TcdnError(f"cannot read {path}: {exc}") from exc


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``data`` written whole to ``path``, never through a symbolic link (:mod:`tcdn.outputs`)."""
    write_atomic(path, data)
