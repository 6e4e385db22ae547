"""The CIFAR networks of the transfer experiments (SPEC §3, paper Tables 5/6), for 32x32 frames.

``cifar10_quick`` is Caffe's ``examples/cifar10/cifar10_quick`` net::

    conv1 32 5x5 pad 2 -> max-pool 3/2 -> ReLU
    conv2 32 5x5 pad 2 -> ReLU -> avg-pool 3/2
    conv3 64 5x5 pad 2 -> ReLU -> avg-pool 3/2 (pool3, 64x4x4 at 32x32)
    ip1 64 -> ip2 (the embedding; Caffe's ip2 was the 10-way classifier)

As in Caffe there is no ReLU between ip1 and ip2. ``cifar10_full`` is "Krizhevsky's CIFAR
network provided by Caffe" (the paper's footnote 3): Caffe's ``cifar10_full``, itself a copy of
cuda-convnet's ``layers-18pct.cfg``::

    conv1 32 5x5 pad 2 -> max-pool 3/2 -> ReLU -> LRN
    conv2 32 5x5 pad 2 -> ReLU -> avg-pool 3/2 -> LRN
    conv3 64 5x5 pad 2 -> ReLU -> avg-pool 3/2 (pool3)
    ip1 (the embedding; the original's only fc, the 10-way classifier)

Its LRN normalises *within* each channel over a 3x3 neighbourhood (Caffe's ``WITHIN_CHANNEL``,
cuda-convnet's ``rnorm``): ``x / (1 + alpha * mean_3x3(x^2))^beta`` with alpha 5e-5, beta 0.75.
Pooling uses Caffe's ceil mode, and an adaptive average pool brings pool3 to 4x4 whatever the input
size, so frames other than 32x32 go through the same fc layers.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from tcdn.errors import TcdnError
from tcdn.models.base import Backbone, caffe_gaussian_, register_model
from tcdn.models.layers import WithinChannelLRN

LAYOUTS = ("quick", "full")


class CifarNet(Backbone):
    """Caffe's CIFAR-10 networks as embedding networks.

    Parameters
    ----------
    embed_dim
        Width of the last fc layer, the embedding (ip2 for ``quick``, ip1 for ``full``).
    layout
        ``"quick"`` (cifar10_quick: three convs, ip1 64, ip2) or ``"full"`` (Krizhevsky's
        layers-18pct / Caffe's cifar10_full: within-channel LRN after conv1 and conv2, one fc).
    ip1_dim
        Width of ip1 in the ``quick`` layout (64); unused by ``full``.
    pool_size
        Side of the adaptive pool that feeds the first fc (4, pool3's side at 32x32).
    init
        ``"torch"`` (PyTorch's layer defaults) or ``"caffe"`` (the prototxt's Gaussian fillers: std
        1e-4 conv1, 0.01 conv2/conv3, 0.1 ip1/ip2 for quick and 0.01 ip1 for full; biases 0).

    The discovery feature (:attr:`default_layer`) is the last layer before the embedding: ip1 (64)
    for ``quick``, pool3 (64x4x4 = 1024) for ``full``.
    """

    input_size = 32

    def __init__(
        self,
        embed_dim: int = 64,
        layout: str = "quick",
        ip1_dim: int = 64,
        pool_size: int = 4,
        init: str = "torch",
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise TcdnError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        self.layout = layout
        full = layout == "full"
        self.layer_names = (
            ("conv1", "conv2", "conv3", "pool3", "ip1")
            if full
            else ("conv1", "conv2", "conv3", "pool3", "ip1", "ip2")
        )
        self.default_layer = "pool3" if full else "ip1"
        self.embed_dim = embed_dim

        def conv(cin: int, cout: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 5, padding=2)

        def avg_pool() -> nn.AvgPool2d:
            return nn.AvgPool2d(3, stride=2, ceil_mode=True)

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        conv1: list[nn.Module] = [conv(3, 32), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU()]
        conv2: list[nn.Module] = [conv(32, 32), nn.ReLU(), avg_pool()]
        if full:
            conv1.append(WithinChannelLRN(3, 5e-5, 0.75))
            conv2.append(WithinChannelLRN(3, 5e-5, 0.75))
        stages["conv1"] = nn.Sequential(*conv1)
        stages["conv2"] = nn.Sequential(*conv2)
        stages["conv3"] = nn.Sequential(conv(32, 64), nn.ReLU())
        stages["pool3"] = nn.Sequential(avg_pool(), nn.AdaptiveAvgPool2d(pool_size), nn.Flatten())
        pooled = 64 * pool_size * pool_size
        if full:
            stages["ip1"] = nn.Linear(pooled, embed_dim)
            self.num_features = pooled
        else:
            stages["ip1"] = nn.Linear(pooled, ip1_dim)
            stages["ip2"] = nn.Linear(ip1_dim, embed_dim)
            self.num_features = ip1_dim
        self._set_stages(stages, init)

    def _caffe_init(self) -> None:
        fc_std = 0.01 if self.layout == "full" else 0.1
        stds = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.01, "ip1": fc_std, "ip2": fc_std}
        for name, stage in self.stages.items():
            for m in stage.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    caffe_gaussian_(m, stds[name], 0.0)


@register_model("cifar10_quick")
def cifar10_quick(embed_dim: int = 64, **kwargs: object) -> CifarNet:
    """Caffe's cifar10_quick: conv 32/32/64 5x5, ip1 64, then an ip2 embedding of ``embed_dim``."""
    return CifarNet(embed_dim=embed_dim, layout="quick", **kwargs)  # type: ignore[arg-type]


@register_model("cifar10_full")
def cifar10_full(embed_dim: int = 64, **kwargs: object) -> CifarNet:
    """Krizhevsky's CIFAR layout (layers-18pct, Caffe's cifar10_full) with an ip1 embedding of ``embed_dim``."""
    return CifarNet(embed_dim=embed_dim, layout="full", **kwargs)  # type: ignore[arg-type]
