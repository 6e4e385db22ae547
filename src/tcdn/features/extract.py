"""Features of the frames of a :class:`~tcdn.data.FrameSet`, from a network or from raw pixels.

Every source goes through the same path and returns ``(N, D)`` float32 rows aligned with the
frame set's rows, so a later step can join them back to videos, frames and labels.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn
from tqdm.auto import tqdm

from tcdn import __version__
from tcdn.data.frameset import FrameSet, take_rows
from tcdn.errors import TcdnError
from tcdn.features.featureset import FRAME_SOURCES, FeatureSet
from tcdn.models import Backbone
from tcdn.models.input import InputTransform, channel_mean, successor_rows, to_input
from tcdn.training.checkpoint import input_transform, model_from_checkpoint
from tcdn.training.config import TrainConfig

log = logging.getLogger(__name__)

#: frames put through the network at a time; a sharded extraction cuts its shards on multiples of
#: it, so every batch holds the same frames as in one process (and gives the same bits)
BATCH_SIZE = 256


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    frames: np.ndarray,
    mean: np.ndarray,
    *,
    layer: str | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "extracting features",
    transform: InputTransform | None = None,
    successors: Any = None,
    sign: np.ndarray | None = None,
    dtype: Any = np.float32,
    l2: bool = False,
) -> np.ndarray:
    """Run ``model.forward_features(x, layer)`` over ``(N, H, W, 3)`` uint8 frames -> ``(N, D)``
    ``dtype`` (float32; float16 halves the memory), written batch by batch into one array.

    ``layer=None`` is the network's own default feature layer (``fc6`` for AlexNet), below any
    projection head. The input is :func:`~tcdn.models.input.to_input` with ``mean``, or
    ``transform`` (a run's ``input_norm`` / ``motion``), which for motion input also needs each
    frame's ``successors`` (``(N, H, W, 3)``, row for row) and ``sign``
    (:func:`~tcdn.models.input.successor_rows`). ``l2``: each row divided by its length (a row
    of zeros stays zeros)."""
    was_training = model.training
    model.eval().to(device)
    out: np.ndarray | None = None
    starts = range(0, len(frames), batch_size)
    for s in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        batch = slice(s, s + batch_size)
        if transform is None:
            x = to_input(frames[batch], mean, device)
        else:
            after = successors[batch] if transform.needs_successor else None
            x = transform(
                frames[batch], after, None if sign is None else sign[batch], device=device
            )
        f = model.forward_features(x, layer=layer).float()  # type: ignore[operator]
        if l2:
            f = torch.nn.functional.normalize(f, dim=1)
        f = f.cpu().numpy()
        if out is None:  # the width is known once the first batch is through
            out = np.empty((len(frames), f.shape[1]), dtype=dtype)
        out[batch] = f
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype)


#: frames above which the raw-pixel baseline's PCA is fitted on this many frames drawn at random
#: and applied chunk by chunk, instead of fitted on every frame flattened at once (a million
#: 64x64 frames would take 49 GiB as float32)
RAW_PCA_SAMPLE = 20000


def raw_pixel_features(
    frames: Any,
    n_components: int = 128,
    seed: int = 0,
    *,
    sample: int = RAW_PCA_SAMPLE,
    chunk: int = 4096,
) -> np.ndarray:
    """Raw pixels (scaled to [0, 1], flattened) reduced by PCA to ``n_components`` dimensions: a
    baseline. ``frames``: ``(N, H, W, 3)`` uint8, an array or a store's lazy rows. Up to
    ``sample`` frames the PCA is fitted on all of them; beyond, on ``sample`` frames drawn at
    random (seeded by ``seed``), and every frame is then projected ``chunk`` at a time."""

    def flat(block: Any) -> np.ndarray:
        block = np.asarray(block)
        return block.reshape(len(block), -1).astype(np.float32) / 255.0

    n = len(frames)
    if n <= sample:
        x = flat(frames)
        k = int(min(n_components, x.shape[0], x.shape[1]))
        return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
    drawn = flat(frames[np.sort(np.random.default_rng(seed).choice(n, sample, replace=False))])
    k = int(min(n_components, drawn.shape[0], drawn.shape[1]))
    pca = PCA(n_components=k, random_state=seed).fit(drawn)
    del drawn
    out = np.empty((n, k), dtype=np.float32)
    for s in range(0, n, chunk):
        out[s : s + chunk] = pca.transform(flat(frames[s : s + chunk]))
    return out


# -- features of a frame set, the one path for `tcdn features` and the discovery pipeline ---------
class FrameFeaturizer:
    """Features of the rows ``rows`` of a frame set, from each source of :data:`FRAME_SOURCES`.

    ``checkpoint`` (a :func:`tcdn.training.load_checkpoint` dict) gives the ``trained`` network and,
    to ``random_init``, its architecture and input (mean, and the statistics and motion channels
    of ``input_norm`` / ``motion``); without one, ``random_init`` uses the
    default AlexNet at the frames' size and the frames' own channel mean. ``norm="l2"`` divides
    each network feature (``trained``, ``random_init``) by its length (``None``: the
    checkpoint's ``feature_norm``); raw pixels never are.

    Attributes
    ----------
    index
        The rows as a :class:`FeatureSet` with no feature columns: video, frame and label.
    config
        The checkpoint's :class:`~tcdn.training.TrainConfig`; ``None`` without a checkpoint.
    """

    def __init__(
        self,
        frames: FrameSet,
        rows: np.ndarray,
        checkpoint: dict[str, Any] | None,
        *,
        layer: str | None = None,
        norm: str | None = None,
        seed: int = 0,
        device: str = "cpu",
        progress: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        # a store's frames are read batch by batch as features are extracted, not all at once
        self.x = take_rows(frames.frames, rows)
        self.layer, self.seed, self.device, self.progress = layer, seed, device, progress
        self.norm = norm or "none"  # without a checkpoint; else the recipe's unless given
        self.batch_size = BATCH_SIZE
        self.dtype = np.dtype(dtype)
        self.checkpoint = checkpoint
        size = int(self.x.shape[1])
        self.model: Backbone | None = None
        self.config: TrainConfig | None = None
        self.transform: InputTransform | None = None
        self.x_next: Any = None
        self.sign: np.ndarray | None = None
        if checkpoint is not None:
            self.model, self.mean, self.config = model_from_checkpoint(checkpoint)
            self.transform = input_transform(checkpoint)
            if self.transform is not None and self.transform.needs_successor:
                # each row's successor: the next row of its video in this frame set (the
                # predecessor for a video's last row), as in training
                nxt, sign = successor_rows(frames.offsets)
                self.x_next = take_rows(frames.frames, nxt[rows])
                self.sign = sign[rows]
            self.layer = layer or self.model.default_layer
            self.norm = norm or self.config.feature_norm
            if self.config.image_size != size:
                raise TcdnError(
                    f"the checkpoint was trained on {self.config.image_size}px frames but these are {size}px"
                )
        else:
            self.mean = channel_mean(self.x, seed=seed)
        vid = frames.video_index[rows]
        self.index = FeatureSet(
            features=np.zeros((len(rows), 0), np.float32),
            video=np.array([frames.videos[v].name for v in vid], dtype=str),
            frame=frames.source_frame[rows],
            label=np.array([frames.videos[v].label or "" for v in vid], dtype=str),
            time=frames.seconds[rows],
        )

    def features(self, source: str, repeat: int = 0) -> np.ndarray:
        """``(N, D)`` features (of the ``dtype`` given, float32 by default) of the rows from
        ``source``; ``random_init`` builds a fresh network per ``repeat`` (seeded by
        ``seed + 1000 + repeat``)."""
        if source == "trained":
            if self.model is None:
                raise TcdnError("the 'trained' source needs a checkpoint (--checkpoint)")
            return self._extract(self.model, "extracting features")
        if source == "random_init":
            config = self.config or TrainConfig(image_size=int(self.x.shape[1]))
            with torch.random.fork_rng(devices=[]):  # seed the initialisation, leave the global RNG
                torch.manual_seed(self.seed + 1000 + repeat)
                net = config.build_model()
            return self._extract(net, f"random-init net {repeat + 1}")
        if source == "raw_pixels":
            return raw_pixel_features(self.x, seed=self.seed).astype(self.dtype, copy=False)
        raise TcdnError(
            f"unknown feature source {source!r}; choose from {', '.join(FRAME_SOURCES)}"
        )

    def _extract(self, model: nn.Module, desc: str) -> np.ndarray:
        return extract_features(
            model,
            self.x,
            self.mean,
            layer=self.layer,
            batch_size=self.batch_size,
            device=self.device,
            progress=self.progress,
            desc=desc,
            transform=self.transform,
            successors=self.x_next,
            sign=self.sign,
            dtype=self.dtype,
            l2=self.norm == "l2",
        )

    def feature_set(self, source: str, repeat: int = 0) -> FeatureSet:
        """:meth:`features` joined to :attr:`index`, with the facts needed to reproduce them in ``meta``."""
        features = self.features(source, repeat)
        return replace(self.index, features=features, meta=self.meta(source, repeat))

    def meta(self, source: str, repeat: int = 0) -> dict[str, Any]:
        """The facts needed to reproduce the features of ``source`` (a feature file's ``meta``)."""
        ckpt = self.checkpoint
        return {
            "tcdn_version": __version__,
            "source": source,
            "layer": None if source == "raw_pixels" else self.layer,
            "norm": "none" if source == "raw_pixels" else self.norm,
            "checkpoint": ckpt.get("path") if ckpt else None,
            "train_config": self.config.to_dict() if self.config else None,
            "image_size": int(self.x.shape[1]),
            "seed": self.seed,
            "repeat": repeat if source == "random_init" else None,
        }


def frame_features(
    frames: FrameSet,
    source: str,
    checkpoint: dict[str, Any] | None = None,
    *,
    rows: np.ndarray | None = None,
    layer: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    dtype: Any = np.float32,
    norm: str | None = None,
) -> FeatureSet:
    """The :class:`FeatureSet` of the rows ``rows`` of ``frames`` (default: every frame; e.g.
    :meth:`FrameSet.rows <tcdn.data.frameset.FrameSet.rows>`) from ``source`` (one of
    :data:`FRAME_SOURCES`), computed exactly as the discovery pipeline computes it (its first
    repeat for ``random_init``). See :class:`FrameFeaturizer` (``layer``, ``norm``);
    ``checkpoint`` is a :func:`tcdn.training.load_checkpoint` dict; ``dtype``: float32, or
    float16 for half the memory and file size."""
    if source not in FRAME_SOURCES:
        raise TcdnError(
            f"unknown feature source {source!r}; choose from {', '.join(FRAME_SOURCES)}"
        )
    featurizer = FrameFeaturizer(
        frames,
        frames.rows() if rows is None else rows,
        checkpoint,
        layer=layer,
        norm=norm,
        seed=seed,
        device=device,
        progress=progress,
        dtype=dtype,
    )
    return featurizer.feature_set(source)
