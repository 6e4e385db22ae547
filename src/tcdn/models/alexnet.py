"""AlexNet in Caffe's bvlc_alexnet layout (SPEC §3), and the authors' LRCN-style variant.

conv1 96 11x11/4 -> ReLU -> LRN(5, 1e-4, 0.75) -> max-pool 3/2; conv2 256 5x5 pad 2 groups 2 ->
ReLU -> LRN -> pool; conv3 384 3x3 pad 1; conv4 384 3x3 pad 1 g2; conv5 256 3x3 pad 1 g2 -> pool5
-> fc6 4096 -> ReLU -> (dropout) -> fc7 (the embedding: 1024 for Lq, 4096 for Ls).

``alexnet_bn`` is the same layout with BatchNorm after every convolution and after fc6 and no LRN
(as later AlexNet re-implementations): a random network whose frames start far apart.

Pooling uses Caffe's ceil mode; the LRN is :class:`~tcdn.models.layers.CrossChannelLRN` (the function
of ``torch.nn.LocalResponseNorm`` with a faster backward). An adaptive average pool brings pool5 to 6x6 whatever the input
size, so frames smaller than 227x227 (e.g. the 64x64 demo videos) go through the same network.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from tcdn.errors import TcdnError
from tcdn.models.base import Backbone, caffe_gaussian_, check_init, count_parameters, register_model
from tcdn.models.layers import CrossChannelLRN


class AlexNet(Backbone):
    """AlexNet-shaped embedding network.

    Parameters
    ----------
    embed_dim
        Width of fc7, the embedding the losses see.
    fc6_dim
        Width of fc6 (4096), whose ReLU output is the default discovery feature.
    conv
        ``(channels, kernel, stride, padding, groups)`` of conv1..conv5.
    pool_size
        Side of the adaptive pool that feeds fc6 (6 as in AlexNet at 227x227).
    dropout
        Dropout after fc6 during training (0 disables it).
    lrn
        Whether conv1 and conv2 are followed by local response normalisation.
    batch_norm
        BatchNorm after every convolution and after fc6 (those layers then have no bias).
    in_channels
        Channels of the input: 3 (RGB), or 6 with motion channels (:mod:`tcdn.models.input`).
    init
        ``"torch"`` (PyTorch's layer defaults), ``"caffe"`` (Gaussian: std 0.01 convs, 0.005 fcs,
        biases 0 / 1 as in bvlc_alexnet; not with ``batch_norm``) or ``"he"``
        (:func:`~tcdn.models.base.he_init_`).
    """

    layer_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7")
    default_layer = "fc6"
    input_size = 227

    def __init__(
        self,
        embed_dim: int = 1024,
        fc6_dim: int = 4096,
        conv: tuple[tuple[int, int, int, int, int], ...] = (
            (96, 11, 4, 0, 1),
            (256, 5, 1, 2, 2),
            (384, 3, 1, 1, 1),
            (384, 3, 1, 1, 2),
            (256, 3, 1, 1, 2),
        ),
        pool_size: int = 6,
        dropout: float = 0.5,
        lrn: bool = True,
        init: str = "torch",
        batch_norm: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if check_init(init) == "caffe" and batch_norm:
            raise TcdnError(
                "a BatchNorm AlexNet (alexnet_bn) has no Caffe definition: use init torch or he"
            )
        if not 0 <= dropout < 1:
            raise TcdnError(f"dropout must be in [0, 1), got {dropout}")
        if in_channels < 1:
            raise TcdnError(f"in_channels must be >= 1, got {in_channels}")
        self.embed_dim = embed_dim
        self.num_features = fc6_dim
        self.in_channels = in_channels
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        in_ch = in_channels
        for i, (ch, k, s, p, g) in enumerate(conv, start=1):
            layers: list[nn.Module] = [
                nn.Conv2d(in_ch, ch, k, stride=s, padding=p, groups=g, bias=not batch_norm)
            ]
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.ReLU(inplace=True))
            if lrn and i <= 2:
                layers.append(CrossChannelLRN(5, alpha=1e-4, beta=0.75, k=1.0))
            if i <= 2:
                layers.append(nn.MaxPool2d(3, stride=2, ceil_mode=True))
            stages[f"conv{i}"] = nn.Sequential(*layers)
            in_ch = ch
        stages["pool5"] = nn.Sequential(
            nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()
        )
        fc6: list[nn.Module] = [
            nn.Linear(in_ch * pool_size * pool_size, fc6_dim, bias=not batch_norm)
        ]
        if batch_norm:
            fc6.append(nn.BatchNorm1d(fc6_dim))
        stages["fc6"] = nn.Sequential(*fc6, nn.ReLU(inplace=True))
        stages["fc7"] = nn.Sequential(nn.Dropout(dropout), nn.Linear(fc6_dim, embed_dim))
        self._set_stages(stages, init)

    def _caffe_init(self) -> None:
        for name, stage in self.stages.items():
            for m in stage.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    one = name in ("conv2", "conv4", "conv5", "fc6")
                    std = 0.01 if isinstance(m, nn.Conv2d) else 0.005
                    caffe_gaussian_(m, std, 1.0 if one else 0.0)


@register_model("alexnet", in_channels=True, head=True)
def alexnet(embed_dim: int = 1024, **kwargs: object) -> AlexNet:
    """The paper's network: bvlc_alexnet up to fc6, then an fc7 embedding of ``embed_dim``."""
    return AlexNet(embed_dim=embed_dim, **kwargs)  # type: ignore[arg-type]


@register_model("alexnet_lrcn", in_channels=True, head=True)
def alexnet_lrcn(embed_dim: int = 1024, **kwargs: object) -> AlexNet:
    """The authors' release: LRCN's single-frame net (conv1 96 7x7/2, conv2 384, conv3/4 512, conv5 384), no dropout."""
    kwargs.setdefault("dropout", 0.0)
    conv = (
        (96, 7, 2, 0, 1),
        (384, 5, 2, 1, 2),
        (512, 3, 1, 1, 1),
        (512, 3, 1, 1, 2),
        (384, 3, 1, 1, 2),
    )
    return AlexNet(embed_dim=embed_dim, conv=conv, **kwargs)  # type: ignore[arg-type]


@register_model("alexnet_bn", in_channels=True, head=True)
def alexnet_bn(embed_dim: int = 1024, **kwargs: object) -> AlexNet:
    """bvlc_alexnet with BatchNorm after every convolution and after fc6, no LRN (convolutions and
    fc6 without bias): a random network whose frames start far apart, not collapsed."""
    kwargs.setdefault("lrn", False)
    return AlexNet(embed_dim=embed_dim, batch_norm=True, **kwargs)  # type: ignore[arg-type]


__all__ = ["AlexNet", "alexnet", "alexnet_bn", "alexnet_lrcn", "count_parameters"]
