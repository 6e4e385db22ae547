"""The built-in synthetic videos (``tcdn.data.synthetic``): seeded, labelled, and shaped as documented."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tcdn.data.decode import decode_video
from tcdn.data.synthetic import SyntheticConfig, _categories, generate, render_video
from tcdn.errors import TcdnError

SMALL = SyntheticConfig(n_classes=2, videos_per_class=2, min_frames=5, max_frames=9, size=16)


def _rows(labels_csv: Path) -> list[dict[str, str]]:
    with labels_csv.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_generate_writes_every_video_with_its_label_and_length(tmp_path: Path) -> None:
    labels = generate(tmp_path / "v", SMALL, progress=False)
    rows = _rows(labels)
    assert [r["video"] for r in rows] == [
        "class00/class00_v00.mp4",
        "class00/class00_v01.mp4",
        "class01/class01_v00.mp4",
        "class01/class01_v01.mp4",
    ]
    for r in rows:
        assert r["label"] == r["video"].split("/")[0]
        n = int(r["frames"])
        assert SMALL.min_frames <= n <= SMALL.max_frames
        frames = decode_video(tmp_path / "v" / r["video"], size=16)
        assert frames.shape == (n, 16, 16, 3)  # the file holds exactly the frames it says


def test_same_config_same_frames_other_seed_others() -> None:
    def first_video(seed: int) -> np.ndarray:
        cats = _categories(2, np.random.default_rng(seed))
        return render_video(cats[0], 6, 16, np.random.default_rng([seed, 0, 0]))

    np.testing.assert_array_equal(first_video(3), first_video(3))
    assert not np.array_equal(first_video(3), first_video(4))


def test_adjacent_frames_change_slowly_and_categories_differ() -> None:
    cats = _categories(2, np.random.default_rng(0))
    a = render_video(cats[0], 20, 32, np.random.default_rng(1), hue_spread=0.0).astype(float)
    b = render_video(cats[1], 20, 32, np.random.default_rng(1), hue_spread=0.0).astype(float)
    adjacent = np.abs(np.diff(a, axis=0)).mean()
    across = np.abs(a - b).mean()
    assert adjacent < across / 2  # temporal coherence holds: a frame is closest to its neighbours


def test_an_existing_collection_is_reused_and_another_config_rewritten(tmp_path: Path) -> None:
    labels = generate(tmp_path / "v", SMALL, progress=False)
    video = tmp_path / "v" / _rows(labels)[0]["video"]
    before = video.stat().st_mtime_ns
    generate(tmp_path / "v", SMALL, progress=False)
    assert video.stat().st_mtime_ns == before  # reused, not written again
    other = SyntheticConfig(**{**SMALL.__dict__, "seed": 1})
    generate(tmp_path / "v", other, progress=False)
    assert video.stat().st_mtime_ns != before


@pytest.mark.parametrize(
    ("option", "value"),
    [("n_classes", 1), ("min_frames", 2), ("max_frames", 4), ("hue_spread", 0.6), ("size", 15)],
)
def test_bad_configs_are_refused(option: str, value: object, tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match=option.split("_")[0]):
        generate(tmp_path, SyntheticConfig(**{**SMALL.__dict__, option: value}), progress=False)


def test_the_same_frames_give_the_same_bytes(tmp_path: Path) -> None:
    """x264's macroblock tree gave different bytes for the same frames encoded twice in one
    process (and so `make demo` clustered different frames); the same seed must give the same
    files."""
    from tcdn.data.synthetic import SyntheticConfig, generate, write_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    frames = np.stack(
        [np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), t, 1) for t in range(60)]
    )
    written = []
    for i in range(4):
        write_video(tmp_path / f"v{i}.mp4", frames)
        written.append((tmp_path / f"v{i}.mp4").read_bytes())
    assert all(w == written[0] for w in written)
    cfg = SyntheticConfig(n_classes=3, videos_per_class=2, min_frames=20, max_frames=40)
    trees = []
    for name in ("a", "b"):
        generate(tmp_path / name, cfg, progress=False)
        trees.append(
            {
                p.relative_to(tmp_path / name): p.read_bytes()
                for p in (tmp_path / name).rglob("*.mp4")
            }
        )
    assert len(trees[0]) == 6 and trees[0] == trees[1]


def test_rgb_to_yuv420_is_swscales_on_flat_colours() -> None:
    import av

    from tcdn.data.synthetic import rgb_to_yuv420

    for colour in (
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [200, 120, 40],
        [255, 255, 255],
        [0, 0, 0],
    ):
        x = np.zeros((16, 16, 3), np.uint8) + np.array(colour, np.uint8)
        ours = rgb_to_yuv420(x)
        theirs = (
            av.VideoFrame.from_ndarray(x, format="rgb24").reformat(format="yuv420p").to_ndarray()
        )
        assert ours.shape == theirs.shape == (24, 16)
        np.testing.assert_array_equal(ours, theirs)
