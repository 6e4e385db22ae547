"""The demo: synthetic labelled videos, a short run of the `best` recipe on them, the discovery of their classes
with every baseline, and its report; what ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tcdn.data.load import load_frames
from tcdn.data.synthetic import SYNTHETIC_KIND, SyntheticConfig, generate
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.pipeline import discover_collection
from tcdn.discovery.results import RESULT_FILES, is_result_file, write_results
from tcdn.outputs import check_output_files, check_output_folder, refuse_links
from tcdn.report.files import check_report_dir, remove_report
from tcdn.report.prepare import write_report
from tcdn.training.checkpoint import check_run_folder, list_checkpoints, load_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.recipes import BEST_STEPS, SIZE_64, best
from tcdn.training.run import train

DEMO_SIZE = SIZE_64


def demo_train_config(steps: int, seed: int) -> TrainConfig:
    """The demo's training run: the ``best`` recipe (:mod:`tcdn.training.recipes`), the one a
    plain ``tcdn train`` uses, for ``steps`` steps."""
    return best(steps, seed)


def run_demo(
    out_dir: str | Path,
    *,
    steps: int = BEST_STEPS,
    seed: int = 0,
    repeats: int = 10,
    frame_stride: int = 2,
    device: str = "cpu",
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Generate the synthetic collection, train the ``best`` recipe on it, discover its classes;
    return the results.

    Discovery is scored on every ``frame_stride``-th frame of each video. With ``report``, the
    report is written too: ``OUT/report.html``.
    """
    out = Path(out_dir)
    videos = out / "videos"
    _check_demo_out(out, report)  # before any work: no file of the user's is replaced
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
    else:
        remove_report(out)  # an earlier demo's report described other results
    return found.results


def _check_demo_out(out: Path, report: bool) -> None:
    """Every file and folder the demo writes in ``out`` is absent or tcdn's: the results files
    (:func:`~tcdn.discovery.results.is_result_file`), the report, ``run/`` and ``videos/``."""
    check_output_files(out, dict.fromkeys(RESULT_FILES, is_result_file))
    if report:
        check_report_dir(out)
    refuse_links(out, ("run", "videos", "report"))  # tcdn's own folders: never a link elsewhere
    check_run_folder(out / "run")
    check_output_folder(
        out / "videos",
        SYNTHETIC_KIND,
        recognise=lambda p: (p / ".tcdn-synthetic").is_file(),
        what="synthetic collection",
    )
