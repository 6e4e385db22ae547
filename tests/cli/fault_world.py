"""The inputs of the fault matrix (:mod:`tests.cli.test_faults`): a tree of good and bad videos,
label files, frame stores, checkpoints and feature files built once (:func:`build_world`), the
means to see that no case changed it, and the output folders its output column prepares (links
to the user's files, files of the user's where tcdn writes)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml

from tcdn.data.decode import DecodeSettings
from tcdn.data.store.manifest import MANIFEST, StoreSettings, read_manifest
from tcdn.data.store.writer import ingest
from tcdn.data.synthetic import write_video
from tcdn.outputs import claim_folder
from tcdn.training.checkpoint import RUN_KIND, atomic_save
from tcdn.training.config import TrainConfig
from tests.cli.conftest import SMALL_TRAIN
from tests.conftest import (
    TRAIN_SIZE,
    store_settings,
    tiny_checkpoint,
    write_audio_only,
    write_mpeg4_avi,
)

#: an experiment config as tcdn ships it
PAPER_CONFIG = str(
    Path(__file__).resolve().parents[2] / "configs" / "paper" / "5contexts-lq-fc6.yaml"
)

#: a frame side no machine's memory holds 16 frames of (447 GiB)
HUGE = 100_000

#: a file name a shell, an HTML page and a CSV would each trip over, with a non-ASCII letter
ODD = "odd ü <b>&\"';$(x)"


def _video(path: Path, n_frames: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, np.stack([np.roll(base, t, axis=1) for t in range(n_frames)]))
    return path


def _two_good(root: Path) -> Path:
    """Two good videos of two classes (``a/v1.mp4``, ``b/v2.mp4``)."""
    _video(root / "a" / "v1.mp4", 12, seed=1)
    _video(root / "b" / "v2.mp4", 12, seed=2)
    return root


def _labels(root: Path, rows: list[list[str]]) -> Path:
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return root


def _checkpoint(path: Path, **changes: object) -> Path:
    ckpt = tiny_checkpoint()
    ckpt.pop("path")
    ckpt["mean"] = torch.as_tensor(ckpt["mean"])
    ckpt.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(ckpt, path)
    return path


def build_world(w: Path) -> Path:
    """Every input of the matrix, in ``w``; no case may change any of it."""
    good = _two_good(w / "good")
    good_bytes = (good / "a" / "v1.mp4").read_bytes()

    # -- bad videos, each beside two good ones
    def bad(name: str, write: Callable[[Path], object]) -> None:
        root = _two_good(w / f"bad-{name}")
        (root / "bad").mkdir()
        write(root / "bad" / {"jpeg": "frames"}.get(name, f"{name}.mp4"))

    bad("corrupt", lambda p: p.write_bytes(np.random.default_rng(3).bytes(5000)))
    bad("truncated", lambda p: p.write_bytes(good_bytes[: len(good_bytes) // 3]))
    bad("zero", lambda p: p.write_bytes(b""))
    bad("audio", write_audio_only)

    def unknown_codec(p: Path) -> None:
        blob = write_mpeg4_avi(p.with_suffix(".avi"), 4).read_bytes()
        p.with_suffix(".avi").write_bytes(blob.replace(b"FMP4", b"QZX9"))

    bad("codec", unknown_codec)

    def broken_jpeg(folder: Path) -> None:
        from PIL import Image

        folder.mkdir()
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 50 * i, np.uint8)).save(folder / f"{i:03d}.jpg")
        (folder / "001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    bad("jpeg", broken_jpeg)
    odd = _two_good(w / f"dir {ODD}")
    (odd / "bad").mkdir()
    (odd / "bad" / f"{ODD}.mp4").write_bytes(b"\x00" * 3000)

    # -- collections too small for what is asked
    _video(w / "short" / "a" / "s1.mp4", 2)
    _video(w / "short" / "b" / "s2.mp4", 2, seed=1)
    _video(w / "single" / "a" / "only.mp4", 12)
    _video(w / "one-frame" / "a" / "v1.mp4", 12)
    _video(w / "one-frame" / "b" / "still.mp4", 1, seed=1)  # skipped: no tuple, no negative
    _video(w / "oneclass" / "a" / "v1.mp4", 12)
    _video(w / "oneclass" / "a" / "v2.mp4", 12, seed=1)

    # -- label files
    csvs = {
        "columns": [["file", "class"], ["a/v1.mp4", "a"]],
        "missing": [["video", "label"], ["a/v1.mp4", "a"], ["a/gone.mp4", "a"]],
        "empty": [["video", "label"]],
        "twice": [["video", "label"], ["a/v1.mp4", "a"], ["a/./v1.mp4", "a"]],
        "blank": [["video", "label"], ["", "a"]],
    }
    for name, rows in csvs.items():
        _labels(_two_good(w / f"csv-{name}"), rows)
    (_two_good(w / "csv-binary") / "labels.csv").write_bytes(b"video,label\n\xff\xfe\x00bad\n")

    # -- a frame store at the networks' size, and damaged copies of it
    settings40 = StoreSettings(decode=DecodeSettings.make(TRAIN_SIZE))
    ingest(good, w / "store40", settings40, progress=False)
    ingest(good, w / "store", store_settings(), progress=False)
    shutil.copytree(w / "store40", w / "store-truncated")
    key = read_manifest(w / "store-truncated")["videos"][0]["key"]
    data = w / "store-truncated" / "data" / f"{key}.u8"
    data.write_bytes(data.read_bytes()[:-1000])
    shutil.copytree(w / "store40", w / "store-incomplete")
    manifest = read_manifest(w / "store-incomplete")
    manifest["complete"] = False
    (w / "store-incomplete" / MANIFEST).write_text(json.dumps(manifest))

    # -- checkpoints: good, and every way a file can be wrong
    ck = w / "ckpt"
    good_ckpt = _checkpoint(ck / "good.pt")
    blob = good_ckpt.read_bytes()
    (ck / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    (ck / "random.pt").write_bytes(np.random.default_rng(4).bytes(4000))
    (ck / "zero.pt").write_bytes(b"")
    other = TrainConfig(image_size=TRAIN_SIZE, model_options={"fc6_dim": 32}, embed_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        wrong_model = other.build_model().state_dict()
    _checkpoint(ck / "shapes.pt", model=wrong_model)  # the config says fc6 64, the weights 32
    config_no_size = {k: v for k, v in tiny_checkpoint()["config"].items() if k != "image_size"}
    _checkpoint(ck / "nosize.pt", config=config_no_size)
    _checkpoint(ck / "huge.pt", config={**tiny_checkpoint()["config"], "image_size": HUGE})
    # run folders whose last checkpoint is one of those (as tcdn writes them: marker, config.yaml)
    for name in ("truncated", "random", "zero", "shapes", "nosize", "huge"):
        run = w / "runs" / name
        claim_folder(run, RUN_KIND)
        cfg = TrainConfig.from_dict(tiny_checkpoint()["config"]).resolved()
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        shutil.copy(ck / f"{name}.pt", run / "step_00000002.pt")
    empty_run = w / "runs" / "none"
    claim_folder(empty_run, RUN_KIND)
    (empty_run / "config.yaml").write_text(yaml.safe_dump(SMALL_TRAIN))

    # -- feature files
    feats = w / "features"
    feats.mkdir()
    (feats / "random.npz").write_bytes(np.random.default_rng(5).bytes(3000))
    np.savez(feats / "no_video.npz", features=np.zeros((4, 3), np.float32))
    np.save(feats / "x.npy", np.zeros((4, 3), np.float32))
    _blank_features(feats)
    (feats / "text.npz").write_text("a text file, not an archive\n")
    np.save(feats / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(feats / "objects.npz", features=np.array([{"a": 1}, None], dtype=object),
             video=np.array(["v", "w"]), frame=np.zeros(2), label=np.array(["a", "b"]))  # fmt: skip
    (feats / "index.csv").write_text("video,frame\nv,0\nw,0\n")
    from tcdn.features.featureset import FeatureSet

    FeatureSet(
        np.ones((1, 3), np.float32), np.array(["v"]), np.zeros(1, np.int64), np.array([""])
    ).save(feats / "one-row.npz")

    # -- things that are not what an option wants
    (w / "small.yaml").write_text(yaml.safe_dump(SMALL_TRAIN))
    # sweeps whose recipe or data set would be a folder outside --out
    for what, names in (("recipe", ("..", "d")), ("dataset", ("r", ".."))):
        spec = {
            "train": SMALL_TRAIN,
            "recipes": {names[0]: {}},
            "datasets": {names[1]: {"videos": "good"}},
        }
        (w / f"sweep-{what}-dotdot.yaml").write_text(yaml.safe_dump(spec))
    spec = {"train": SMALL_TRAIN, "recipes": {"r": {}}, "datasets": {"d": {"videos": "good"}}}
    (w / "sweep-ok.yaml").write_text(yaml.safe_dump(spec))
    (w / "a_file.txt").write_text("a plain file\n")
    foreign = w / "foreign"
    _video(foreign / "data" / "mine.mp4", 4)
    (foreign / "notes.txt").write_text("the user's notes\n")
    (w / "results-foreign").mkdir()
    (w / "results-foreign" / "results.json").write_text('{"mine": true}\n')
    (w / "finetuned").mkdir()  # a fine-tuning's results, which `tcdn report` does not report
    (w / "finetuned" / "results.json").write_text('{"format": "tcdn-transfer-results-1"}\n')
    (w / "mine.npz").write_bytes(b"the user's own archive")
    return w


def _blank_features(feats: Path) -> None:
    """Feature files that carry no information (every row the same), in two row orders, and one
    of two distinct rows only (K=3 leaves a cluster empty)."""
    from tcdn.features.featureset import FeatureSet

    n = 24
    label = np.array(["a", "b"] * (n // 2))
    video = np.array([f"v{i % 6}" for i in range(n)])
    order = np.random.default_rng(6).permutation(n)
    for name, rows in (("const", np.arange(n)), ("const-shuffled", order)):
        FeatureSet(np.ones((n, 5), np.float32), video[rows], np.arange(n)[rows], label[rows]).save(
            feats / f"{name}.npz"
        )
    two = np.repeat(np.eye(2, 5, dtype=np.float32), n // 2, axis=0)
    FeatureSet(two, video, np.arange(n), label).save(feats / "two-points.npz")


def hash_tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (folders as ``dir``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def stat_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its size, modification time and inode: any write, removal,
    replacement or addition shows (cheap enough to take after every case; the contents are
    hashed once, after the last case)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        if p.is_file():
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_ino)
        else:  # a folder's own time changes with a lock file come and gone: its entries count
            out[str(p.relative_to(root))] = (-1, 0, st.st_ino)
    return out


def run_folder(w: Path, d: Path) -> None:
    """A good training run as tcdn leaves it: marker, config.yaml, one checkpoint."""
    claim_folder(d, RUN_KIND)
    cfg = TrainConfig.from_dict(tiny_checkpoint()["config"]).resolved()
    (d / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    shutil.copy(w / "ckpt" / "good.pt", d / "step_00000002.pt")


def run_marker(w: Path, d: Path) -> None:
    """A training run as tcdn claims it, before its first checkpoint."""
    claim_folder(d, RUN_KIND)


def discovery_folder(w: Path, d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "results.json").write_text(json.dumps({"format": "tcdn-results-1", "results": {}}))


def linked(folder: str, name: str, prepare: Callable[[Path, Path], None] | None = None):  # type: ignore[no-untyped-def]
    """``out/folder`` (made by ``prepare``, else empty) with ``name`` a link to the user's file."""

    def setup(w: Path, o: Path, mine: Path) -> None:
        d = o / folder
        d.mkdir(parents=True, exist_ok=True)
        if prepare is not None:
            prepare(w, d)
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).symlink_to(mine)

    return setup


def linked_folder(folder: str, name: str, prepare: Callable[[Path, Path], None] | None = None):  # type: ignore[no-untyped-def]
    """``out/folder`` (made by ``prepare``, else empty) with ``name`` a link to the folder of the
    user's file."""

    def setup(w: Path, o: Path, mine: Path) -> None:
        d = o / folder
        d.mkdir(parents=True, exist_ok=True)
        if prepare is not None:
            prepare(w, d)
        (d / name).symlink_to(mine.parent, target_is_directory=True)

    return setup


def marked(kind: str) -> Callable[[Path, Path], None]:
    """Prepares a folder as tcdn claims one of ``kind``, before it writes anything else."""
    return lambda w, d: claim_folder(d, kind)


def store_marker(w: Path, d: Path) -> None:
    """A frame store as tcdn claims it, before its first video."""
    from tcdn.data.store.manifest import STORE_KIND

    claim_folder(d, STORE_KIND)


def foreign(folder: str, name: str, prepare: Callable[[Path, Path], None] | None = None):  # type: ignore[no-untyped-def]
    """``out/folder`` holding the user's own file under ``name`` (the user's file is moved
    there, so it is the one watched)."""

    def setup(w: Path, o: Path, mine: Path) -> None:
        d = o / folder
        d.mkdir(parents=True, exist_ok=True)
        if prepare is not None:
            prepare(w, d)
        mine.rename(d / name)
        mine.symlink_to(d / name)  # the watched path now resolves to it

    return setup


def tiny_features() -> object:
    from tcdn.features.featureset import FeatureSet

    return FeatureSet(
        features=np.eye(4, dtype=np.float32),
        video=np.array(["a", "a", "b", "b"]),
        frame=np.array([0, 1, 0, 1]),
        label=np.array(["a", "a", "b", "b"]),
    )


def api_write_results(w: Path, o: Path) -> object:
    import tcdn

    labels = np.array([0, 0, 1, 1])
    results = {"format": "tcdn-results-1", "results": {}}
    return tcdn.write_results(o / "res", tiny_features(), results, {"raw/kmeans": labels})


def api_transfer_results(w: Path, o: Path) -> object:
    from tcdn.transfer.results import write_results

    return write_results(o / "res", {"format": "tcdn-transfer-results-1"})


def api_write_report(w: Path, o: Path) -> object:
    import tcdn

    found = {"format": "tcdn-results-1", "discovered": {"source": "raw", "method": "kmeans"}}
    return tcdn.write_report(
        o / "res", (found, {"raw/kmeans": np.array([0, 0, 1, 1])}, tiny_features())
    )
