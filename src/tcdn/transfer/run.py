"""``tcdn finetune`` as a function (:func:`finetune`): the output folder checked, claimed and
locked, the checkpoint and the labelled images read, :func:`~tcdn.transfer.protocol.run_transfer`
run and ``results.json`` written."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.errors import TcdnError

if TYPE_CHECKING:
    from tcdn.transfer.config import FinetuneConfig

#: the command's messages, under the logger name they have always had
log = logging.getLogger("tcdn")

PathLike = str | Path

#: the kind of folder ``tcdn finetune --out`` is, in its marker file (tcdn.outputs.claim_folder)
FINETUNE_KIND = "finetune"


def finetune(
    data: PathLike,
    checkpoint: dict[str, Any] | PathLike,
    config: FinetuneConfig,
    out: PathLike,
    *,
    labels: PathLike | None = None,
    max_frames: int | None = None,
    size: int | None = None,
    threads: int | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune and probe a classifier initialised with ``checkpoint``'s weights against the
    same network randomly initialised, and write ``OUT/results.json``, as ``tcdn finetune``
    does (:func:`tcdn.transfer.run_transfer`).

    Parameters
    ----------
    data
        The labelled images, in the layout ``config.dataset`` names (for ``videos``: a video
        folder or a frame store).
    checkpoint
        The learned init: a checkpoint dict, file or run folder.
    config
        The protocols and their options (:class:`~tcdn.transfer.config.FinetuneConfig`).
    out
        The folder of ``results.json`` and the fine-tuning ``runs/``: checked before any work
        (a folder of other files is refused), claimed and locked while it is written.
    labels, max_frames
        ``dataset="videos"`` only: a video,label CSV; the frames kept per video.
    size
        The image side (default: the checkpoint's ``image_size``).
    threads
        Torch's CPU threads (default: torch's choice).
    resume
        Continue the runs in ``out``: completed ones are read back, interrupted ones go on.
    device, progress
        The torch device (default ``auto``) and whether to show progress bars.

    Returns
    -------
    dict
        The ``results.json`` record (:func:`tcdn.transfer.format_table` prints it).
    """
    from tcdn import runlock
    from tcdn.device import resolve_device
    from tcdn.outputs import check_output_folder, claim_folder, refuse_links
    from tcdn.transfer.results import check_results_dir, is_transfer_results

    if config.dataset != "videos":
        for flag, value in (("--labels", labels), ("--max-frames", max_frames)):
            if value is not None:
                raise TcdnError(f"{flag} applies to --dataset videos only: drop it")
    dev = str(resolve_device(device or "auto"))
    check_results_dir(out)  # a results.json there must be a fine-tuning's, and not a link
    folder = check_output_folder(  # before any work: a folder of the user's own files is refused
        Path(out),
        FINETUNE_KIND,
        recognise=lambda p: is_transfer_results(p / "results.json"),
        what="fine-tuning folder",
    )
    refuse_links(folder, ("runs",))  # the fine-tuning runs: never into a linked folder
    with runlock.hold(folder):
        claim_folder(folder, FINETUNE_KIND)
        return _finetune(
            data,
            checkpoint,
            config,
            Path(out),
            labels=labels,
            max_frames=max_frames,
            size=size,
            threads=threads,
            resume=resume,
            device=dev,
            progress=progress,
        )


def _finetune(
    data: PathLike,
    checkpoint: dict[str, Any] | PathLike,
    config: FinetuneConfig,
    out: Path,
    *,
    labels: PathLike | None,
    max_frames: int | None,
    size: int | None,
    threads: int | None,
    resume: bool,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    import torch

    from tcdn.data.load import open_collection
    from tcdn.features.write import checkpoint_of
    from tcdn.transfer.images import read_dataset, video_frames
    from tcdn.transfer.protocol import run_transfer
    from tcdn.transfer.results import write_results

    if threads:
        torch.set_num_threads(threads)
    ckpt = checkpoint_of(checkpoint)
    assert ckpt is not None
    side = size or int(ckpt["config"]["image_size"])
    if config.dataset == "videos":
        frames = open_collection(
            data, side, labels_csv=labels, max_frames=max_frames, progress=progress
        )
        images = video_frames(frames, str(data))
    else:
        images = read_dataset(config.dataset, data, side)
    results = run_transfer(
        images, ckpt, config, out, resume=resume, device=device, progress=progress
    )
    path = write_results(out, results)
    log.info("wrote %s", path)
    return results
