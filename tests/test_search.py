"""``tcdn search`` (``tcdn.search``): nearest frames and videos (an exact scan, chunk by chunk),
and the command on a real feature file and its collection."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tcdn import search as search_mod
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.search import nearest, row_query


def feature_set(n_videos: int = 5, per: int = 8, dim: int = 6, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_videos * per, dim)).astype(np.float32)
    video = np.repeat([f"v{i}.mp4" for i in range(n_videos)], per)
    frame = np.tile(np.arange(per) * 2, n_videos)
    return FeatureSet(x, video, frame, [""] * len(x), time=frame / 25)


def naive(fs: FeatureSet, q: np.ndarray, k: int) -> tuple[list[int], list[str]]:
    d = [float(np.linalg.norm(fs.features[i] - q)) for i in range(len(fs))]
    order = sorted(range(len(fs)), key=lambda i: (d[i], i))
    best: dict[str, float] = {}
    for i in range(len(fs)):
        best[fs.video[i]] = min(best.get(fs.video[i], np.inf), d[i])
    return order[:k], sorted(best, key=lambda v: best[v])[:k]


@pytest.mark.parametrize("chunk", [None, 5])  # None: the module's; 5: several chunks
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nearest_matches_a_plain_loop(
    monkeypatch: pytest.MonkeyPatch, chunk: int | None, dtype: type
) -> None:
    if chunk is not None:
        monkeypatch.setattr(search_mod, "SCAN_CHUNK", chunk)
    fs = feature_set()
    fs = replace(fs, features=fs.features.astype(dtype))
    q = np.random.default_rng(5).normal(size=6).astype(np.float32)
    answer = nearest(fs, q, k=4)
    rows, videos = naive(fs, q, 4)
    assert [h.row for h in answer.frames] == rows
    assert [h.video for h in answer.videos] == videos
    assert answer.frames[0].distance == pytest.approx(
        np.linalg.norm(fs.features[rows[0]] - q), rel=1e-5
    )
    assert answer.frames[0].time == pytest.approx(fs.frame[rows[0]] / 25)


def test_row_query_leaves_itself_out() -> None:
    fs = feature_set()
    answer = nearest(fs, row_query(fs, 3).vector, k=3, exclude=3)
    assert 3 not in [h.row for h in answer.frames]
    rows, _ = naive(fs.subset(np.arange(len(fs)) != 3), fs.features[3], 3)
    assert [h.row for h in answer.frames] == [r + (r >= 3) for r in rows]
    with pytest.raises(TcdnError, match="--row 99 is out of range"):
        row_query(fs, 99)
    with pytest.raises(TcdnError, match="the query has 2 dimensions but the features have 6"):
        nearest(fs, np.zeros(2))


def _feature_file(
    ckpt: dict, collection: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """``ckpt`` saved as a run folder and ``tcdn features`` of every 2nd frame of ``collection``
    written with it; the command's output is cleared."""
    from tcdn.cli import main
    from tcdn.training.checkpoint import atomic_save

    run = tmp_path / "run"
    run.mkdir()
    atomic_save({**ckpt, "step": 0}, run / "step_00000000.pt")
    npz = tmp_path / "f.npz"
    argv = ["features", str(collection), "--checkpoint", str(run), "--out", str(npz),
            "--frame-stride", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return npz


@pytest.mark.slow
def test_search_command_with_image_video_and_row(
    capsys: pytest.CaptureFixture[str],
    synthetic_collection: Path,
    tmp_path: Path,
    restore_logging: None,
) -> None:
    from PIL import Image

    from tcdn.cli import main
    from tcdn.data.decode import decode_video
    from tests.conftest import TRAIN_SIZE, tiny_checkpoint

    npz = _feature_file(tiny_checkpoint(), synthetic_collection, tmp_path, capsys)
    video = synthetic_collection / "class01" / "class01_v00.mp4"

    # a video's frame as an image query: the frame itself is the nearest row, at distance ~0
    frame = decode_video(video, size=TRAIN_SIZE)[4]
    Image.fromarray(frame).save(tmp_path / "q.png")
    out = tmp_path / "m.png"
    assert (
        main(
            [
                "search",
                str(tmp_path / "q.png"),
                "--features",
                str(npz),
                "--k",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    first = said.split("nearest frames:")[1].splitlines()[2].split()
    assert first[0] == "1" and float(first[1]) < 1e-3 and first[2] == "4"
    assert first[3] == "0.16" and first[4] == "class01/class01_v00.mp4"
    with Image.open(out) as img:
        assert img.info["Software"] == "tcdn" and img.width > 3 * 128

    # the same frame by --at; the whole video; a row
    assert main(["search", str(video), "--at", "0.16", "--features", str(npz), "--no-montage"]) == 0
    assert (
        "class01/class01_v00.mp4"
        in capsys.readouterr().out.split("nearest frames:")[1].splitlines()[2]
    )
    assert main(["search", str(video), "--features", str(npz), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "frames averaged" in said
    assert said.split("nearest videos")[1].splitlines()[2].split()[-2] == "class01/class01_v00.mp4"
    assert (
        main(["search", "--row", "0", "--features", str(npz), "--out", str(out), "--k", "2"]) == 0
    )
    assert "query: row 0" in capsys.readouterr().out

    # user errors: one line, status 2; a file tcdn did not write is never replaced
    mine = tmp_path / "mine.png"
    Image.new("RGB", (4, 4)).save(mine)
    for argv, needle in (
        (["--row", "0", "--out", str(mine)], "was not written by tcdn"),
        ([str(video), "--row", "1"], "give one query"),
        (["--row", "0", "--at", "1"], "--at applies to a video query"),
        ([str(tmp_path / "nope.mp4")], "does not exist"),
    ):
        assert main(["search", *argv, "--features", str(npz)]) == 2
        assert needle in capsys.readouterr().err


def test_a_query_is_read_as_the_features_were(
    capsys: pytest.CaptureFixture[str],
    synthetic_collection: Path,
    tmp_path: Path,
    restore_logging: None,
) -> None:
    """A recipe that reads its features at unit length (``feature_norm: l2``): `tcdn features`
    writes unit rows and says so, and an image query is embedded the same way, so a frame of the
    collection finds itself at distance ~0 (unnormalised, it would sit far from every row)."""
    from PIL import Image

    from tcdn.cli import main
    from tcdn.data.decode import decode_video
    from tests.conftest import TRAIN_SIZE, tiny_checkpoint

    ckpt = tiny_checkpoint()
    ckpt["config"] = {**ckpt["config"], "feature_norm": "l2"}
    npz = _feature_file(ckpt, synthetic_collection, tmp_path, capsys)
    fs = FeatureSet.load(npz)
    assert fs.meta["norm"] == "l2"
    np.testing.assert_allclose(np.linalg.norm(fs.features, axis=1), 1.0, rtol=1e-5)
    video = synthetic_collection / "class01" / "class01_v00.mp4"
    Image.fromarray(decode_video(video, size=TRAIN_SIZE)[4]).save(tmp_path / "q.png")
    assert main(["search", str(tmp_path / "q.png"), "--features", str(npz), "--no-montage"]) == 0
    first = capsys.readouterr().out.split("nearest frames:")[1].splitlines()[2].split()
    assert first[0] == "1" and float(first[1]) < 1e-3 and first[4] == "class01/class01_v00.mp4"
