"""Shared fixtures: small real video collections written with tcdn's own synthetic generator.

Everything here is tiny (32x32 frames, a few dozen frames per video) so that the whole suite
runs in about a minute on two cores. Collections that no test modifies are session-scoped.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tcdn.data.collection import VideoEntry, find_videos
from tcdn.data.decode import DecodeSettings, decode_video
from tcdn.data.frameset import FrameSet
from tcdn.data.load import load_frames
from tcdn.data.store.manifest import StoreSettings
from tcdn.data.store.writer import ingest
from tcdn.data.synthetic import SyntheticConfig, generate, write_video
from tcdn.training.config import TrainConfig

#: the synthetic collection every test shares: 3 classes x 2 videos of 24-32 frames at 32x32
TINY = SyntheticConfig(
    n_classes=3, videos_per_class=2, min_frames=24, max_frames=32, size=32, seed=1
)

#: the smallest even frame side AlexNet's ceil-mode pooling accepts (39 is the true minimum)
TRAIN_SIZE = 40


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread for torch and for the BLAS under numpy/scipy: on a small, busy machine
    two spinning threads make the tiny training steps about 20 times slower, and a small SVD
    (the raw-pixel PCA) about 50 times slower."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled collection: ``classNN/classNN_vMM.mp4`` and a ``labels.csv``. Read-only."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, TINY, progress=False)
    return root


@pytest.fixture(scope="session")
def folder_collection(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same videos, labelled only by their class sub-folders (no ``labels.csv``), plus a
    ``notes.txt`` that is not a video. Do not modify it."""
    root = tmp_path_factory.mktemp("folders") / "videos"
    shutil.copytree(
        synthetic_collection, root, ignore=shutil.ignore_patterns("labels.csv", ".tcdn-synthetic")
    )
    (root / "notes.txt").write_text("not a video\n")
    (root / "class00" / "README.md").write_text("also not a video\n")
    return root


@pytest.fixture(scope="session")
def train_frames(synthetic_collection: Path) -> FrameSet:
    """The synthetic collection decoded at :data:`TRAIN_SIZE`. Read-only: do not modify it."""
    frames = load_frames(synthetic_collection, size=TRAIN_SIZE, progress=False)
    frames.frames.setflags(write=False)
    return frames


@pytest.fixture(scope="session")
def sample_video(synthetic_collection: Path) -> Path:
    """One real H.264 mp4 of the synthetic collection (28 frames of 32x32)."""
    return synthetic_collection / "class00" / "class00_v00.mp4"


def write_noise_video(path: Path, n_frames: int, size: int = 32, seed: int = 0) -> Path:
    """Write a real mp4 of moving noise: ``n_frames`` frames of ``size x size``."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, shift=t, axis=1) for t in range(n_frames)])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames)
    return path


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, n_frames, size=32, seed=0)``: write a real mp4 of moving noise."""
    return write_noise_video


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo ``logging.basicConfig(force=True)`` done by ``tcdn.cli.main``, so that its handler
    (bound to a captured stream that pytest closes) does not outlive the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)


def write_audio_only(path: Path) -> Path:
    """A real AAC-in-mp4 file with no video stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        fmt = stream.codec_context.format
        for _ in range(5):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format=fmt.name, layout="mono"
            )
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def labels_rows(root: Path) -> list[dict[str, str]]:
    with (root / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def small_config(**overrides: object) -> TrainConfig:
    """A tiny Lq run: AlexNet with a 64-wide fc6 and a 16-d embedding, 4 quadruplets per step.

    Dropout stays at its default (0.5), so resuming is only exact if the torch RNG is restored.
    """
    options: dict[str, object] = {
        "image_size": TRAIN_SIZE,
        "model_options": {"fc6_dim": 64},
        "embed_dim": 16,
        "batch_size": 4,
        "steps": 6,
        "checkpoint_every": 2,
        "keep_last": 2,
        "log_every": 1,
        "lr": 0.01,
        "far": 5,
    }
    options.update(overrides)
    return TrainConfig(**options)  # type: ignore[arg-type]


def tiny_checkpoint(seed: int = 0) -> dict:
    """A checkpoint dict of an untrained tiny AlexNet at TRAIN_SIZE, without training."""
    cfg = TrainConfig(image_size=TRAIN_SIZE, model_options={"fc6_dim": 64}, embed_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cfg.build_model()
    mean = np.array([100.0, 110.0, 120.0], dtype=np.float32)
    return {"config": cfg.to_dict(), "model": model.state_dict(), "mean": mean, "path": "tiny.pt"}


# -- frame stores ----------------------------------------------------------------------------------
#: the frame side of the stores the tests build
STORE_SIZE = 24


def store_settings(storage: str = "raw", **decode: object) -> StoreSettings:
    return StoreSettings(decode=DecodeSettings.make(STORE_SIZE, **decode), storage=storage)  # type: ignore[arg-type]


def naive_frames(entries: list[VideoEntry], **decode: object) -> np.ndarray:
    """Obvious reference: decode each video on its own and stack them."""
    return np.concatenate([decode_video(e.path, size=STORE_SIZE, **decode) for e in entries])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def raw_store(synthetic_collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw") / "store"
    ingest(synthetic_collection, out, store_settings("raw"), progress=False)
    return out


@pytest.fixture(scope="module")
def reference(synthetic_collection: Path) -> np.ndarray:
    return naive_frames(find_videos(synthetic_collection))


def write_mpeg4_avi(path: Path, n_frames: int) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32  # type: ignore[union-attr]
        stream.pix_fmt = "yuv420p"  # type: ignore[union-attr]
        container.start_encoding()
        for t in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 40 * t, np.uint8), "rgb24")
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                container.mux(packet)
        for packet in stream.encode():  # type: ignore[union-attr]
            container.mux(packet)
    return path


@pytest.fixture
def broken_collection(
    make_video: Callable[..., Path], tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    """Two good videos and one of each kind of bad file, all real, with what each should say."""
    root = tmp_path / "videos"
    make_video(root / "good" / "a.mp4", 6)
    make_video(root / "good" / "b.mp4", 5, seed=1)
    data = (root / "good" / "a.mp4").read_bytes()
    (root / "bad").mkdir()
    (root / "bad" / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (root / "bad" / "noise.avi").write_bytes(np.random.default_rng(2).bytes(5000))
    write_audio_only(root / "bad" / "song.mp4")
    write_mpeg4_avi(root / "bad" / "zero.avi", 0)  # a video stream with no frame
    blob = write_mpeg4_avi(root / "bad" / "codec.avi", 4).read_bytes()
    assert blob.count(b"FMP4") >= 1
    (root / "bad" / "codec.avi").write_bytes(blob.replace(b"FMP4", b"QZX9"))  # unknown fourcc
    why = {
        "bad/noise.avi": "cannot decode",
        "bad/song.mp4": "no video stream",
        "bad/zero.avi": "no decodable frame",
        "bad/codec.avi": "cannot decode",
    }
    return root, why
