"""A collection of videos: finding its videos and their labels.

A collection is a folder. A video is a file FFmpeg reads or a folder of frame images (one folder
per video, e.g. UCF101 frames extracted as JPEGs). Its videos are found either from a
``video,label`` CSV (``labels.csv`` in the folder, or one given explicitly) or by walking the
folder: a video inside a sub-folder takes the sub-folder's name as its label, a video directly in
the folder has no label. Labels are only ever used for evaluation.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ogv",
        ".flv",
        ".wmv",
        ".3gp",
    }
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
LABELS_CSV = "labels.csv"


@dataclass(frozen=True)
class VideoEntry:
    """One video of a collection: its file, a unique name, and its label (``None`` if unlabelled)."""

    path: Path
    name: str
    label: str | None = None


def first_few(names: Sequence[str], n: int = 5) -> str:
    """``names`` for a message: the first ``n``, then how many more."""
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _read_labels_csv(csv_path: Path, root: Path) -> list[VideoEntry]:
    try:
        with csv_path.open(
            newline="", encoding="utf-8-sig"
        ) as fh:  # -sig: tolerate a spreadsheet's BOM
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TcdnError(f"cannot read label file {csv_path}: {exc}") from exc
    if not rows:
        raise TcdnError(
            f"label file {csv_path} has no rows: it needs a header 'video,label' and one line per video"
        )
    if "video" not in header or "label" not in header:
        raise TcdnError(
            f"label file {csv_path} must have the columns 'video' and 'label' (found: {', '.join(header)}); "
            "'video' is a path relative to the collection folder"
        )
    entries = []
    missing = []
    for line_no, row in enumerate(rows, start=2):
        rel = (row["video"] or "").strip()
        label = (row["label"] or "").strip() or None
        if not rel:
            raise TcdnError(f"label file {csv_path}, line {line_no}: empty 'video' field")
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        if not (path.is_file() or path.is_dir()):  # a video file or a folder of frame images
            missing.append(f"{rel} (line {line_no})")
            continue
        entries.append(VideoEntry(path=path, name=rel, label=label))
    if missing:
        raise TcdnError(
            f"label file {csv_path} names {len(missing)} video(s) that do not exist under {root}: "
            f"{first_few(missing)}. "
            "Fix the paths (relative to the collection folder) or remove those lines."
        )
    seen: dict[Path, str] = {}
    for e in entries:
        key = e.path.resolve()
        if key in seen:
            raise TcdnError(
                f"label file {csv_path} lists the same video twice ({seen[key]!r} and {e.name!r}): keep one line"
            )
        seen[key] = e.name
    return entries


def _walk(root: Path) -> list[VideoEntry]:
    """The videos of a folder, labelled by their class sub-folder (hidden files skipped)."""
    entries = []
    frame_folders: set[Path] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden (e.g. a half-written .NAME.partial.mp4)
        suffix = path.suffix.lower()
        if suffix in IMAGE_EXTENSIONS and len(rel.parts) > 1:
            frame_folders.add(path.parent)  # a folder of frame images is one video
        if suffix not in VIDEO_EXTENSIONS:
            continue
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(VideoEntry(path=path, name=rel.as_posix(), label=label))
    for folder in frame_folders:
        rel = folder.relative_to(root)
        label = rel.parts[0] if len(rel.parts) > 1 else None
        entries.append(VideoEntry(path=folder, name=rel.as_posix(), label=label))
    return entries


def _with_unlisted_warning(
    entries: list[VideoEntry], root: Path, csv_path: Path
) -> list[VideoEntry]:
    """Say (a warning) how many videos of the folder a label file leaves out, and which: they
    are not ingested, trained on or clustered."""
    listed = {e.path.resolve() for e in entries}
    unlisted = [e.name for e in _walk(root) if e.path.resolve() not in listed]
    if unlisted:
        log.warning(
            "%s lists %d video(s), but %s holds %d more that it does not list: they are left out "
            "(%s). Add them to the label file to use them",
            csv_path,
            len(entries),
            root,
            len(unlisted),
            first_few(unlisted),
        )
    return entries


def find_videos(root: str | Path, labels_csv: str | Path | None = None) -> list[VideoEntry]:
    """List the videos of a collection folder, with their labels.

    Parameters
    ----------
    root
        The collection folder.
    labels_csv
        A ``video,label`` CSV whose ``video`` column holds paths relative to ``root``. When
        ``None``, ``root/labels.csv`` is used if it exists; otherwise labels come from the names
        of the sub-folders holding the videos.

    Raises
    ------
    TcdnError
        The folder does not exist, holds no video, or the CSV is malformed or names missing files.
    """
    root = Path(root)
    if not root.exists():
        raise TcdnError(
            f"video folder {root} does not exist: give the folder that holds your videos"
        )
    if not root.is_dir():
        raise TcdnError(f"{root} is not a folder: give the folder that holds your videos")
    if labels_csv is not None:
        csv_path = Path(labels_csv)
        if csv_path.is_dir():
            raise TcdnError(
                f"--labels {csv_path} is a folder: give the video,label CSV file (labels from "
                "class sub-folders need no --labels)"
            )
        if not csv_path.is_file():
            raise TcdnError(f"label file {csv_path} does not exist (option --labels)")
        return _with_unlisted_warning(_read_labels_csv(csv_path, root), root, csv_path)
    if (root / LABELS_CSV).is_file():
        return _with_unlisted_warning(
            _read_labels_csv(root / LABELS_CSV, root), root, root / LABELS_CSV
        )
    entries = _walk(root)
    entries.sort(key=lambda e: e.name)
    if not entries:
        raise TcdnError(
            f"no video found in {root} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))}, and for "
            "folders of frame images). Put videos in it, one sub-folder per class if you have labels, "
            "or add a labels.csv."
        )
    return entries
