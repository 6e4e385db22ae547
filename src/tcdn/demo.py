"""The demo: synthetic labelled videos, a short Lq run on them, the discovery of their classes
with every baseline, and its report; what ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tcdn.data.load import load_frames
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.pipeline import discover_collection
from tcdn.discovery.results import write_results
from tcdn.report.prepare import write_report
from tcdn.training.checkpoint import list_checkpoints, load_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.loop import train

DEMO_SIZE = 64


def demo_train_config(steps: int, seed: int) -> TrainConfig:
    """The demo's training run: Lq and AlexNet on 64x64 frames, a short schedule that fits a laptop.

    It departs from the paper's configuration in three ways, each measured on the synthetic
    data (never on a labelled evaluation set):

    - at 64x64 AlexNet's pool5 is 1x1, so the adaptive pool before fc6 is 1x1 too instead of
      6x6 (which only repeats that one cell 36 times, at 36 times the cost of fc6);
    - 200 steps instead of 30,000, at a constant learning rate of 0.01;
    - L2-normalised embeddings and squared distances (the authors' release): with the paper's
      plain Euclidean Lq, every learning rate we tried (0.001 to 0.01) collapsed the embeddings
      to one point (loss = margin) within 150-500 steps on this data.
    """
    return TrainConfig(
        loss="lq",
        model="alexnet",
        model_options={"pool_size": 1},
        image_size=DEMO_SIZE,
        steps=steps,
        lr=0.01,
        lr_step=10 * steps,
        normalize=True,
        squared=True,
        checkpoint_every=max(steps // 4, 1),
        keep_last=2,
        seed=seed,
    )


def run_demo(
    out_dir: str | Path,
    *,
    steps: int = 200,
    seed: int = 0,
    repeats: int = 10,
    frame_stride: int = 2,
    device: str = "cpu",
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Generate the synthetic collection, train Lq on it, discover its classes; return the results.

    Discovery is scored on every ``frame_stride``-th frame of each video. With ``report``, the
    report is written too: ``OUT/report.html``.
    """
    out = Path(out_dir)
    videos = out / "videos"
    generate(videos, SyntheticConfig(seed=seed), progress=progress)
    frames = load_frames(videos, size=DEMO_SIZE, progress=progress)
    ckpt_path = train(
        frames,
        demo_train_config(steps, seed),
        out / "run",
        resume=bool(list_checkpoints(out / "run")),  # a demo run interrupted earlier continues
        device=device,
        progress=progress,
    )
    found = discover_collection(
        frames,
        load_checkpoint(ckpt_path),
        DiscoverConfig(repeats=repeats, seed=seed, frame_stride=frame_stride),
        device=device,
        progress=progress,
    )
    found.results["collection"] = str(videos)
    write_results(out, found.clustered, found.results, found.assignments)
    if report:
        write_report(out, found, frames, seed=seed)
    return found.results
