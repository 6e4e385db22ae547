"""What a transferred network reads: the checkpoint's own input, for still images or video frames.

A checkpoint trained with ``input_norm: meanstd`` or a ``motion`` option expects its input
standardised with the statistics it saved (:func:`tcdn.training.checkpoint.input_transform`), and
for motion input each frame's successor in its video. :func:`plan_input` decides, from the
checkpoint and from whether the labelled images are video frames, which part of the network a
classifier uses and how its input is made:

- ``motion: none``: the whole network on the RGB image (standardised as it was trained; the
  paper's input, the image minus its channel mean, when the checkpoint has no statistics);
- ``motion: diffonly`` / ``diff`` / ``stack`` with one network: the whole network on video frames
  with their successors; still images have no successor, so they are refused;
- two streams (``streams: 2``, ``motion: diff``): video frames feed both streams; still images
  feed the appearance stream alone (its weights, its half of the statistics).

The images travel as ``uint8`` with 3 channels (the frame), or 6 (the frame, then its successor)
when :attr:`NetInput.needs_successor`, with a sign per image (:func:`tcdn.models.input.successor_rows`).
:class:`NetInput` turns a batch of them, augmented and scaled to [0, 1], into the network input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tcdn.errors import TcdnError
from tcdn.models.input import InputTransform
from tcdn.training.checkpoint import input_transform
from tcdn.training.config import TrainConfig
from tcdn.transfer.classifier import APPEARANCE, WHOLE


@dataclass
class NetInput:
    """``uint8``-derived batches in [0, 1] -> a network's input.

    ``transform`` is the checkpoint's (``None``: the paper's input, minus ``mean``, a per-channel
    mean on the 0-255 scale of the training images)."""

    transform: InputTransform | None
    mean: np.ndarray
    part: str = WHOLE

    @property
    def needs_successor(self) -> bool:
        return self.transform is not None and self.transform.needs_successor

    @property
    def channels(self) -> int:
        """The ``uint8`` channels per image: 3, or 6 with the successor."""
        return 6 if self.needs_successor else 3

    def describe(self) -> str:
        if self.transform is None:
            what = "RGB minus the channel mean (the paper's input)"
        elif self.transform.motion == "none":
            what = "RGB standardised with the checkpoint's statistics"
        else:
            what = f"motion {self.transform.motion} (each frame with its successor), standardised"
        part = "the appearance stream" if self.part == APPEARANCE else "the whole network"
        return f"{part} on {what}"

    def __call__(self, x: Tensor, sign: Tensor | None = None) -> Tensor:
        """``x``: ``(B, C, H, W)`` in [0, 1] (``C`` = :attr:`channels`); ``sign``: ``(B,)``."""
        if self.transform is None:
            m = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            return x - m / 255.0
        t = self.transform
        if t.needs_successor:
            if x.shape[1] != 6 or sign is None:
                raise ValueError(f"motion {t.motion!r} needs each frame's successor and sign")
            frame, after = x[:, :3], x[:, 3:]
            if t.motion != "stack":
                after = (after - frame) * sign.to(x.device, x.dtype).view(-1, 1, 1, 1)
            x = after if t.motion == "diffonly" else torch.cat([frame, after], dim=1)
        mean = torch.as_tensor(t.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(t.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def plan_input(checkpoint: dict[str, Any], *, video: bool) -> tuple[InputTransform | None, str]:
    """The checkpoint's input transform for these images and the part of its network to use
    (:data:`WHOLE` or :data:`APPEARANCE`); a :class:`TcdnError` saying what to do when still images
    cannot feed it."""
    cfg = TrainConfig.from_dict(checkpoint["config"])
    transform = input_transform(checkpoint)
    if cfg.motion == "none" or video:
        return transform, WHOLE
    if cfg.streams == 2 and transform is not None:  # still images: the appearance stream alone
        rgb = InputTransform("none", transform.mean[:3], transform.std[:3])
        return rgb, APPEARANCE
    source = checkpoint.get("path", "the checkpoint")
    raise TcdnError(
        f"{source} was trained on motion input (motion: {cfg.motion}: each frame with its successor "
        "in the video), which a still image does not have: fine-tune it on video frames "
        "(--dataset videos), or pre-train a network that reads still images: "
        "`tcdn train ... --set motion=none` (RGB), or two streams "
        "(--set streams=2 --set motion=diff), whose appearance stream still images use"
    )


def encode_numpy(
    net_input: NetInput, images: np.ndarray, sign: np.ndarray | None, device: Any
) -> Tensor:
    """``(B, H, W, C)`` uint8 (and ``(B,)`` signs) -> the network input on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 255
    s = None if sign is None else torch.from_numpy(np.asarray(sign, np.float32))
    return net_input(x, s)
