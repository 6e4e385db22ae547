"""``tcdn features`` as a function: one feature source of a collection's frames, saved as a
feature file (:func:`write_features`); and the defaults every command that decodes frames for a
network works out before decoding: the frame side (:func:`frame_size`) and the layer
(:func:`check_layer`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tcdn.data.decode import DEFAULT_IMAGE_SIZE, check_frame_size
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet

if TYPE_CHECKING:
    from tcdn.features.shards import ShardOptions

#: the command's messages, under the logger name they have always had
log = logging.getLogger("tcdn")

PathLike = str | Path


def frame_size(size: int | None, checkpoint: dict[str, Any] | None) -> int:
    """The side of the frames to decode: ``size`` (``--size``), else the checkpoint's
    ``image_size``, else the paper's :data:`~tcdn.data.decode.DEFAULT_IMAGE_SIZE`."""
    if size is not None:
        return size
    if checkpoint is not None:
        side = int(checkpoint["config"]["image_size"])
        check_frame_size(side, "the checkpoint's image_size")  # before any decoding
        return side
    return DEFAULT_IMAGE_SIZE


def check_layer(layer: str | None, checkpoint: dict[str, Any] | None, size: int) -> None:
    """``layer`` (``--layer``) must name a layer of the network (the checkpoint's, else the
    default AlexNet): checked before decoding, on a network built without memory (the meta
    device)."""
    if layer is None:
        return
    import torch

    from tcdn.training.config import TrainConfig

    cfg = (
        TrainConfig.from_dict(checkpoint["config"])
        if checkpoint is not None
        else TrainConfig(image_size=max(size, 32))
    )
    with torch.device("meta"):
        model = cfg.build_model()
    if layer not in model.layer_names:
        raise TcdnError(
            f"--layer {layer!r}: the network ({cfg.model}) has no such layer; choose one of "
            f"{', '.join(model.layer_names)}"
        )


def checkpoint_of(checkpoint: dict[str, Any] | PathLike | None) -> dict[str, Any] | None:
    """A checkpoint dict as it is, or the one a checkpoint file or run folder holds."""
    if checkpoint is None or isinstance(checkpoint, dict):
        return checkpoint
    from tcdn.training.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


def write_features(
    videos: PathLike,
    out: PathLike,
    *,
    source: str = "trained",
    checkpoint: dict[str, Any] | PathLike | None = None,
    layer: str | None = None,
    norm: str | None = None,
    frame_stride: int = 1,
    max_per_video: int | None = None,
    seed: int = 0,
    float16: bool = False,
    labels: PathLike | None = None,
    size: int | None = None,
    max_frames: int | None = None,
    skip_bad: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> FeatureSet | None:
    """Compute one feature source of a collection's frames and save it as a feature file, as
    ``tcdn features`` does. Under ``torchrun`` every process embeds its share of the videos and
    rank 0 writes the file (:mod:`tcdn.features.shards`): the same bytes as one process.

    Parameters
    ----------
    videos
        A video folder or a frame store.
    out
        The feature file (``.npz``): checked before any work (only a feature file tcdn wrote
        is replaced, atomically).
    source, checkpoint, layer
        ``trained`` (the checkpoint's network; the default), ``random_init`` (the same network,
        random weights) or ``raw_pixels`` (pixels reduced by PCA); a checkpoint dict, file or
        run folder; the layer whose output is the feature (default: the network's own).
    norm
        ``"l2"``: each frame's network feature divided by its length; ``"none"``: as the layer
        gives it; ``None``: as the checkpoint's recipe says (``feature_norm``).
    frame_stride, max_per_video, seed, float16
        Keep every S-th frame of each video, at most M; the seed of the random-init network and
        of the PCA; store float16 features (half the memory and file size).
    labels, size, max_frames, skip_bad, device, progress
        How the collection is read (:func:`tcdn.open_collection`; the frame side defaults to
        the checkpoint's), the torch device (default ``auto``), progress bars.

    Returns
    -------
    FeatureSet or None
        The features saved, with the collection and the row selection in their ``meta``
        (``None`` on the ranks of a ``torchrun`` job other than 0).
    """

    from tcdn.device import resolve_device
    from tcdn.features.featureset import is_feature_file
    from tcdn.features.shards import ShardOptions
    from tcdn.outputs import check_output_file

    check_output_file(out, ours=is_feature_file)
    if source == "trained" and checkpoint is None:
        raise TcdnError(
            "--source trained (the default) needs --checkpoint; or choose --source random_init or raw_pixels"
        )
    dev = str(resolve_device(device or "auto"))
    ckpt = checkpoint_of(checkpoint)
    side = frame_size(size, ckpt)
    if source != "raw_pixels":
        check_layer(layer, ckpt, side)
    options = ShardOptions(
        side, Path(labels) if labels is not None else None, max_frames, skip_bad, frame_stride,
        max_per_video, layer, seed, dev, progress, "float16" if float16 else "float32", norm,
    )  # fmt: skip
    done = _compute(videos, source, ckpt, out, options)
    if done is None:
        return None  # another rank of a torchrun job writes the file
    feats, skipped, n_videos = done
    feats.meta.update(
        collection=str(videos),
        frame_stride=frame_stride,
        max_per_video=max_per_video,
        skipped=skipped,
    )
    path = feats.save(out)
    log.info(
        "wrote %d x %d %s features of %d videos to %s",
        *feats.features.shape,
        source,
        n_videos,
        path,
    )
    return feats


def _compute(
    videos: PathLike,
    source: str,
    ckpt: dict[str, Any] | None,
    out: PathLike,
    options: ShardOptions,
) -> tuple[FeatureSet, list[str], int] | None:
    """The features of :func:`write_features`, the videos skipped and the number of videos: in
    this process, or under torchrun shared by every rank (``None`` on ranks other than 0)."""
    from tcdn.features.extract import frame_features
    from tcdn.features.shards import sharded_frame_features, world_size

    if world_size() > 1:  # under torchrun: each process embeds its share, rank 0 writes the file
        done = sharded_frame_features(videos, source, ckpt, out, options)
        return None if done is None else (done.features, done.skipped, done.n_videos)
    frames = options.open(videos)
    feats = frame_features(
        frames, source, ckpt, rows=frames.rows(options.stride, options.max_per_video),
        layer=options.layer, norm=options.norm, seed=options.seed, device=options.device,
        progress=options.progress, dtype=options.dtype,
    )  # fmt: skip
    return feats, frames.skipped, len(frames.videos)
