"""What a network sees: ``uint8`` frames turned into normalised input tensors.

Every network input goes through :func:`to_input` with the mean of :func:`channel_mean`, in
training, in feature extraction and in the benchmarks.
"""

from __future__ import annotations

import numpy as np
import torch


def channel_mean(frames: np.ndarray, max_frames: int = 10000, seed: int = 0) -> np.ndarray:
    """Per-channel mean (0-255) of up to ``max_frames`` frames: the mean subtracted from every input."""
    idx = np.arange(len(frames))
    if len(idx) > max_frames:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_frames, replace=False))
    return frames[idx].reshape(-1, 3).mean(axis=0, dtype=np.float64).astype(np.float32)


def to_input(
    frames: np.ndarray, mean: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32, mean subtracted, scaled to about [-0.5, 0.5]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    x = x.permute(0, 3, 1, 2).float()
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return (x - m) / 255.0
