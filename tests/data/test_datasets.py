"""Dataset readers on tiny fixtures laid out like the official releases, with real encoded videos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tcdn.cli import main
from tcdn.data.datasets import five_contexts, hmdb51, ucf101
from tcdn.data.store.reader import open_store
from tcdn.errors import TcdnError

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def write_ucf101(root: Path, make_video: Callable[..., Path], n_frames: int = 4) -> Path:
    """UCF-101/<Class>/v_<Class>_gGG_c01.avi and ucfTrainTestlist/ as in the official archives:
    groups 08-09 train, group 01 test (split 1 keeps groups 1-7 for testing)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, 1))  # the official files are CRLF
    )
    train, test = [], []
    for i, c in enumerate(UCF_CLASSES, 1):
        for g in (1, 8, 9):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            make_video(root / "UCF-101" / rel, n_frames, size=32, seed=i * 10 + g)
            (test if g == 1 else train).append((rel, i))
    (lists / "trainlist01.txt").write_text("".join(f"{r} {i}\r\n" for r, i in train))
    (lists / "testlist01.txt").write_text("".join(f"{r}\r\n" for r, _ in test))
    return root


@pytest.fixture
def ucf_root(make_video: Callable[..., Path], tmp_path: Path) -> Path:
    return write_ucf101(tmp_path / "ucf", make_video)


def test_ucf101_splits(ucf_root: Path) -> None:
    train = ucf101(ucf_root, "train")
    test = ucf101(ucf_root, "test")
    assert [e.name for e in train] == [
        f"{c}/v_{c}_g{g:02d}_c01.avi" for c in UCF_CLASSES for g in (8, 9)
    ]
    assert [e.label for e in train] == [c for c in UCF_CLASSES for _ in (8, 9)]
    assert [e.label for e in test] == UCF_CLASSES  # test lines carry no index: label from path
    assert all(e.path.is_file() for e in train + test)
    assert not {e.name for e in train} & {e.name for e in test}
    assert len(ucf101(ucf_root, "all")) == 9


def test_ucf101_frame_folders_and_errors(ucf_root: Path) -> None:
    # frames extracted as JPEGs under the video's name without .avi replace the video
    rel = "YoYo/v_YoYo_g08_c01"
    video = ucf_root / "UCF-101" / f"{rel}.avi"
    video.unlink()
    (ucf_root / "UCF-101" / rel).mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 10, 10)).save(ucf_root / "UCF-101" / rel / "00001.jpg")
    entry = next(e for e in ucf101(ucf_root, "train") if e.name == f"{rel}.avi")
    assert entry.path.is_dir()

    (ucf_root / "UCF-101" / "YoYo" / "v_YoYo_g09_c01.avi").unlink()
    with pytest.raises(TcdnError, match=r"trainlist01\.txt names 1 video\(s\) missing.*g09"):
        ucf101(ucf_root, "train")
    with pytest.raises(TcdnError, match="--fold"):
        ucf101(ucf_root, "train", fold=4)
    with pytest.raises(TcdnError, match="testlist02"):
        ucf101(ucf_root, "test", fold=2)
    with pytest.raises(TcdnError, match="classInd"):
        ucf101(ucf_root / "UCF-101", "train")


def test_cli_ingest_ucf101(
    ucf_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    out = tmp_path / "store"
    argv = ["ingest", str(ucf_root), "--dataset", "ucf101", "--split", "test"]
    code = main([*argv, "--out", str(out), "--size", "16", "--workers", "1", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    fs = open_store(out)
    assert [v.label for v in fs.videos] == UCF_CLASSES
    assert fs.frames.shape == (12, 16, 16, 3)
    assert "frames      12" in capsys.readouterr().out
    code = main([*argv, "--out", str(out), "--clips", "3"])
    assert code == 2 and "--clips is for --dataset hmdb51" in capsys.readouterr().err


HMDB_ACTIONS = ["brush_hair", "cartwheel"]


@pytest.fixture
def hmdb_root(make_video: Callable[..., Path], tmp_path: Path) -> Path:
    """hmdb51_org/<action>/<clip>.avi and testTrainMulti_7030_splits/<action>_test_split{1,2,3}.txt."""
    root = tmp_path / "hmdb"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for a, action in enumerate(HMDB_ACTIONS):
        lines = []
        for k in range(6):
            clip = f"{action}_clip{k}_f_nm_np1_ba_goo_{k}.avi"
            make_video(root / "hmdb51_org" / action / clip, 3, size=32, seed=a * 10 + k)
            lines.append(f"{clip} {(1, 1, 1, 2, 2, 0)[k]} \n")  # official lines end in a space
        for fold in (1, 2, 3):
            (splits / f"{action}_test_split{fold}.txt").write_text("".join(lines))
    return root


def test_hmdb51_splits_and_random_subset(hmdb_root: Path) -> None:
    train, test, everything = (hmdb51(hmdb_root, s) for s in ("train", "test", "all"))
    assert len(train) == 6 and len(test) == 4 and len(everything) == 12
    assert {e.label for e in train} == set(HMDB_ACTIONS)
    assert all(e.name.split("/")[0] == e.label for e in everything)
    assert not {e.name for e in train} & {e.name for e in test}

    a = hmdb51(hmdb_root, "all", n_clips=5, seed=3)
    assert len(a) == 5 and len({e.name for e in a}) == 5
    assert {e.name for e in a} <= {e.name for e in everything}
    assert [e.name for e in a] == [e.name for e in hmdb51(hmdb_root, "all", n_clips=5, seed=3)]
    others = {tuple(e.name for e in hmdb51(hmdb_root, "all", n_clips=5, seed=s)) for s in range(6)}
    assert len(others) > 1  # the seed matters
    with pytest.raises(TcdnError, match="more than the 12 clips"):
        hmdb51(hmdb_root, "all", n_clips=13)


def test_hmdb51_bad_split_line(hmdb_root: Path) -> None:
    (hmdb_root / "testTrainMulti_7030_splits" / "cartwheel_test_split1.txt").write_text("x.avi 7\n")
    with pytest.raises(TcdnError, match=r"cartwheel_test_split1\.txt, line 1"):
        hmdb51(hmdb_root, "train")


FIVE_CONTEXT_NAMES = ["car", "coffee vending machine", "office", "TV", "home-office"]


def write_5contexts(root: Path, make_video: Callable[..., Path], n_frames: int = 3) -> Path:
    """training/<camera>/<context>/video.mp4 and test/<camera>/<context>.mp4, two cameras."""
    for cam in ("looxcie", "vuzix"):
        for i, c in enumerate(FIVE_CONTEXT_NAMES):
            make_video(root / "training" / cam / c / "video.mp4", n_frames, seed=i)
        for i, c in enumerate(FIVE_CONTEXT_NAMES):
            make_video(root / "test" / cam / f"{c}.mp4", n_frames, seed=10 + i)
    return root


def test_five_contexts_layout(make_video: Callable[..., Path], tmp_path: Path) -> None:
    root = write_5contexts(tmp_path / "5contexts", make_video)
    want = ["car", "coffee_vending_machine", "office", "tv", "home_office"]
    train = five_contexts(root, "train")
    test = five_contexts(root, "test")
    assert len(train) == len(test) == 10
    assert sorted({e.label for e in train}) == sorted(want)
    assert sorted({e.label for e in test}) == sorted(want)
    by_name = {e.name: e.label for e in train + test}
    assert by_name["training/looxcie/home-office/video.mp4"] == "home_office"
    assert by_name["test/vuzix/office.mp4"] == "office"
    assert len(five_contexts(root, "all")) == 20

    make_video(root / "training" / "looxcie" / "kitchen.mp4", 3)
    with pytest.raises(TcdnError, match=r"name no context.*kitchen\.mp4"):
        five_contexts(root, "train")
    with pytest.raises(TcdnError, match="no train video"):
        five_contexts(root / "test", "train")


def test_hmdb51_subset_ingests(hmdb_root: Path, tmp_path: Path, restore_logging: None) -> None:
    argv = ["ingest", str(hmdb_root), "--dataset", "hmdb51", "--clips", "4", "--seed", "1"]
    assert main([*argv, "--out", str(tmp_path / "s"), "--size", "16", "--no-progress"]) == 0
    fs = open_store(tmp_path / "s")
    assert len(fs.videos) == 4
    assert np.all(fs.lengths == 3)
