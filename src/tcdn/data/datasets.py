"""Readers for the official on-disk layouts of the datasets the paper uses (SPEC §7).

Each reader returns the :class:`~tcdn.data.collection.VideoEntry` list of one split, with labels,
ready for :func:`tcdn.data.store.ingest` (``tcdn ingest --dataset NAME``). A video may be the
original file or a folder of its frames extracted as images under the same name without the
extension (e.g. ``UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01/00001.jpg``).

Labels are used for evaluation only; training never reads them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tcdn.data.collection import VideoEntry, find_videos, first_few
from tcdn.errors import TcdnError

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
FIVE_CONTEXTS = ("car", "coffee_vending_machine", "office", "tv", "home_office")


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TcdnError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _first_existing(candidates: list[Path], what: str, hint: str) -> Path:
    for c in candidates:
        if c.exists():
            return c
    raise TcdnError(
        f"{what} not found (looked for {', '.join(str(c) for c in candidates)}): {hint}"
    )


def _video_path(videos_dir: Path, rel: str) -> Path | None:
    """The file ``rel`` under ``videos_dir``, or the folder of its extracted frames."""
    p = videos_dir / rel
    if p.is_file():
        return p
    frames = p.with_suffix("")
    return frames if frames.is_dir() else None


def _check_missing(missing: list[str], listing: Path, videos_dir: Path) -> None:
    if missing:
        raise TcdnError(
            f"{listing} names {len(missing)} video(s) missing under {videos_dir}: {first_few(missing)}. "
            "Extract the whole dataset there (or give its folder)"
        )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise TcdnError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")


# -- UCF101 ---------------------------------------------------------------------------------------
def ucf101(root: str | Path, split: str = "train", fold: int = 1) -> list[VideoEntry]:
    """The videos of UCF101 split ``fold`` (1-3), as the official files lay them out.

    Parameters
    ----------
    root
        A folder holding ``UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` (the videos, or folders of their
        frames) and ``ucfTrainTestlist/`` (``classInd.txt``, ``trainlist0K.txt``,
        ``testlist0K.txt``). Either part may also sit directly in ``root``.
    split
        ``train`` (``trainlist0K.txt``, 9,537 videos for split 1), ``test`` (``testlist0K.txt``,
        3,783) or ``all``.

    Returns
    -------
    list of VideoEntry
        Named by their list path (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``), labelled by
        the class of ``classInd.txt``, in list order (train before test for ``all``).
    """
    _check_split(split)
    if fold not in (1, 2, 3):
        raise TcdnError(f"UCF101 has splits 1, 2 and 3, not {fold} (option --fold)")
    root = Path(root)
    lists = _first_existing(
        [root / "ucfTrainTestlist", root],
        "UCF101 split files",
        f"put the official ucfTrainTestlist folder in {root}",
    )
    class_file = lists / "classInd.txt"
    if not class_file.is_file():
        raise TcdnError(
            f"UCF101: {class_file} not found: put the official ucfTrainTestlist folder in {root}"
        )
    videos_dir = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    classes: dict[str, str] = {}
    for line_no, line in _read_lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise TcdnError(
                f"{class_file}, line {line_no}: expected '<index> <ClassName>', got {line!r}"
            )
        classes[parts[1].lower()] = parts[1]
    names = {"train": ["trainlist"], "test": ["testlist"], "all": ["trainlist", "testlist"]}[split]
    entries: list[VideoEntry] = []
    for stem in names:
        listing = lists / f"{stem}{fold:02d}.txt"
        if not listing.is_file():
            raise TcdnError(
                f"UCF101: {listing} not found: put the official ucfTrainTestlist folder in {root}"
            )
        missing = []
        for line_no, line in _read_lines(listing):
            rel = line.split()[0].replace("\\", "/")
            cls = rel.split("/")[0]
            label = classes.get(cls.lower())
            if "/" not in rel or label is None:
                raise TcdnError(
                    f"{listing}, line {line_no}: {rel!r} is not '<Class>/<video>.avi' with a class of "
                    f"{class_file.name}"
                )
            path = _video_path(videos_dir, rel)
            if path is None:
                missing.append(rel)
                continue
            entries.append(VideoEntry(path=path, name=rel, label=label))
        _check_missing(missing, listing, videos_dir)
    log.info("UCF101 split %d %s: %d videos, %d classes", fold, split, len(entries), len(classes))
    return entries


# -- HMDB51 ---------------------------------------------------------------------------------------
_HMDB_SPLIT = re.compile(r"^(?P<action>.+)_test_split(?P<fold>[123])\.txt$")


def hmdb51(
    root: str | Path,
    split: str = "all",
    fold: int = 1,
    n_clips: int | None = None,
    seed: int = 0,
) -> list[VideoEntry]:
    """The clips of HMDB51 in its official layout, optionally a seeded random subset.

    Parameters
    ----------
    root
        A folder holding one folder per action with its ``.avi`` clips (``hmdb51_org/<action>/``
        or directly ``<action>/``) and ``testTrainMulti_7030_splits/<action>_test_split<k>.txt``,
        whose lines are ``<clip>.avi <0|1|2>`` (1: train, 2: test, 0: unused in that split).
    split
        ``train``, ``test`` or ``all`` (every clip in the action folders).
    fold
        Which of the three official splits decides ``train``/``test``.
    n_clips
        Keep a random subset of this many clips (the paper: 1,000), drawn with ``seed``.
    """
    _check_split(split)
    if fold not in (1, 2, 3):
        raise TcdnError(f"HMDB51 has splits 1, 2 and 3, not {fold} (option --fold)")
    root = Path(root)
    videos_dir = root / "hmdb51_org" if (root / "hmdb51_org").is_dir() else root
    entries: list[VideoEntry] = []
    if split == "all":
        entries = [
            e
            for e in find_videos(videos_dir)
            if e.label is not None and not e.name.startswith("testTrainMulti")
        ]
    else:
        splits_dir = _first_existing(
            [root / "testTrainMulti_7030_splits", videos_dir / "testTrainMulti_7030_splits"],
            "HMDB51 split files",
            f"put the official testTrainMulti_7030_splits folder in {root}",
        )
        want = "1" if split == "train" else "2"
        files = sorted(
            p
            for p in splits_dir.iterdir()
            if (m := _HMDB_SPLIT.match(p.name)) and m["fold"] == str(fold)
        )
        if not files:
            raise TcdnError(
                f"no <action>_test_split{fold}.txt in {splits_dir}: is it the official HMDB51 split folder?"
            )
        for listing in files:
            m = _HMDB_SPLIT.match(listing.name)
            assert m is not None
            action = m["action"]
            missing = []
            for line_no, line in _read_lines(listing):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise TcdnError(
                        f"{listing}, line {line_no}: expected '<clip>.avi <0|1|2>', got {line!r}"
                    )
                if parts[1] != want:
                    continue
                rel = f"{action}/{parts[0]}"
                path = _video_path(videos_dir, rel)
                if path is None:
                    missing.append(rel)
                    continue
                entries.append(VideoEntry(path=path, name=rel, label=action))
            _check_missing(missing, listing, videos_dir)
    if not entries:
        raise TcdnError(f"HMDB51: no clip found for split {split!r} under {root}")
    if n_clips is not None:
        if n_clips > len(entries):
            raise TcdnError(
                f"--clips {n_clips} is more than the {len(entries)} clips of HMDB51 {split}: give fewer"
            )
        keep = np.sort(np.random.default_rng(seed).choice(len(entries), n_clips, replace=False))
        entries = [entries[i] for i in keep]
    log.info("HMDB51 %s: %d clips", split, len(entries))
    return entries


# -- 5-Contexts -----------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


_TRAIN_DIRS = {"train", "training", "training_set", "trainset"}
_TEST_DIRS = {"test", "testing", "test_set", "testset"}
_CONTEXT_ALIASES = {
    "coffee": "coffee_vending_machine",
    "coffee_machine": "coffee_vending_machine",
    "coffee_vending": "coffee_vending_machine",
    "vending_machine": "coffee_vending_machine",
    "homeoffice": "home_office",
    "television": "tv",
}


def _context_of(parts: list[str]) -> str | None:
    """The context named by a path: a component or file stem equal to (or starting with) one."""
    for part in reversed(parts):
        n = _norm(Path(part).stem if part == parts[-1] else part)
        n = _CONTEXT_ALIASES.get(n, n)
        for ctx in sorted(FIVE_CONTEXTS, key=len, reverse=True):  # home_office before office
            if n == ctx or n.startswith(ctx + "_") or n.endswith("_" + ctx):
                return ctx
    return None


def five_contexts(root: str | Path, split: str = "train") -> list[VideoEntry]:
    """The videos of the 5-Contexts dataset (Furnari et al. 2015), labelled by context.

    The official release could not be inspected from here, so the reader assumes the layout its
    paper describes and accepts its common variants: somewhere under ``root``, a folder named
    ``train``/``training`` (5 contexts x 4 wearable cameras, 10 s each) and one named
    ``test``/``testing`` (one 8-10 min video per context and camera). Inside them, the context
    of a video is the path component or file-name stem that names one of ``car``,
    ``coffee_vending_machine``, ``office``, ``tv``, ``home_office`` (case, spaces and dashes
    ignored; e.g. ``training/looxcie/car/video.mp4`` or ``test/Office.avi``). A video whose path
    names no context raises an error naming it.

    Parameters
    ----------
    split
        ``train``, ``test`` or ``all``.
    """
    _check_split(split)
    root = Path(root)
    entries: list[VideoEntry] = []
    unlabelled = []
    for e in find_videos(root):
        parts = e.name.split("/")
        dirs = {_norm(p) for p in parts[:-1]}
        in_train, in_test = bool(dirs & _TRAIN_DIRS), bool(dirs & _TEST_DIRS)
        which = "train" if in_train else "test" if in_test else None
        if which is None or (split != "all" and which != split):
            continue
        ctx = _context_of(parts)
        if ctx is None:
            unlabelled.append(e.name)
            continue
        entries.append(VideoEntry(path=e.path, name=e.name, label=ctx))
    if unlabelled:
        raise TcdnError(
            f"5-Contexts: {len(unlabelled)} video(s) under {root} name no context "
            f"({', '.join(FIVE_CONTEXTS)}), e.g. {unlabelled[0]}: put each in a folder named after its context"
        )
    if not entries:
        raise TcdnError(
            f"5-Contexts: no {split} video under {root}: expected folders named train/training and "
            "test/testing holding the videos"
        )
    log.info("5-Contexts %s: %d videos", split, len(entries))
    return entries


#: name -> reader, for ``tcdn ingest --dataset``
DATASETS: dict[str, Callable[..., list[VideoEntry]]] = {
    "ucf101": ucf101,
    "hmdb51": hmdb51,
    "5contexts": five_contexts,
}


def read_dataset(
    name: str,
    root: str | Path,
    *,
    split: str | None = None,
    fold: int = 1,
    clips: int | None = None,
    seed: int = 0,
) -> list[VideoEntry]:
    """The videos of the dataset ``name`` (one of :data:`DATASETS`) under ``root``: the options
    of ``tcdn ingest --dataset``, checked, with each dataset's default split (``train`` for
    UCF101 and 5-Contexts, ``all`` for HMDB51). ``clips`` and ``seed`` draw HMDB51's subset."""
    if name not in DATASETS:
        raise TcdnError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    root = Path(root)
    if not root.is_dir():
        raise TcdnError(f"dataset folder {root} does not exist: give the {name} root")
    if clips is not None and name != "hmdb51":
        raise TcdnError("--clips is for --dataset hmdb51")
    if name == "hmdb51":
        return hmdb51(root, split=split or "all", fold=fold, n_clips=clips, seed=seed)
    if name == "ucf101":
        return ucf101(root, split=split or "train", fold=fold)
    return five_contexts(root, split=split or "train")


__all__ = [
    "DATASETS",
    "FIVE_CONTEXTS",
    "SPLITS",
    "five_contexts",
    "hmdb51",
    "read_dataset",
    "ucf101",
]
