"""The fault matrix: every bad input through every command it applies to.

Each case runs ``tcdn`` in-process on a shared, read-only tree of inputs (:func:`world`) and
asserts what a user must get: exit status 2, no traceback, a message that names the file or the
option at fault, and no file outside the case's own output folder changed (the input tree is
hashed before and after). Bad collections hold two good tiny videos beside the bad file, so the
command gets as far as it can before it meets it.

The cases are listed in :data:`CASES`; ``len(CASES)`` is the figure the issue asks for.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tcdn.cli import EXIT_USER_ERROR, main
from tcdn.errors import TcdnError
from tests.cli.fault_world import (
    HUGE,
    ODD,
    PAPER_CONFIG,
    api_transfer_results,
    api_write_report,
    api_write_results,
    build_world,
    discovery_folder,
    foreign,
    linked,
    linked_folder,
    marked,
    run_folder,
    run_marker,
    store_marker,
    tiny_features,
)
from tests.cli.fault_world import hash_tree as _hash_tree
from tests.cli.fault_world import stat_tree as _stat_tree


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input of the matrix, built once (:func:`build_world`); no case may change any of it."""
    w = build_world(tmp_path_factory.mktemp("world"))
    _BEFORE["stat"], _BEFORE["hash"] = _stat_tree(w), _hash_tree(w)
    return w


#: the world as it was built: what every case must leave as it found
_BEFORE: dict[str, dict[str, object]] = {}


@dataclass(frozen=True)
class Case:
    """One bad input through one command: ``argv(world, out)`` and what the message must name
    (``{w}`` stands for the world folder, ``{o}`` for the case's output)."""

    id: str
    argv: Callable[[Path, Path], list[str]]
    needles: tuple[str, ...]
    absent: tuple[str, ...] = ()  # advice the message must not give (numpy's, a wrong option)


def _train(videos: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda w, o: [
        "train", str(w / videos), "--out", str(o / "run"), "--config", str(w / "small.yaml"),
        "--no-progress", *extra,
    ]  # fmt: skip


def _ingest(videos: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda w, o: [
        "ingest", str(w / videos), "--out", str(o / "store"), "--size", "24", "--strict",
        "--workers", "1", "--no-progress", *extra,
    ]  # fmt: skip


def _features(videos: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    source = [] if "--checkpoint" in extra else ["--source", "raw_pixels"]
    return lambda w, o: [
        "features", str(w / videos), "--out", str(o / "f.npz"), *source, "--no-progress",
        *[e.format(w=w, o=o) for e in extra],
    ]  # fmt: skip


def _discover(videos: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    return lambda w, o: [
        "discover", str(w / videos), "--out", str(o / "res"), "--repeats", "1", "--no-progress",
        *[e.format(w=w, o=o) for e in extra],
    ]  # fmt: skip


def _raw(*argv: str) -> Callable[[Path, Path], list[str]]:
    return lambda w, o: [a.format(w=w, o=o) for a in argv]


_DEMO = ("demo", "--out", "{o}/res", "--steps", "1", "--repeats", "1", "--no-progress")
_FT = (
    "finetune", "{w}/good", "--dataset", "videos", "--checkpoint", "{w}/ckpt/good.pt",
    "--out", "{o}/res", "--repeats", "1", "--epochs", "1", "--no-progress",
)  # fmt: skip

ON_COLLECTIONS = {"ingest": _ingest, "train": _train, "features": _features, "discover": _discover}

CASES: list[Case] = []

# -- bad files in a collection, through every command that reads a collection -------------------
BAD_FILES = {
    "corrupt": "corrupt.mp4",
    "truncated": "truncated.mp4",
    "zero": "zero.mp4",
    "audio": "audio.mp4",
    "codec": "codec.avi",
    "jpeg": "001.jpg",
}
for kind, needle in BAD_FILES.items():
    for cmd, make in ON_COLLECTIONS.items():
        CASES.append(Case(f"{cmd}-{kind}-video", make(f"bad-{kind}"), (needle,)))
for cmd, make in ON_COLLECTIONS.items():
    CASES.append(Case(f"{cmd}-odd-name", make(f"dir {ODD}"), (f"{ODD}.mp4",)))
    CASES.append(Case(f"{cmd}-missing-folder", make(f"no {ODD}"), (f"no {ODD}", "does not exist")))

# -- every label-file fault, through every command ----------------------------------------------
LABEL_FAULTS = {
    "columns": "must have the columns",
    "missing": "a/gone.mp4",
    "empty": "has no rows",
    "twice": "the same video twice",
    "blank": "empty 'video' field",
    "binary": "cannot read label file",
}
for kind, needle in LABEL_FAULTS.items():
    for cmd, make in ON_COLLECTIONS.items():
        CASES.append(Case(f"{cmd}-csv-{kind}", make(f"csv-{kind}"), ("labels.csv", needle)))
for cmd in ON_COLLECTIONS:
    CASES.append(
        Case(
            f"{cmd}-labels-is-a-folder",
            lambda w, o, c=cmd: [*ON_COLLECTIONS[c]("good")(w, o), "--labels", str(w / "good")],
            ("--labels", "is a folder"),
        )
    )
    CASES.append(
        Case(
            f"{cmd}-labels-missing",
            lambda w, o, c=cmd: [*ON_COLLECTIONS[c]("good")(w, o), "--labels", str(w / "no.csv")],
            ("no.csv", "does not exist"),
        )
    )

# -- collections too small for what is asked ----------------------------------------------------
CASES += [
    Case("train-too-short", _train("short"), ("s1.mp4", "use longer videos")),
    Case("train-single-video", _train("single"), ("--mu",)),
    Case(
        "train-one-frame-is-no-second-video",
        _train("one-frame"),
        ("v1.mp4", "1 shorter one(s) skipped", "--mu"),
    ),
    # discover-single-video and discover-one-class are no faults since discovery works without
    # labels: see test_one_class_is_clustered_and_left_unscored below
]

# -- damaged frame stores, through every command that reads one ---------------------------------
for name, needle in (("store-truncated", "damaged"), ("store-incomplete", "incomplete")):
    CASES += [
        Case(f"train-{name}", _train(name), (name, needle)),
        Case(f"features-{name}", _features(name, "--size", "40"), (name, needle)),
        Case(f"discover-{name}", _discover(name, "--size", "40"), (name, needle)),
    ]

# -- checkpoints that cannot be used, through every command that reads one ----------------------
CKPT_FAULTS = {
    "truncated": "truncated or damaged",
    "random": "not a PyTorch zip file",
    "zero": "empty",
    "shapes": "do not fit",
    "nosize": "no image_size",
    "huge": "more than this machine's",
}
for kind, needle in CKPT_FAULTS.items():
    CASES += [
        Case(
            f"features-ckpt-{kind}",
            _features("store40", "--checkpoint", f"{{w}}/ckpt/{kind}.pt"),
            (f"{kind}.pt", needle),
        ),
        Case(
            f"discover-ckpt-{kind}",
            _discover("store40", "--checkpoint", f"{{w}}/ckpt/{kind}.pt"),
            (f"{kind}.pt", needle),
        ),
        Case(
            f"train-resume-ckpt-{kind}",
            _raw(
                "train", "{w}/store40", "--out", f"{{w}}/runs/{kind}", "--resume", "--no-progress"
            ),
            ("step_00000002.pt", needle.replace("truncated or damaged", "damaged")),
        ),
    ]
CASES += [
    Case("features-ckpt-missing", _features("good", "--checkpoint", "{o}/none.pt"), ("none.pt",)),
    Case("discover-ckpt-missing", _discover("good", "--checkpoint", "{o}/none.pt"), ("none.pt",)),
    Case(
        "train-resume-no-checkpoint",
        _raw("train", "{w}/good", "--out", "{w}/runs/none", "--resume", "--no-progress"),
        ("--resume", "no checkpoint"),
    ),
    Case(
        "train-resume-conflict",
        _raw("train", "{w}/store40", "--out", "{w}/runs/shapes", "--resume", "--lr", "0.5"),
        ("--lr", "lr is 0.001 in the run"),
    ),
]

# -- output paths that cannot or must not be written --------------------------------------------
CASES += [
    Case("train-out-is-a-file", _raw("train", "{w}/good", "--out", "{w}/a_file.txt"), ("a_file.txt", "is a file")),
    Case("ingest-out-is-a-file", _raw("ingest", "{w}/good", "--out", "{w}/a_file.txt"), ("a_file.txt", "is a file")),
    Case("discover-out-is-a-file", _raw("discover", "{w}/good", "--out", "{w}/a_file.txt"), ("a_file.txt", "is a file")),
    Case("features-out-under-a-file", _raw("features", "{w}/good", "--source", "raw_pixels", "--out", "{w}/a_file.txt/x.npz"), ("a_file.txt", "not a folder")),
    Case("features-out-is-a-folder", _raw("features", "{w}/good", "--source", "raw_pixels", "--out", "{w}/good"), ("--out", "is a folder")),
    Case("features-out-is-not-ours", _raw("features", "{w}/good", "--source", "raw_pixels", "--out", "{w}/mine.npz"), ("mine.npz", "not written by tcdn")),
    Case("ingest-out-under-a-file", _raw("ingest", "{w}/good", "--out", "{w}/a_file.txt/store"), ("a_file.txt", "not a folder")),
    Case("ingest-into-foreign-folder", _raw("ingest", "{w}/foreign/data", "--out", "{w}/foreign"), ("foreign", "not a tcdn frame store")),
    Case("ingest-into-its-own-source", _raw("ingest", "{w}/good", "--out", "{w}/good"), ("good", "not empty")),
    Case("train-into-foreign-folder", _raw("train", "{w}/good", "--out", "{w}/foreign"), ("foreign", "not a tcdn training run")),
    Case("train-into-a-store", _raw("train", "{w}/good", "--out", "{w}/store"), ("store", "frame store folder, not a training run")),
    Case("discover-over-foreign-results", _raw("discover", "{w}/good", "--out", "{w}/results-foreign"), ("results.json", "did not write")),
    Case("ingest-verify-not-a-store", _raw("ingest", "--verify", "--out", "{w}/foreign"), ("foreign", "not a frame store")),
    Case("ingest-verify-damaged", _raw("ingest", "--verify", "--out", "{w}/store-truncated"), ("store-truncated", "damaged")),
]  # fmt: skip

# -- bad options and values ---------------------------------------------------------------------
CASES += [
    Case("train-seed-negative", _train("good", "--seed", "-1"), ("--seed", ">= 0")),
    Case("features-seed-negative", _features("good", "--seed", "-1"), ("--seed", ">= 0")),
    Case("discover-seed-negative", _discover("good", "--seed", "-1"), ("--seed", ">= 0")),
    Case("ingest-seed-negative", _ingest("good", "--seed", "-1"), ("--seed", ">= 0")),
    Case("demo-seed-negative", _raw("demo", "--out", "{o}/demo", "--seed", "-1"), ("--seed",)),
    Case("generate-seed-negative", _raw("generate", "{o}/gen", "--seed", "-1"), ("--seed",)),
    Case("train-config-seed-negative", _train("good", "--set", "seed=-1"), ("seed=-1",)),
    Case("ingest-size-1", _ingest("good", "--size", "1"), ("--size", ">= 16")),
    Case("train-size-1", _train("good", "--size", "1"), ("--size", ">= 16")),
    Case("features-size-1", _features("good", "--size", "1"), ("--size", ">= 16")),
    Case("discover-size-1", _discover("good", "--size", "1"), ("--size", ">= 16")),
    Case("ingest-size-huge", _ingest("good", "--size", str(HUGE)), ("--size", "GiB")),
    Case("train-size-huge", _train("good", "--size", str(HUGE)), ("--size", "GiB")),
    Case("train-config-size-huge", _train("good", "--set", f"image_size={HUGE}"), ("image_size", "GiB")),
    Case("features-size-huge", _features("good", "--size", str(HUGE)), ("--size", "GiB")),
    Case("generate-size-huge", _raw("generate", "{o}/g", "--size", str(HUGE)), ("--size", "GiB")),
    Case("finetune-size-huge", _raw(*_FT, "--size", str(HUGE)), ("--size", "GiB")),
    Case("discover-size-huge", _discover("good", "--size", str(HUGE)), ("--size", "GiB")),
    Case("train-steps-0", _train("good", "--steps", "0"), ("--steps", ">= 1")),
    Case("train-lr-text", _train("good", "--lr", "fast"), ("--lr",)),
    Case("train-device-bogus", _train("good", "--device", "tpu"), ("--device",)),
    Case("train-precision-bogus", _train("good", "--precision", "fp8"), ("--precision",)),
    Case("train-set-malformed", _train("good", "--set", "lr"), ("--set", "option=value")),
    Case("train-set-unknown", _train("good", "--set", "speed=2"), ("speed",)),
    Case("train-model-option-type", _train("good", "--set", "model_options={fc6_dim: big}"), ("model_options", "fc6_dim='big' must be of type int")),
    Case("train-model-option-unknown", _train("good", "--set", "model_options={fc9: 1}"), ("model_options", "no option 'fc9'")),
    Case("train-model-option-nested", _train("good", "--set", "model_options={conv: [[1, 2]]}"), ("model_options", "conv=")),
    Case("train-config-missing", _raw("train", "{w}/good", "--out", "{o}/r", "--config", "{o}/none.yaml"), ("none.yaml",)),
    Case("train-config-not-yaml", _raw("train", "{w}/good", "--out", "{o}/r", "--config", "{w}/ckpt/random.pt"), ("random.pt",)),
    Case("discover-k-1", _discover("good", "--k", "1"), ("--k",)),
    Case("discover-k-too-many", _discover("good", "--k", "500"), ("--k 500",)),
    Case("discover-methods-empty", _discover("good", "--methods", ","), ("--methods",)),
    Case("discover-methods-unknown", _discover("good", "--methods", "dbscan"), ("dbscan",)),
    Case("discover-sources-empty", _discover("good", "--sources", ","), ("--sources",)),
    Case("discover-sources-trained-no-ckpt", _discover("good", "--sources", "trained"), ("--checkpoint",)),
    Case("discover-repeats-0", _discover("good", "--repeats", "0"), ("--repeats",)),
    Case("discover-frame-stride-0", _discover("good", "--frame-stride", "0"), ("--frame-stride",)),
    Case("discover-layer-unknown", _discover("good", "--layer", "fc9"), ("--layer", "fc9")),
    Case("features-layer-unknown", _features("good", "--source", "random_init", "--layer", "fc9"), ("--layer", "fc9")),
    Case("features-trained-no-ckpt", _raw("features", "{w}/good", "--out", "{o}/f.npz"), ("--checkpoint",)),
    Case("discover-no-input", _raw("discover", "--out", "{o}/r"), ("exactly one input",)),
    Case("discover-features-random", _raw("discover", "--features", "{w}/features/random.npz", "--out", "{o}/r"), ("random.npz",)),
    Case("discover-features-arrays", _raw("discover", "--features", "{w}/features/no_video.npz", "--out", "{o}/r"), ("no_video.npz",)),
    Case("discover-features-missing", _raw("discover", "--features", "{o}/none.npz", "--out", "{o}/r"), ("none.npz",)),
    Case("discover-features-not-a-zip", _raw("discover", "--features", "{w}/features/text.npz", "--out", "{o}/r"), ("text.npz", "not a numpy .npz archive"), ("allow_pickle", "pickle.load")),
    Case("discover-features-objects", _raw("discover", "--features", "{w}/features/objects.npz", "--out", "{o}/r"), ("objects.npz", "Python objects"), ("allow_pickle", "pickle.load")),
    Case("discover-npy-objects", _raw("discover", "--features-npy", "{w}/features/objects.npy", "--index", "{w}/features/index.csv", "--out", "{o}/r"), ("objects.npy", "Python objects"), ("allow_pickle", "save it with numpy.save")),
    Case("discover-features-one-row", _raw("discover", "--features", "{w}/features/one-row.npz", "--out", "{o}/r"), ("1 frame to cluster", "at least 2"), ("--k",)),
    Case("discover-features-one-row-k", _raw("discover", "--features", "{w}/features/one-row.npz", "--out", "{o}/r", "--k", "2"), ("1 frame to cluster",), ("change --k",)),
    Case("discover-npy-without-index", _raw("discover", "--features-npy", "{w}/features/x.npy", "--out", "{o}/r"), ("--index",)),
    Case("ingest-quality-0", _ingest("good", "--storage", "jpeg", "--quality", "0"), ("--quality",)),
    Case("ingest-split-without-dataset", _ingest("good", "--split", "test"), ("--split",)),
    Case("ingest-no-source", _raw("ingest", "--out", "{o}/s"), ("SRC",)),
    Case("sweep-recipe-dotdot", _raw("sweep", "{w}/sweep-recipe-dotdot.yaml", "--out", "{o}/sw"), ("recipe name '..'",)),
    Case("sweep-dataset-dotdot", _raw("sweep", "{w}/sweep-dataset-dotdot.yaml", "--out", "{o}/sw"), ("dataset name '..'",)),
    Case("run-name-dotdot", _raw("run", PAPER_CONFIG, "--data-root", "{w}", "--out", "{o}/x", "--set", "train.run=.."), ("train.run name '..'",)),
    Case("run-set-malformed", _raw("run", PAPER_CONFIG, "--data-root", "{w}", "--out", "{o}/x", "--set", "garbage"), ("garbage", "SECTION.OPTION=VALUE")),
    Case("report-on-finetune-results", _raw("report", "{w}/finetuned"), ("results of `tcdn finetune`",), ("older tcdn",)),
    Case("generate-size-too-small", _raw("generate", "{o}/g", "--size", "15"), ("--size",)),
    Case("generate-into-foreign-folder", _raw("generate", "{w}/foreign"), ("foreign", "not a tcdn synthetic collection")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(case: Case, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = case.argv(world, out)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors: usage line + message, status 2
        code = exc.code  # type: ignore[assignment]
    stdout, stderr = capsys.readouterr()
    text = stdout + stderr
    assert code == EXIT_USER_ERROR, text
    assert "Traceback" not in text
    for needle in case.needles:
        assert needle.format(w=world) in text, f"{needle!r} not in {text!r}"
    for wrong in case.absent:
        assert wrong not in text, f"{wrong!r} in {text!r}"
    errors = [
        line for line in stderr.splitlines() if line.startswith("ERROR") or ": error:" in line
    ]
    assert len(errors) == 1, stderr  # one line says what is wrong
    assert _stat_tree(world) == _BEFORE["stat"], "a file outside the output folder changed"


# -- the output column: links and files of the user's where tcdn writes ------------------------
#: what the user keeps outside every output folder; a link in the output points at it
PRECIOUS = "the user's own file, which no tcdn command may change\n"


@dataclass(frozen=True)
class OutCase:
    """A command (or, with ``call``, a library function) writing into an output folder that
    ``setup(world, out)`` prepared: a symbolic link to the user's file where tcdn writes, or a
    file of the user's under a name tcdn writes. It must stop with a message naming that file,
    and leave the user's file, and the link, as they were."""

    id: str
    setup: Callable[[Path, Path, Path], None]  # (world, out, the user's file)
    argv: Callable[[Path, Path], list[str]] | None
    needles: tuple[str, ...]
    call: Callable[[Path, Path], object] | None = None


LINK = "symbolic link"
OUT_CASES = [
    # links where a command writes
    OutCase("train-resume-lock-link", linked("run", ".tcdn.lock", run_folder), _raw("train", "{w}/store40", "--out", "{o}/run", "--resume", "--no-progress"), (".tcdn.lock", LINK)),
    OutCase("train-resume-log-link", linked("run", "log.jsonl", run_folder), _raw("train", "{w}/store40", "--out", "{o}/run", "--resume", "--no-progress"), ("log.jsonl", LINK)),
    OutCase("train-log-link", linked("run", "log.jsonl", run_marker), _train("store40", "--steps", "1"), ("log.jsonl", LINK)),
    OutCase("discover-lock-link", linked("res", ".tcdn.lock"), _discover("good"), (".tcdn.lock", LINK)),
    OutCase("ingest-lock-link", linked("store", ".tcdn.lock"), _ingest("good"), (".tcdn.lock", LINK)),
    OutCase("discover-results-link", linked("res", "results.json"), _discover("good"), ("results.json", LINK)),
    OutCase("discover-partial-link", linked("res", ".clusters.csv.partial"), _discover("good"), (".clusters.csv.partial", LINK)),
    OutCase("discover-report-link", linked("res", "report.html"), _discover("good"), ("report.html",)),
    OutCase("features-out-link", linked(".", "f.npz"), _features("good"), ("f.npz", LINK)),
    OutCase("features-partial-link", linked(".", ".f.npz.partial"), _features("good"), (".f.npz.partial", LINK)),
    OutCase("finetune-results-link", linked("res", "results.json"), _raw(*_FT), ("results.json", LINK)),
    OutCase("demo-results-link", linked("res", "results.json"), _raw(*_DEMO), ("results.json", LINK)),
    OutCase("discover-report-folder-link", linked_folder("res", "report"), _discover("good"), ("report", LINK)),
    OutCase("ingest-data-folder-link", linked_folder("store", "data", store_marker), _ingest("good"), ("data", LINK)),
    OutCase("demo-run-folder-link", linked_folder("res", "run"), _raw(*_DEMO), ("run", LINK)),
    OutCase("train-tensorboard-folder-link", linked_folder("run", "tensorboard", run_marker), _train("store40", "--steps", "1", "--set", "tensorboard=true"), ("tensorboard", LINK)),
    OutCase("finetune-runs-folder-link", linked_folder("res", "runs", marked("finetune")), _raw(*_FT), ("runs", LINK)),
    OutCase("sweep-cells-folder-link", linked_folder("sw", "cells", marked("sweep")), _raw("sweep", "{w}/sweep-ok.yaml", "--out", "{o}/sw"), ("cells", LINK)),
    OutCase("search-montage-link", linked(".", "m.png"), _raw("search", "--features", "{w}/features/two-points.npz", "--row", "0", "--out", "{o}/m.png"), ("m.png", LINK)),
    # files of the user's where a command writes
    OutCase("finetune-over-foreign-results", foreign("res", "results.json"), _raw(*_FT), ("results.json", "not a fine-tuning's")),
    OutCase("finetune-over-a-discovery", foreign("res", "notes.txt", discovery_folder), _raw(*_FT), ("results.json", "a discovery's")),
    OutCase("demo-over-foreign-results", foreign("res", "results.json"), _raw(*_DEMO), ("results.json", "did not write")),
    OutCase("demo-over-foreign-report", foreign("res", "report.html"), _raw(*_DEMO), ("report.html", "not written by tcdn")),
    # the Python API: the same guards
    OutCase("api-write_results-over-foreign", foreign("res", "results.json"), None, ("results.json", "did not write"), api_write_results),
    OutCase("api-write_results-link", linked("res", "clusters.csv"), None, ("clusters.csv", LINK), api_write_results),
    OutCase("api-FeatureSet.save-over-foreign", foreign(".", "f.npz"), None, ("f.npz", "not written by tcdn"), lambda w, o: tiny_features().save(o / "f.npz")),  # type: ignore[attr-defined]
    OutCase("api-FeatureSet.save-link", linked(".", "f.npz"), None, ("f.npz", LINK), lambda w, o: tiny_features().save(o / "f.npz")),  # type: ignore[attr-defined]
    OutCase("api-transfer-write_results-over-a-discovery", foreign("res", "notes.txt", discovery_folder), None, ("results.json", "a discovery's"), api_transfer_results),
    OutCase("api-write_report-over-foreign", foreign("res", "report.html", discovery_folder), None, ("report.html", "not written by tcdn"), api_write_report),
]  # fmt: skip


@pytest.mark.parametrize("case", OUT_CASES, ids=[c.id for c in OUT_CASES])
def test_output_fault(
    case: OutCase, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    mine = tmp_path / "users" / "precious.txt"
    mine.parent.mkdir()
    mine.write_text(PRECIOUS)
    case.setup(world, out, mine)
    links = {p: p.readlink() for p in out.rglob("*") if p.is_symlink()}
    theirs = sorted(mine.parent.iterdir())  # a link to the user's folder must add nothing there
    if case.call is not None:
        with pytest.raises(TcdnError) as info:
            case.call(world, out)
        text = str(info.value)
    else:
        code = main(case.argv(world, out))  # type: ignore[misc]
        stdout, stderr = capsys.readouterr()
        text = stdout + stderr
        assert code == EXIT_USER_ERROR, text
        assert "Traceback" not in text
        assert len([x for x in stderr.splitlines() if x.startswith("ERROR")]) == 1, stderr
    for needle in case.needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    assert mine.read_text() == PRECIOUS, "the user's file changed"
    assert sorted(mine.parent.iterdir()) == theirs, "a file appeared in the user's folder"
    assert {p: p.readlink() for p in out.rglob("*") if p.is_symlink()} == links
    assert _stat_tree(world) == _BEFORE["stat"], "a file outside the output folder changed"


# -- the rerun column: a second run into the same folder leaves nothing of the first that disagrees
def _no_report(o: Path) -> None:
    assert not (o / "res" / "report.html").exists() and not (o / "res" / "report").exists()
    assert json.loads((o / "res" / "results.json").read_text())["format"].startswith("tcdn-results")


def _videos_match_labels(o: Path) -> None:
    with (o / "g" / "labels.csv").open(newline="") as fh:
        listed = {row["video"] for row in csv.DictReader(fh)}
    there = {p.relative_to(o / "g").as_posix() for p in (o / "g").rglob("*.mp4")}
    assert there == listed and len(listed) == 2


_GEN = ("generate", "{o}/g", "--classes", "2", "--min-frames", "3", "--max-frames", "4", "--size", "16")  # fmt: skip


def _no_stale_summary(o: Path) -> None:
    assert (o / "res" / "clusters.csv").is_file() and not (o / "res" / "videos.csv").exists()


def _write_unanswered(w: Path, o: Path) -> None:
    """Results that name no answer, written with the Python API into a discovery's folder."""
    import tcdn

    results = {"format": "tcdn-results-1"}
    tcdn.write_results(o / "res", tiny_features(), results, {"raw/kmeans": np.array([0, 0, 1, 1])})


RERUNS = {
    "discover-then-api-without-answer": (_discover("good", "--no-report"), _write_unanswered, _no_stale_summary),
    "discover-then-no-report": (_discover("good"), _discover("good", "--no-report"), _no_report),
    "generate-fewer-videos": (
        _raw(*_GEN, "--videos-per-class", "3"),
        _raw(*_GEN, "--videos-per-class", "1", "--seed", "1"),
        _videos_match_labels,
    ),
}  # fmt: skip


@pytest.mark.parametrize("rerun", sorted(RERUNS))
def test_rerun_leaves_nothing_stale(
    rerun: str, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, check = RERUNS[rerun]
    out = tmp_path / "out"
    for step in (first, second):
        argv = step(world, out)  # a command line, or None for a step done with the Python API
        if argv is not None:
            assert main(argv) == 0, capsys.readouterr().err
    check(out)
    assert _stat_tree(world) == _BEFORE["stat"], "a file outside the output folder changed"


# -- the warning column: a result that is right, and says what it could not do -----------------
def _discover_features(name: str, *extra: str) -> Callable[[Path, Path], list[str]]:
    return _raw("discover", "--features", f"{{w}}/features/{name}.npz", "--out", "{o}/res", "--repeats", "2", *extra)  # fmt: skip


WARNED = {
    "discover-constant-features": (_discover_features("const", "--k", "2"), ("carry no information", "one cluster")),
    "discover-empty-cluster": (_discover_features("two-points", "--k", "3", "--methods", "kmeans"), ("of the K=3 clusters are empty",)),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(WARNED))
def test_warned(case: str, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, needles = WARNED[case]
    code = main(argv(world, tmp_path / "out"))
    stderr = capsys.readouterr().err
    assert code == 0, stderr
    for needle in needles:
        assert needle in stderr, f"{needle!r} not in {stderr!r}"


def test_blank_features_score_the_same_in_any_row_order(world: Path, tmp_path: Path) -> None:
    scores = []
    for name in ("const", "const-shuffled"):
        assert main(_discover_features(name, "--k", "2")(world, tmp_path / name)) == 0
        results = json.loads((tmp_path / name / "res" / "results.json").read_text())["results"]
        scores.append({m: results["given"][m]["ce_values"] for m in ("kmeans", "spectral")})
    assert scores[0] == scores[1]


# -- the unclear column: what tcdn says must be true ---------------------------------------------
def test_train_help_defaults_are_the_default_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    """Every "(default: ...)" of ``tcdn train --help`` is read from the recipe a plain
    ``tcdn train`` uses, so the help cannot claim a loss or a model that is not the default."""
    import re

    from tcdn.training.recipes import DEFAULT_RECIPE, recipe

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    cfg = recipe(DEFAULT_RECIPE).resolved()
    shown = {}
    for chunk in re.split(r" (?=--[a-z])", text):  # one flag and its help per chunk
        found = re.search(r"\(default: ([^,()]+), as in the", chunk)
        if found:
            shown[chunk.split()[0].removeprefix("--")] = found.group(1)
    assert {"loss", "model", "lr", "steps", "image-size"} <= set(shown), shown
    for flag, value in shown.items():
        assert value == str(getattr(cfg, flag.replace("-", "_"))), flag
    assert "lq: quadruplet (default" not in text


def test_demo_help_names_no_loss_it_does_not_train(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "train Lq" not in text and "train the default recipe" in text


def test_full_disk_while_decoding_says_what_helps(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of videos is decoded through a temporary store, removed when the command stops:
    a full disk there must point at the temporary folder's disk, not at the deleted store nor at
    rerunning an ingest the user never ran."""
    import errno

    import tcdn.data.store.writer as writer

    def full(fh: object, data: object, crc: int, final: Path) -> int:  # as a full disk fails it
        raise writer._write_error(final, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(writer, "_write", full)
    code = main(_discover("good")(world, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert "the disk is full" in err and "TMPDIR" in err and "tcdn ingest" in err
    assert "tcdn-store-" not in err and "the same `tcdn ingest`" not in err
    assert _stat_tree(world) == _BEFORE["stat"]


# -- the -q column: every command hides its progress bars ---------------------------------------
#: command line -> the library function its handler calls (and passes ``progress`` to)
QUIET = {
    "finetune": ("tcdn.transfer.run", "finetune", _raw(*_FT)),
    "run": ("tcdn.experiment", "run_experiment", _raw("run", PAPER_CONFIG, "--data-root", "{w}", "--out", "{o}/x")),
    "discover": ("tcdn.flows", "discover", _discover("good")),
    "features": ("tcdn.features.write", "write_features", _features("good")),
    "demo": ("tcdn.demo", "run_demo", _raw(*_DEMO)),
    "generate": ("tcdn.data.synthetic", "generate", _raw("generate", "{o}/g")),
    "sweep": ("tcdn.sweep.run", "run_sweep", _raw("sweep", "{w}/sweep-ok.yaml", "--out", "{o}/sw")),
    "ingest": ("tcdn.data.store", "ingest", _ingest("good")),
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(QUIET))
def test_quiet_hides_progress(
    command: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    module, name, argv = QUIET[command]
    seen: list[object] = []

    def fake(*args: object, **kwargs: object) -> None:
        seen.append(kwargs.get("progress"))
        raise TcdnError("stopped by the test")

    monkeypatch.setattr(importlib.import_module(module), name, fake)
    args = [a for a in argv(world, tmp_path / "out") if a != "--no-progress"]
    assert main([*args, "-q"]) == EXIT_USER_ERROR
    assert seen == [False], f"{command} -q passed progress={seen}"


@pytest.mark.parametrize("videos", ["single", "oneclass"])
def test_one_class_is_clustered_and_left_unscored(
    videos: str, world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_discover(videos)(world, tmp_path / "out"))
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "Traceback" not in stdout + stderr
    assert "the clusters are not scored" in stderr and "scoring needs two classes" in stderr
    assert _stat_tree(world) == _BEFORE["stat"], "a file outside the output folder changed"


def test_no_case_changed_the_contents_of_any_input(world: Path) -> None:
    """After every case of the module has run (this test comes last in the file)."""
    assert _hash_tree(world) == _BEFORE["hash"]
