"""GoogLeNet (Inception v1, Szegedy et al. 2015) with a 1024-wide fc embedding (paper Section 4.1.2).

The layout is Caffe's bvlc_googlenet (plain convolutions with biases and ReLU, no batch norm)::

    conv1  7x7/2 64 -> ReLU -> max-pool 3/2 -> LRN(5, 1e-4, 0.75)
    conv2  1x1 64 -> ReLU -> 3x3 192 -> ReLU -> LRN -> max-pool 3/2
    inception_3a, 3b -> max-pool 3/2 -> inception_4a .. 4e -> max-pool 3/2 -> inception_5a, 5b
    pool   global average pool (1024)
    fc     dropout 0.4 -> fc ``embed_dim`` (1024: the embedding, and the paper's feature)

Each inception module concatenates four branches: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5;
3x3/1 max-pool -> 1x1 projection, all followed by ReLU. The max-pools between inception groups
open the next group's stage (``inception_4a`` and ``inception_5a`` start with them), so each
``inception_*`` layer is that module's output. Pooling uses Caffe's ceil mode; the global average
pool is adaptive, so any input side from 32 up works. The two auxiliary classifiers of the original
only helped the 1000-way classification training: they are left out.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from tcdn.errors import TcdnError
from tcdn.models.base import Backbone, caffe_xavier_, register_model
from tcdn.models.layers import CrossChannelLRN

#: (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each module, Table 1 of Szegedy et al.
INCEPTION = OrderedDict(
    [
        ("inception_3a", (192, 64, 96, 128, 16, 32, 32)),
        ("inception_3b", (256, 128, 128, 192, 32, 96, 64)),
        ("inception_4a", (480, 192, 96, 208, 16, 48, 64)),
        ("inception_4b", (512, 160, 112, 224, 24, 64, 64)),
        ("inception_4c", (512, 128, 128, 256, 24, 64, 64)),
        ("inception_4d", (512, 112, 144, 288, 32, 64, 64)),
        ("inception_4e", (528, 256, 160, 320, 32, 128, 128)),
        ("inception_5a", (832, 256, 160, 320, 32, 128, 128)),
        ("inception_5b", (832, 384, 192, 384, 48, 128, 128)),
    ]
)


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.ReLU())


def _lrn() -> CrossChannelLRN:
    return CrossChannelLRN(5, alpha=1e-4, beta=0.75, k=1.0)


def _max_pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class Inception(nn.Module):
    """One inception module: four parallel branches concatenated along the channels."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, proj: int) -> None:
        super().__init__()
        self.branch1 = _conv(cin, c1, 1)
        self.branch3 = nn.Sequential(_conv(cin, c3r, 1), _conv(c3r, c3, 3))
        self.branch5 = nn.Sequential(_conv(cin, c5r, 1), _conv(c5r, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), _conv(cin, proj, 1))
        self.out_channels = c1 + c3 + c5 + proj

    def forward(self, x: Tensor) -> Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([b(x) for b in branches], dim=1)


class GoogLeNet(Backbone):
    """GoogLeNet up to its global average pool, then an fc embedding.

    Parameters
    ----------
    embed_dim
        Width of the fc layer after the 1024-wide global pool (1024 in the paper).
    dropout
        Dropout before the fc during training (0.4 as in bvlc_googlenet; 0 disables it).
    init
        ``"torch"`` (PyTorch's layer defaults) or ``"caffe"`` (bvlc_googlenet's fillers: Caffe's
        ``xavier``, uniform in ``±sqrt(3 / fan_in)``, for every conv and the fc; conv biases 0.2,
        fc bias 0).

    The discovery feature (:attr:`default_layer`) is ``fc``, the 1024 fc layer the paper extracts.
    """

    layer_names = ("conv1", "conv2", *INCEPTION, "pool", "fc")
    default_layer = "fc"
    input_size = 224

    def __init__(self, embed_dim: int = 1024, dropout: float = 0.4, init: str = "torch") -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise TcdnError(f"dropout must be in [0, 1), got {dropout}")
        self.embed_dim = embed_dim
        self.num_features = embed_dim
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        stages["conv1"] = nn.Sequential(_conv(3, 64, 7, stride=2), _max_pool(), _lrn())
        stages["conv2"] = nn.Sequential(_conv(64, 64, 1), _conv(64, 192, 3), _lrn(), _max_pool())
        for name, widths in INCEPTION.items():
            module = Inception(*widths)
            # the max-pool between inception groups opens the next group
            pooled = name in ("inception_4a", "inception_5a")
            stages[name] = nn.Sequential(_max_pool(), module) if pooled else module
        stages["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        stages["fc"] = nn.Sequential(nn.Dropout(dropout), nn.Linear(1024, embed_dim))
        self._set_stages(stages, init)

    def _caffe_init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                caffe_xavier_(m, 0.2)
            elif isinstance(m, nn.Linear):
                caffe_xavier_(m, 0.0)


@register_model("googlenet")
def googlenet(embed_dim: int = 1024, **kwargs: object) -> GoogLeNet:
    """GoogLeNet (bvlc_googlenet layout, no auxiliary heads) with an fc embedding of ``embed_dim``."""
    return GoogLeNet(embed_dim=embed_dim, **kwargs)  # type: ignore[arg-type]
