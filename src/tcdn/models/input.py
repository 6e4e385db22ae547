"""What a network sees: ``uint8`` frames turned into normalised input tensors.

Every network input goes through :func:`to_input` with the mean of :func:`channel_mean`, in
training, in feature extraction and in the benchmarks; the training options ``input_norm:
meanstd`` and ``motion`` (the frame's successor as more channels) go through
:class:`InputTransform` instead.
"""

from __future__ import annotations

from typing import Any

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


# -- input options: per-channel standardisation and motion channels -------------------------------
#: input channels of each ``motion`` option (the vocabulary lives in tcdn.training.config)
MOTION_CHANNELS = {"none": 3, "diff": 6, "stack": 6, "diffonly": 3}
#: frames sampled for the standard deviations of ``input_norm: meanstd``
STD_SAMPLE = 2000


def successor_rows(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The successor of every row of a frame set whose video ``v`` holds the rows
    ``offsets[v]:offsets[v + 1]``: ``(next_row, sign)``, both ``(N,)``.

    ``next_row[i]`` is the next row of the same video; the last row of a video gets its
    predecessor instead (itself in a one-frame video) and ``sign`` -1 there (1 elsewhere), so that
    ``sign * (x[next_row] - x)`` is the forward difference ``x[t+1] - x[t]``, and the backward
    difference ``x[t] - x[t-1]`` at the end of a video.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    n = int(offsets[-1]) if len(offsets) else 0
    nxt = np.arange(n, dtype=np.int64) + 1
    sign = np.ones(n, np.float32)
    starts, ends = offsets[:-1], offsets[1:]
    full = ends > starts
    last, first = ends[full] - 1, starts[full]
    nxt[last] = np.maximum(last - 1, first)
    sign[last] = -1.0
    return nxt, sign


class InputTransform:
    """``uint8`` frames (and their successors) -> the network input, for the training options
    ``input_norm`` and ``motion``; training and feature extraction share it, and its statistics
    travel in the checkpoint (:meth:`state`), so extraction sees exactly what training saw.

    Channels, from frames in [0, 1]: ``motion="none"`` the frame; ``"diff"`` the frame and
    ``sign * (successor - frame)`` (:func:`successor_rows`); ``"stack"`` the frame and its
    successor; ``"diffonly"`` the difference alone. Each channel ``c`` is then
    ``(x_c - mean[c]) / std[c]``.

    Parameters
    ----------
    motion
        One of :data:`MOTION_CHANNELS`.
    mean, std
        ``(C,)`` per input channel, on the [0, 1] scale.
    """

    def __init__(self, motion: str, mean: np.ndarray, std: np.ndarray) -> None:
        if motion not in MOTION_CHANNELS:
            raise ValueError(f"motion must be one of {', '.join(MOTION_CHANNELS)}, got {motion!r}")
        c = MOTION_CHANNELS[motion]
        self.motion = motion
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != (c,) or self.std.shape != (c,):
            raise ValueError(f"motion {motion!r} needs {c} means and stds, got {len(self.mean)}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()):
            raise ValueError("the input statistics are not finite")
        self.std = np.where(self.std > 0, self.std, np.float32(1.0)).astype(np.float32)

    @property
    def channels(self) -> int:
        return MOTION_CHANNELS[self.motion]

    @property
    def needs_successor(self) -> bool:
        return self.motion != "none"

    @classmethod
    def fit(
        cls, frames: Any, offsets: np.ndarray, *, norm: str, motion: str, seed: int = 0
    ) -> InputTransform:
        """The statistics of a collection's frames: the channel mean of :func:`channel_mean`;
        with ``norm="meanstd"``, the standard deviation of each channel (of the frames and of
        their differences) over :data:`STD_SAMPLE` frames drawn with ``seed``; with
        ``norm="mean"``, std 1 (on the [0, 1] scale: ``(x - mean) / 255`` as :func:`to_input`)."""
        if norm not in ("mean", "meanstd"):
            raise ValueError(f"norm must be mean or meanstd, got {norm!r}")
        n = len(frames)
        mean = channel_mean(frames, seed=seed) / np.float32(255.0)
        std = dstd = np.ones(3, np.float32)
        if norm == "meanstd":
            nxt, _ = successor_rows(offsets)
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(n, min(STD_SAMPLE, n), replace=False))
            sample = np.asarray(frames[idx]).astype(np.float32) / 255.0
            std = sample.reshape(-1, 3).std(axis=0)
            if motion in ("diff", "diffonly"):
                moved = np.asarray(frames[nxt[idx]]).astype(np.float32) / 255.0
                dstd = (moved - sample).reshape(-1, 3).std(axis=0)
        zero = np.zeros(3, np.float32)
        m2, s2 = (mean, std) if motion == "stack" else (zero, dstd)
        if motion == "none":
            return cls(motion, mean, std)
        if motion == "diffonly":
            return cls(motion, m2, s2)
        return cls(motion, np.concatenate([mean, m2]), np.concatenate([std, s2]))

    def state(self) -> dict[str, Any]:
        """Plain values and tensors (a checkpoint read with ``weights_only=True`` holds them)."""
        return {
            "motion": self.motion,
            "mean": torch.as_tensor(self.mean.copy()),
            "std": torch.as_tensor(self.std.copy()),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> InputTransform:
        return cls(
            str(state["motion"]),
            np.asarray(state["mean"], dtype=np.float32),
            np.asarray(state["std"], dtype=np.float32),
        )

    def __call__(
        self,
        frames: np.ndarray,
        successors: np.ndarray | None = None,
        sign: np.ndarray | None = None,
        *,
        device: torch.device | str = "cpu",
        augment: Any = None,
        params: Any = None,
    ) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 frames (with their ``(B, H, W, 3)`` successors and ``(B,)``
        signs of :func:`successor_rows` when :attr:`needs_successor`) -> ``(B, C, H, W)`` float32.

        ``augment`` (an :class:`~tcdn.augment.AppearanceAugment`) with ``params`` is applied to a
        frame and to its successor alike, before the difference is taken."""
        x = _unit(frames, device)
        if augment is not None:
            x = augment.apply_params(x, params)
        if self.needs_successor:
            if successors is None or sign is None:
                raise ValueError(f"motion {self.motion!r} needs each frame's successor and sign")
            y = _unit(successors, device)
            if augment is not None:
                y = augment.apply_params(y, params)
            if self.motion != "stack":
                s = torch.as_tensor(np.asarray(sign, dtype=np.float32), device=x.device)
                y = (y - x) * s.view(-1, 1, 1, 1)
            x = y if self.motion == "diffonly" else torch.cat([x, y], dim=1)
        mean = torch.as_tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def _unit(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.permute(0, 3, 1, 2).float() / 255.0
