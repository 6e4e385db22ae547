"""Caffe's two local response normalisations, as layers the backbones share.

:class:`CrossChannelLRN` computes exactly what :class:`torch.nn.LocalResponseNorm` computes (Caffe's
``ACROSS_CHANNELS``, AlexNet's and GoogLeNet's LRN) with a hand-written backward pass: PyTorch's
module builds it from a padded copy, a 3-D average pool, ``pow`` and a division, and autograd keeps
every intermediate, which made the two LRNs about a third of an AlexNet training step on CPU. Here
the forward is a squared input summed over the channel window by shifted in-place adds, and the
backward is Caffe's closed form; the results agree with PyTorch's to float rounding (summation order).

:class:`WithinChannelLRN` is Caffe's ``WITHIN_CHANNEL`` variant used by the CIFAR-10 "full" net.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, autograd, nn
from torch.nn import functional as F


def _channel_window_sum(s: Tensor, lo: int, hi: int) -> Tensor:
    """``out[:, c] = sum(s[:, c + d] for d in lo..hi)``, channels outside ``[0, C)`` counting as 0."""
    out = s.clone()
    channels = s.shape[1]
    for d in range(lo, hi + 1):
        if d == 0 or abs(d) >= channels:
            continue
        if d > 0:
            out[:, : channels - d] += s[:, d:]
        else:
            out[:, -d:] += s[:, : channels + d]
    return out


class _CrossChannelLRN(autograd.Function):
    """``y = x * b^-beta``, ``b_c = k + alpha / size * sum_{j in window(c)} x_j^2``; window
    ``c - size // 2 .. c + (size - 1) // 2`` as in :class:`torch.nn.LocalResponseNorm`."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
        b = _channel_window_sum(x * x, -(size // 2), (size - 1) // 2)
        b.mul_(alpha / size).add_(k)
        scale = b.pow(-beta)
        ctx.save_for_backward(x, b, scale)
        ctx.lrn = (size, alpha, beta)
        return x * scale

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, b, scale = ctx.saved_tensors
        size, alpha, beta = ctx.lrn
        # dL/dx_j = g_j b_j^-beta - 2 alpha beta / size * x_j * sum_{i: j in window(i)} g_i x_i b_i^(-beta-1)
        g_scaled = grad * scale
        t = g_scaled * x
        t.div_(b)
        acc = _channel_window_sum(t, -((size - 1) // 2), size // 2)
        acc.mul_(x).mul_(-2.0 * alpha * beta / size)
        return g_scaled.add_(acc), None, None, None, None


class CrossChannelLRN(nn.Module):
    """Local response normalisation across channels (Caffe's ``LRN``, ``ACROSS_CHANNELS``): the
    function of :class:`torch.nn.LocalResponseNorm`, faster and lighter in memory on CPU."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = _CrossChannelLRN.apply(x, self.size, self.alpha, self.beta, self.k)
        return out

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class WithinChannelLRN(nn.Module):
    """Caffe's ``LRN`` with ``norm_region: WITHIN_CHANNEL``: each value is divided by
    ``(1 + alpha * m)^beta``, ``m`` the mean of the squares over the ``size x size`` window around it
    (zero-padded at the borders, the padding counted in the mean as Caffe does)."""

    def __init__(self, size: int = 3, alpha: float = 5e-5, beta: float = 0.75) -> None:
        super().__init__()
        if size % 2 != 1:
            raise ValueError(f"size must be odd, got {size}")
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: Tensor) -> Tensor:
        mean_sq = F.avg_pool2d(
            x * x, self.size, stride=1, padding=self.size // 2, count_include_pad=True
        )
        return x * (1.0 + self.alpha * mean_sq).pow(-self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}"
