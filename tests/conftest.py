"""Shared fixtures: small real video collections written with tcdn's own synthetic generator.

Everything here is tiny (32x32 frames, a few dozen frames per video) so that the whole suite
runs in about a minute on two cores. Collections that no test modifies are session-scoped.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tcdn.data.synthetic import SyntheticConfig, generate, write_video
from tcdn.data.video import FrameSet, load_frames

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


@pytest.fixture
def make_video() -> Callable[..., Path]:
    """``make_video(path, n_frames, size=32, seed=0)``: write a real mp4 of moving noise."""

    def _make(path: Path, n_frames: int, size: int = 32, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        frames = np.stack([np.roll(base, shift=t, axis=1) for t in range(n_frames)])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, frames)
        return path

    return _make


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
