"""The BatchNorm AlexNet, He init, motion input channels and the projection head."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tcdn.errors import TcdnError
from tcdn.models import (
    HEAD_MODELS,
    MULTICHANNEL_MODELS,
    ProjectionHead,
    add_projection_head,
    build_model,
    he_init_,
)
from tcdn.models.layers import CrossChannelLRN

SMALL = {"embed_dim": 16, "fc6_dim": 64, "pool_size": 1}


def test_alexnet_bn_layout() -> None:
    model = build_model("alexnet_bn", **SMALL)
    for i in range(1, 6):
        stage = model.stages[f"conv{i}"]
        conv, bn = stage[0], stage[1]
        assert isinstance(conv, nn.Conv2d) and conv.bias is None
        assert isinstance(bn, nn.BatchNorm2d) and bn.num_features == conv.out_channels
        assert not any(isinstance(m, CrossChannelLRN) for m in stage.modules())
    fc6 = model.stages["fc6"]
    assert isinstance(fc6[0], nn.Linear) and fc6[0].bias is None
    assert isinstance(fc6[1], nn.BatchNorm1d)
    assert model.default_layer == "fc6" and model.embed_dim == 16
    with pytest.raises(TcdnError, match="no Caffe definition"):
        build_model("alexnet_bn", init="caffe", **SMALL)


def test_in_channels() -> None:
    model = build_model("alexnet_bn", in_channels=6, **SMALL)
    assert model.in_channels == 6 and model.stages["conv1"][0].in_channels == 6
    assert model.eval()(torch.randn(2, 6, 48, 48)).shape == (2, 16)
    assert model.feature_dim(input_size=48) == 64
    assert {"alexnet", "alexnet_bn", "alexnet_lrcn"} <= MULTICHANNEL_MODELS
    plain = build_model("alexnet", in_channels=6, **SMALL)
    assert plain.stages["conv1"][0].weight.shape[1] == 6


def test_he_init_statistics() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet_bn", init="he", embed_dim=256, pool_size=1)
    assert model.init == "he"
    conv = model.stages["conv3"][0]  # 384 x 256 x 3 x 3: fan_out = 384 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (384 * 9)), rel=0.02)
    fc7 = model.stages["fc7"][1]  # fan_in = 4096
    assert fc7.weight.std().item() == pytest.approx(math.sqrt(2 / 4096), rel=0.02)
    assert torch.equal(fc7.bias, torch.zeros_like(fc7.bias))
    bn = model.stages["conv1"][1]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    # he_init_ is what init="he" does
    torch.manual_seed(1)
    a = build_model("alexnet", init="he", **SMALL)
    torch.manual_seed(1)
    b = build_model("alexnet", **SMALL)
    he_init_(b)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_projection_head() -> None:
    model = build_model("alexnet_bn", dropout=0.3, **SMALL)
    add_projection_head(model, 32, 8)
    head = model.stages["fc7"]
    assert isinstance(head, ProjectionHead)
    assert head[0].p == 0.3  # the replaced layer's dropout is kept
    assert head[1].in_features == 64 and head[1].bias is None and head[4].out_features == 8
    model.eval()
    x = torch.randn(3, 3, 48, 48)
    assert model(x).shape == (3, 8) and model.embed_dim == 8
    assert model.forward_features(x).shape == (3, 64)  # discovery stays below the head
    assert {"alexnet", "alexnet_bn", "alexnet_lrcn", "resnet18"} <= HEAD_MODELS
    resnet = add_projection_head(build_model("resnet18", embed_dim=16), 32, 8)
    assert resnet.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 8)
    with pytest.raises(TcdnError, match="projection head"):
        add_projection_head(build_model("googlenet", embed_dim=16), 32, 8)
