"""Sharded extraction (``tcdn.features.shards``): the plan, the rows lent across a cut, the shards'
checks, the merge against one process (bit for bit), and a real two-process ``torchrun`` run."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.errors import TcdnError
from tcdn.features import shards
from tcdn.features.extract import FrameFeaturizer
from tcdn.features.featureset import FeatureSet
from tcdn.features.npzfile import write_npz
from tests.conftest import TRAIN_SIZE, tiny_checkpoint


# -- the plan ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_split_by_weight_is_contiguous_nonempty_and_balanced(seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 200, size=int(rng.integers(4, 40))).astype(float)
    parts = int(rng.integers(1, 5))
    cuts = shards.split_by_weight(weights, parts)
    assert cuts[0] == 0 and cuts[-1] == len(weights) and len(cuts) == parts + 1
    assert all(b > a for a, b in itertools.pairwise(cuts))
    sums = [weights[a:b].sum() for a, b in itertools.pairwise(cuts)]
    # no share is more than one video over the even share
    assert max(sums) <= weights.sum() / parts + weights.max() + 1e-9


def test_more_processes_than_videos_is_refused() -> None:
    with pytest.raises(TcdnError, match="nproc_per_node <= 2"):
        shards.split_by_weight([1.0, 2.0], 3)


@pytest.mark.parametrize("seed", range(20))
def test_owned_rows_give_every_batch_to_the_rank_holding_its_first_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    world, batch = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    counts = rng.integers(0, 30, size=world)
    starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
    n = starts[-1]
    owner = np.full(n, -1)
    for r in range(world):
        a, b = shards.owned_rows(starts, r, batch)
        assert a % batch == 0 and (b % batch == 0 or b == n)
        owner[a:b] = r
    for j in range(0, n, batch):  # naive: the rank whose rows hold row j
        holder = max(r for r in range(world) if starts[r] <= j < starts[r + 1])
        assert (owner[j : j + batch] == holder).all()


def test_joined_reads_slices_as_one_array() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 255, (n, 2, 2, 3), dtype=np.uint8) for n in (5, 0, 3, 7)]
    whole = np.concatenate(parts)
    joined = shards.Joined(parts)
    assert joined.shape == whole.shape and len(joined) == len(whole)
    for a in range(len(whole) + 1):
        for b in range(a, len(whole) + 2):
            assert np.array_equal(joined[a:b], whole[a:b])


# -- every rank's work, in one process -------------------------------------------------------------
@dataclass
class FakeDist:
    rank: int
    world: int

    @property
    def main(self) -> bool:
        return self.rank == 0


def _motion_checkpoint() -> dict:
    from tcdn.training.config import TrainConfig

    cfg = TrainConfig(
        image_size=TRAIN_SIZE, model_options={"fc6_dim": 64}, embed_dim=16, motion="diff"
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cfg.build_model()
    from tcdn.models.input import InputTransform

    stats = InputTransform("diff", np.full(6, 0.5), np.full(6, 0.25)).state()
    mean = np.zeros(3, np.float32)
    return {"config": cfg.to_dict(), "model": model.state_dict(), "mean": mean, "input": stats}


def _simulate(
    collection: Path,
    ckpt: dict,
    world: int,
    out: Path,
    dtype: str = "float32",
    norm: str | None = None,
):
    """Every rank of a ``world``-process job run one after the other, the collectives replaced by
    lists: the shares, the rows lent across the cuts, the shards, then rank 0's merge."""
    options = shards.ShardOptions(size=TRAIN_SIZE, progress=False, dtype=dtype, norm=norm)
    ranks = [FakeDist(r, world) for r in range(world)]
    found = [shards._local_share(collection, ckpt, options, d) for d in ranks]
    starts = np.concatenate([[0], np.cumsum([s.n_rows for s in found])]).tolist()
    lent = [shards.lent_rows(s.featurizer, starts, r) for r, s in enumerate(found)]
    folder = shards.shard_folder(out)
    folder.mkdir()
    for r, share in enumerate(found):
        shards.borrow_rows(share.featurizer, starts, r, lent)
        shards._write_shard(folder, "0123456789abcdef", share, ("trained", 0), starts, ranks[r])
    merged, _skipped, n_videos = shards.merge_shards(
        folder, "0123456789abcdef", world, starts, np.dtype(dtype)
    )
    merged.meta = found[0].featurizer.meta("trained")
    return merged, folder, starts, n_videos


@pytest.fixture(scope="module")
def longer_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 videos of 50-90 frames: more than one batch of 256 rows; many of 16, cuts inside them."""
    root = tmp_path_factory.mktemp("longer")
    config = SyntheticConfig(
        n_classes=5, videos_per_class=1, min_frames=50, max_frames=90, size=32, seed=3
    )
    generate(root, config, progress=False)
    return root


@pytest.mark.parametrize("world", [2, 3, 5])
@pytest.mark.parametrize("motion", [False, True])
def test_the_merged_shards_are_one_process_features_bit_for_bit(
    longer_collection: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    world: int,
    motion: bool,
) -> None:
    from tcdn.data.load import load_frames

    monkeypatch.setattr(shards, "BATCH_SIZE", 16)  # several batches from a small collection
    ckpt = _motion_checkpoint() if motion else tiny_checkpoint()
    merged, folder, starts, n_videos = _simulate(longer_collection, ckpt, world, tmp_path / "f.npz")
    assert any(s % 16 for s in starts[1:-1])  # some cut falls inside a batch: rows were lent
    frames = load_frames(longer_collection, size=TRAIN_SIZE, progress=False)
    single = FrameFeaturizer(frames, frames.rows(), ckpt, progress=False)
    single.batch_size = 16
    expected = single.feature_set("trained")
    assert n_videos == 5
    assert merged.features.dtype == expected.features.dtype
    assert np.array_equal(merged.features, expected.features)  # bits, not closeness
    for name in ("video", "frame", "label"):
        assert np.array_equal(getattr(merged, name), getattr(expected, name))
    assert np.array_equal(merged.seconds, expected.seconds, equal_nan=True)
    assert merged.meta == expected.meta
    merged.save(tmp_path / "a.npz")
    expected.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert len(list(folder.iterdir())) == world


def test_shards_read_the_features_as_one_process_does(
    longer_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``norm`` reaches every rank: the merged unit-length features are one process's, bit for bit."""
    from tcdn.data.load import load_frames

    monkeypatch.setattr(shards, "BATCH_SIZE", 16)
    ckpt = tiny_checkpoint()
    merged, *_ = _simulate(longer_collection, ckpt, 2, tmp_path / "f.npz", norm="l2")
    frames = load_frames(longer_collection, size=TRAIN_SIZE, progress=False)
    single = FrameFeaturizer(frames, frames.rows(), ckpt, norm="l2", progress=False)
    single.batch_size = 16
    assert np.array_equal(merged.features, single.features("trained"))
    np.testing.assert_allclose(np.linalg.norm(merged.features, axis=1), 1.0, rtol=1e-5)
    assert merged.meta["norm"] == "l2"


def test_a_shard_of_another_run_or_with_other_rows_is_refused(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    _, folder, starts, _ = _simulate(synthetic_collection, tiny_checkpoint(), 2, tmp_path / "f.npz")
    run = "0123456789abcdef"
    with pytest.raises(TcdnError, match="is missing"):  # a rank killed before its shard
        shards.merge_shards(folder, "fedcba9876543210", 2, starts, np.dtype("float32"))
    # a stale shard under this run's name but from another run (or plan) is not trusted
    path = folder / shards.shard_name(run, 0, 2)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    info = json.loads(str(arrays["shard"]))
    for key, value in (("run", "fedcba9876543210"), ("held", [0, 1])):
        arrays["shard"] = np.array(json.dumps({**info, key: value}))
        with path.open("wb") as fh:
            write_npz(fh, **arrays)
        with pytest.raises(TcdnError, match=f"its {key} are not this run's"):
            shards.merge_shards(folder, run, 2, starts, np.dtype("float32"))
    # a damaged shard (bytes changed after writing) fails its CRC-32
    arrays["shard"] = np.array(json.dumps(info))
    with path.open("wb") as fh:
        write_npz(fh, **arrays)
    shards.merge_shards(folder, run, 2, starts, np.dtype("float32"))  # whole again: accepted
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(TcdnError, match="damaged"):
        shards.merge_shards(folder, run, 2, starts, np.dtype("float32"))


def test_remove_shards_touches_nothing_else(tmp_path: Path) -> None:
    folder = tmp_path / ".f.npz.shards"
    folder.mkdir()
    ours = [
        "0123456789abcdef-rank0of2.npz",
        ".0123456789abcdef-rank1of2.npz.partial",
        "aaaaaaaaaaaaaaaa-rank3of4.npz",
    ]
    for name in [*ours, "notes.txt", "0123-rank0of2.npz"]:
        (folder / name).write_text("x")
    shards.remove_shards(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["0123-rank0of2.npz", "notes.txt"]
    for p in folder.iterdir():
        p.unlink()
    shards.remove_shards(folder)
    assert not folder.exists()


# -- a real torchrun job ------------------------------------------------------------------------------
@pytest.mark.slow
def test_torchrun_two_processes_write_the_single_process_file(
    longer_collection: Path, tmp_path: Path
) -> None:
    """``torchrun --nproc_per_node=2 -m tcdn features`` (gloo) writes the same bytes as one
    process; a stale shard left in the shard folder by a killed run is not used, and removed."""
    ckpt_path = tmp_path / "tiny.pt"
    torch.save(tiny_checkpoint(), ckpt_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(longer_collection), "--checkpoint", str(ckpt_path), "--size", str(TRAIN_SIZE)]
    common += ["--float16", "--no-progress"]
    single = subprocess.run(
        [sys.executable, "-m", "tcdn", "features", *common, "--out", str(tmp_path / "one.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    out = tmp_path / "two.npz"
    stale = shards.shard_folder(out) / shards.shard_name("ffffffffffffffff", 1, 2)
    stale.parent.mkdir()
    stale.write_bytes(b"left by a killed rank")
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "tcdn", "features", *common,
         "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2: embedding rows" in proc.stderr
    assert out.read_bytes() == (tmp_path / "one.npz").read_bytes()
    assert not shards.shard_folder(out).exists()
    assert len(FeatureSet.load(out)) > 256  # more than one batch


@pytest.mark.slow
def test_torchrun_discover_finds_the_single_process_clusters(
    longer_collection: Path, tmp_path: Path
) -> None:
    """``torchrun --nproc_per_node=2 -m tcdn discover VIDEOS --checkpoint C``: the processes share
    the network features (trained and each random_init); rank 0 clusters them, as one process."""
    ckpt_path = tmp_path / "tiny.pt"
    torch.save(tiny_checkpoint(), ckpt_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(longer_collection), "--checkpoint", str(ckpt_path), "--size", str(TRAIN_SIZE)]
    common += ["--repeats", "2", "--no-report", "--no-progress"]
    runs = {
        "one": [sys.executable, "-m", "tcdn"],
        "two": [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "tcdn"],
    }
    for name, cmd in runs.items():
        proc = subprocess.run(
            [*cmd, "discover", *common, "--out", str(tmp_path / name)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 1 of 2: embedding rows" in proc.stderr
    for name in ("clusters.csv", "videos.csv"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    one, two = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("one", "two"))
    assert one["discovered"] == two["discovered"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


@pytest.mark.slow
def test_torchrun_a_bad_video_stops_every_rank_or_is_skipped_as_by_one_process(
    longer_collection: Path, tmp_path: Path
) -> None:
    """A video only the last rank decodes is bad: without --skip-bad every rank stops with its
    error (no file, no shard folder); with it, the file is one process's, the video listed."""
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(longer_collection, videos)
    (videos / "class04" / "noise.avi").write_bytes(np.random.default_rng(2).bytes(5000))
    with (videos / "labels.csv").open("a") as fh:
        fh.write("class04/noise.avi,class04,0\n")
    ckpt_path = tmp_path / "tiny.pt"
    torch.save(tiny_checkpoint(), ckpt_path)
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(videos), "--checkpoint", str(ckpt_path), "--size", str(TRAIN_SIZE)]
    common += ["--no-progress"]
    out = tmp_path / "two.npz"

    def run(cmd: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cmd, "-m", "tcdn", "features", *common, *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    failed = run([*torchrun, "--nproc_per_node=2"], "--out", str(out))
    assert failed.returncode != 0
    assert "rank 1 of 2:" in failed.stderr and "noise.avi" in failed.stderr
    assert "--skip-bad" in failed.stderr
    assert not out.exists() and not shards.shard_folder(out).exists()
    ok = run([*torchrun, "--nproc_per_node=2"], "--out", str(out), "--skip-bad")
    assert ok.returncode == 0, ok.stderr[-3000:]
    one = run([sys.executable], "--out", str(tmp_path / "one.npz"), "--skip-bad")
    assert one.returncode == 0, one.stderr[-3000:]
    assert out.read_bytes() == (tmp_path / "one.npz").read_bytes()
    assert FeatureSet.load(out).meta["skipped"] == ["class04/noise.avi"]
