"""Appearance and motion, each its own network (the training option ``streams: 2``).

The input is ``motion: diff``'s six channels: the RGB frame and its difference to its successor
(:mod:`tcdn.models.input`). :class:`TwoStream` runs the first three channels through one backbone
(the *appearance* stream) and the last three through another of the same kind (the *motion*
stream), each with its own weights. Both outputs are L2-normalised per stream before they are
joined, so that neither stream dominates the other by the scale of its activations:

- ``forward``: ``[a / |a|, m / |m|] / sqrt(2)``, a unit vector whose cosine similarity with
  another input's is the mean of the two streams' (a temporal loss on it teaches both streams);
- ``forward_features(x, layer)``: ``[a / |a|, m / |m|]`` at ``layer`` (``fc6`` by default), the
  fused feature discovery clusters; ``stream_features`` gives one stream alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tcdn.models.base import Backbone

#: the streams and the input channels each one reads
STREAMS = {"appearance": slice(0, 3), "motion": slice(3, 6)}


class TwoStream(Backbone):
    """Two backbones of one kind side by side: ``appearance`` sees channels 0-2 of a
    ``(B, 6, H, W)`` input, ``motion`` channels 3-5.

    Parameters
    ----------
    appearance, motion
        Backbones that take 3-channel input, with the same layer names (built alike).
    """

    in_channels = 6

    def __init__(self, appearance: Backbone, motion: Backbone) -> None:
        nn.Module.__init__(self)
        if appearance.layer_names != motion.layer_names:
            raise ValueError("the two streams must be the same kind of network")
        self.appearance = appearance
        self.motion = motion
        self.layer_names = appearance.layer_names
        self.default_layer = appearance.default_layer
        self.input_size = appearance.input_size
        self.embed_dim = appearance.embed_dim + motion.embed_dim
        self.num_features = appearance.num_features + motion.num_features
        self.init = appearance.init

    @property
    def stages(self) -> dict[str, nn.Module]:  # type: ignore[override]  # read by grad_norms
        """Both streams' stages, named ``appearance.conv1``, ..., ``motion.fc7``."""
        return {
            f"{stream}.{name}": module
            for stream in STREAMS
            for name, module in getattr(self, stream).stages.items()
        }

    def apply_init(self, init: str) -> None:
        self.appearance.apply_init(init)
        self.motion.apply_init(init)
        self.init = self.appearance.init

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 6:
            raise ValueError(
                f"a two-stream network takes (B, 6, H, W) input (the frame and its difference to "
                f"the next, motion: diff), got {tuple(x.shape)}"
            )

    def stream_features(self, x: Tensor, stream: str, layer: str | None = None) -> Tensor:
        """One stream's ``(B, D)`` output at ``layer`` (not normalised), from the 6-channel input."""
        self._check(x)
        net: Backbone = getattr(self, stream)
        return net.forward_features(x[:, STREAMS[stream]], net.check_layer(layer))

    def forward_features(self, x: Tensor, layer: str | None = None) -> Tensor:
        layer = self.check_layer(layer)
        parts = [F.normalize(self.stream_features(x, s, layer), dim=1) for s in STREAMS]
        return torch.cat(parts, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        a = F.normalize(self.appearance(x[:, STREAMS["appearance"]]), dim=1)
        m = F.normalize(self.motion(x[:, STREAMS["motion"]]), dim=1)
        return torch.cat([a, m], dim=1) / math.sqrt(2.0)
