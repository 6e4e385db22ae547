"""Features of every frame of a :class:`~tcdn.data.FrameSet`, from a network or from raw pixels.

Every source goes through the same path and returns ``(N, D)`` float32 rows aligned with the
frame set's rows, so a later step can join them back to videos, frames and labels.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn
from tqdm.auto import tqdm

from tcdn.train import to_input

log = logging.getLogger(__name__)


@torch.inference_mode()
def extract_features(
    model: nn.Module,
    frames: np.ndarray,
    mean: np.ndarray,
    *,
    layer: str = "fc6",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "extracting features",
) -> np.ndarray:
    """Run ``model.forward_features(x, layer)`` over ``(N, H, W, 3)`` uint8 frames -> ``(N, D)`` float32."""
    was_training = model.training
    model.eval().to(device)
    chunks = []
    starts = range(0, len(frames), batch_size)
    for s in tqdm(starts, desc=desc, unit="batch", disable=not progress):
        x = to_input(frames[s : s + batch_size], mean, device)
        chunks.append(model.forward_features(x, layer=layer).float().cpu().numpy())  # type: ignore[operator]
    model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def raw_pixel_features(frames: np.ndarray, n_components: int = 128, seed: int = 0) -> np.ndarray:
    """Raw pixels (scaled to [0, 1], flattened) reduced by PCA to ``n_components`` dimensions: a baseline."""
    x = frames.reshape(len(frames), -1).astype(np.float32) / 255.0
    n = int(min(n_components, x.shape[0], x.shape[1]))
    return PCA(n_components=n, random_state=seed).fit_transform(x).astype(np.float32)
