"""Appearance augmentation applied to every frame of a tuple on its own (an option; the paper's
configurations leave it off).

Why: where the same people act in every video (weizmann4), a temporal-coherence loss can be
minimised by recognising *who* is in a frame rather than *what* they do, because the negative
always comes from another video. Random, per-frame changes of appearance (flip, crop, colour)
make identity a less reliable cue. Where appearance is the signal (scenes, 5-Contexts), it can
hurt; it is off by default.

Every frame gets its own parameters, drawn from a :class:`torch.Generator` on the CPU (so the
draws do not depend on the device and the generator's state can go into a checkpoint). The
operations are vectorised over the batch: colour changes are broadcast arithmetic, the random
resized crop and the flip are one ``grid_sample`` with a per-frame affine grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: ITU-R BT.601 luma weights, the grey of "random grey" and of the saturation change
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AugmentParams:
    """Per-frame parameters of one batch; every field has ``N`` rows, one per frame.

    ``theta`` is ``(N, 2, 3)`` (crop and flip as an affine map of the output grid onto the
    input), the others are ``(N,)``.
    """

    theta: Tensor
    brightness: Tensor
    contrast: Tensor
    saturation: Tensor
    grey: Tensor
    hue: Tensor | None = None

    def __getitem__(self, rows: slice | Tensor) -> AugmentParams:
        return AugmentParams(
            self.theta[rows],
            self.brightness[rows],
            self.contrast[rows],
            self.saturation[rows],
            self.grey[rows],
            None if self.hue is None else self.hue[rows],
        )


class AppearanceAugment(nn.Module):
    """Per-frame random flip, resized crop, brightness, contrast, saturation and grey.

    Parameters
    ----------
    flip
        Probability of a horizontal flip (0.5).
    crop_scale
        Smallest share of the frame's area a crop keeps (0.6); 1 disables cropping. The crop's
        aspect ratio is drawn log-uniformly in [3/4, 4/3] (limited to what fits) and it is resized
        back to the full frame.
    brightness, contrast, saturation
        Strength ``s``: a factor drawn uniformly in ``[1 - s, 1 + s]`` multiplies the intensity,
        the difference from the frame's mean grey, and the difference from the pixel's grey.
        0 disables each.
    grey
        Probability of turning the frame grey (0.2).
    hue
        Strength ``h``: the chroma is rotated by an angle drawn uniformly in ``[-h, h]`` half
        turns (YIQ space, luma kept); 0 (the default) disables it. ``h = 1`` draws any hue.

    The defaults are common self-supervised settings, milder than SimCLR's, fixed a priori (not
    tuned on any evaluation set).
    """

    def __init__(
        self,
        *,
        flip: float = 0.5,
        crop_scale: float = 0.6,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        grey: float = 0.2,
        hue: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value, lo, hi in (
            ("flip", flip, 0.0, 1.0),
            ("crop_scale", crop_scale, 1e-3, 1.0),
            ("brightness", brightness, 0.0, 1.0),
            ("contrast", contrast, 0.0, 1.0),
            ("saturation", saturation, 0.0, 1.0),
            ("grey", grey, 0.0, 1.0),
            ("hue", hue, 0.0, 1.0),
        ):
            if not lo <= float(value) <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
        self.flip = float(flip)
        self.crop_scale = float(crop_scale)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.grey = float(grey)
        self.hue = float(hue)

    # -- parameters ----------------------------------------------------------------------------
    def sample_params(self, n: int, generator: torch.Generator | None = None) -> AugmentParams:
        """Draw the parameters of ``n`` frames, independently, on the CPU.

        The same number of values is drawn whatever the strengths, so that changing one
        strength does not shift the random stream of the others.
        """

        def uniform(lo: float, hi: float, size: tuple[int, ...] = (n,)) -> Tensor:
            return lo + (hi - lo) * torch.rand(size, generator=generator, dtype=torch.float64)

        flip = uniform(0, 1) < self.flip
        area = uniform(self.crop_scale, 1.0)
        ratio_u = uniform(0, 1)
        centre = uniform(0, 1, (n, 2))
        brightness = uniform(1 - self.brightness, 1 + self.brightness)
        contrast = uniform(1 - self.contrast, 1 + self.contrast)
        saturation = uniform(1 - self.saturation, 1 + self.saturation)
        grey = uniform(0, 1) < self.grey
        hue = (
            uniform(-self.hue, self.hue) * math.pi
        )  # drawn last: the draws above stay as they were

        # Crop width and height as shares of the frame's sides: w * h = area, w / h = ratio, with
        # the log-ratio limited so that both fit (area 1 leaves only ratio 1, the whole frame).
        lo = torch.clamp(area.log(), min=math.log(3 / 4))
        hi = torch.clamp(-area.log(), max=math.log(4 / 3))
        ratio = (lo + (hi - lo) * ratio_u).exp()
        w = (area * ratio).sqrt().clamp(max=1.0)
        h = (area / ratio).sqrt().clamp(max=1.0)
        # Centre such that the crop stays inside the frame, in [-1, 1] coordinates.
        cx = (2 * centre[:, 0] - 1) * (1 - w)
        cy = (2 * centre[:, 1] - 1) * (1 - h)
        sign = torch.where(flip, -1.0, 1.0).to(torch.float64)
        theta = torch.zeros(n, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = w * sign
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        return AugmentParams(
            theta.float(),
            brightness.float(),
            contrast.float(),
            saturation.float(),
            grey,
            hue.float(),
        )

    # -- applying them ---------------------------------------------------------------------------
    def apply_params(self, x: Tensor, params: AugmentParams) -> Tensor:
        """Augment ``x``, ``(N, 3, H, W)`` floats in [0, 1], with ``params`` of ``N`` frames.

        Returns a new ``(N, 3, H, W)`` tensor in [0, 1]. An operation whose strength is 0 is
        skipped, so an augmentation with every strength at 0 returns ``x`` unchanged.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x must be (N, 3, H, W), got {tuple(x.shape)}")
        if params.theta.shape[0] != x.shape[0]:
            raise ValueError(f"params are for {params.theta.shape[0]} frames, x has {x.shape[0]}")
        dev = x.device
        if self.crop_scale < 1.0 or self.flip > 0:
            theta = params.theta.to(dev, x.dtype)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

        def per_frame(v: Tensor) -> Tensor:
            return v.to(dev, x.dtype).view(-1, 1, 1, 1)

        luma = torch.tensor(_LUMA, device=dev, dtype=x.dtype).view(1, 3, 1, 1)
        if self.brightness > 0:
            x = (x * per_frame(params.brightness)).clamp(0, 1)
        if self.contrast > 0:
            mean = (x * luma).sum(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)
            x = (mean + per_frame(params.contrast) * (x - mean)).clamp(0, 1)
        if self.saturation > 0:
            grey = (x * luma).sum(dim=1, keepdim=True)
            x = (grey + per_frame(params.saturation) * (x - grey)).clamp(0, 1)
        if self.hue > 0 and params.hue is not None:
            x = _rotate_hue(x, per_frame(params.hue).view(-1)).clamp(0, 1)
        if self.grey > 0:
            grey = (x * luma).sum(dim=1, keepdim=True).expand_as(x)
            x = torch.where(per_frame(params.grey.float()) > 0.5, grey, x)
        return x

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``x``: ``(N, 3, H, W)`` in [0, 1]; every frame gets its own random parameters."""
        return self.apply_params(x, self.sample_params(x.shape[0], generator))

    def extra_repr(self) -> str:
        return (
            f"flip={self.flip}, crop_scale={self.crop_scale}, brightness={self.brightness}, "
            f"contrast={self.contrast}, saturation={self.saturation}, grey={self.grey}, "
            f"hue={self.hue}"
        )


#: RGB -> YIQ (NTSC); its inverse maps back
_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


def _rotate_hue(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate the chroma (I, Q) of ``(N, 3, H, W)`` RGB frames by ``(N,)`` angles in radians,
    keeping the luma Y."""
    to_yiq = torch.tensor(_YIQ, device=x.device, dtype=x.dtype)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(len(angle), 3, 3, device=x.device, dtype=x.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", m, x)
