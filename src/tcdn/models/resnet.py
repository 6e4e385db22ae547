"""ResNet-18 (He et al. 2016) with an fc embedding: a modern extra backbone (SPEC §3).

::

    conv1   7x7/2 64 -> BN -> ReLU -> max-pool 3x3/2 pad 1
    layer1  2 basic blocks, 64        layer2  2 blocks, 128, first one stride 2
    layer3  2 blocks, 256, stride 2   layer4  2 blocks, 512, stride 2
    pool    global average pool (512)
    fc      fc ``embed_dim`` (the embedding)

A basic block is 3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus the input (through a strided 1x1
conv and BN where the shape changes, "option B"), then ReLU. Convolutions have no bias (BN follows).
With a 1000-way fc this is the 11,689,512-parameter ImageNet ResNet-18. The global pool is
adaptive, so any input side from 32 up works.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from tcdn.models.base import Backbone, caffe_gaussian_, register_model


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(Backbone):
    """ResNet-18 up to its global average pool, then an fc embedding.

    Parameters
    ----------
    embed_dim
        Width of the fc embedding after the 512-wide global pool.
    widths
        Channels of layer1..layer4 (64, 128, 256, 512).
    init
        ``"torch"`` (torchvision's: He et al. 2015 as the ResNet paper: normal, fan-out, for every conv; the fc
        keeps PyTorch's default) or ``"caffe"`` (no Caffe training definition of ResNet-18 was
        published; bvlc_alexnet-style Gaussian, std 0.01, for convs and the fc, fc bias 0).
        Batch norms start at weight 1, bias 0 either way.

    The discovery feature (:attr:`default_layer`) is ``pool``, the 512-wide global average pool.
    """

    layer_names = ("conv1", "layer1", "layer2", "layer3", "layer4", "pool", "fc")
    default_layer = "pool"
    input_size = 224

    def __init__(
        self,
        embed_dim: int = 512,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        init: str = "torch",
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.num_features = widths[-1]
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["conv1"] = nn.Sequential(
            nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        cin = widths[0]
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            stages[f"layer{i}"] = nn.Sequential(
                BasicBlock(cin, width, stride), BasicBlock(width, width)
            )
            cin = width
        stages["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        stages["fc"] = nn.Linear(cin, embed_dim)
        self._set_stages(stages, init)

    def _reset_batch_norms(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _torch_init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self._reset_batch_norms()

    def _caffe_init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                caffe_gaussian_(m, 0.01, 0.0)
        self._reset_batch_norms()


@register_model("resnet18", head=True)
def resnet18(embed_dim: int = 512, **kwargs: object) -> ResNet18:
    """ResNet-18 (basic blocks, batch norm) with an fc embedding of ``embed_dim``."""
    return ResNet18(embed_dim=embed_dim, **kwargs)  # type: ignore[arg-type]
