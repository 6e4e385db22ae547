"""Backbones (``tcdn.models``): the registry, shapes at several input sizes, layers, init."""

from __future__ import annotations

import pytest
import torch

from tcdn.errors import TcdnError
from tcdn.models import MODELS, AlexNet, build_model

SMALL = {"embed_dim": 16, "fc6_dim": 64}


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(TcdnError, match="unknown model 'vgg99'") as info:
        build_model("vgg99")
    for name in MODELS:
        assert name in str(info.value)


def test_registry_builds_alexnets() -> None:
    assert {"alexnet", "alexnet_lrcn"} <= set(MODELS)
    assert isinstance(build_model("alexnet", **SMALL), AlexNet)


def test_alexnet_at_227_default_widths() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", embed_dim=1024).eval()
    assert model.num_features == 4096
    with torch.no_grad():
        x = torch.randn(1, 3, 227, 227)
        assert model(x).shape == (1, 1024)
        # pool5 is 256 x 6 x 6 at 227, as in bvlc_alexnet
        assert model.forward_features(x, "pool5").shape == (1, 256 * 6 * 6)
        # conv1: 96 x 27 x 27 after the 3/2 pool (Caffe's ceil mode)
        assert model.forward_features(x, "conv1").shape == (1, 96 * 27 * 27)


@pytest.mark.parametrize("size", [64, 48, 40])
def test_alexnet_small_inputs(size: int) -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", **SMALL).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, size, size))
    assert out.shape == (3, 16)
    assert torch.isfinite(out).all()


@pytest.fixture(scope="module")
def small_alexnet() -> AlexNet:
    torch.manual_seed(0)
    return build_model("alexnet", **SMALL).eval()


@pytest.mark.parametrize("layer", AlexNet.layer_names)
def test_forward_features_every_layer(small_alexnet: AlexNet, layer: str) -> None:
    model = small_alexnet
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = model.forward_features(x, layer=layer)
        out = model(x)
    assert feats.ndim == 2 and feats.shape[0] == 2
    expected_dim = {"pool5": 256 * 36, "fc6": 64, "fc7": 16}
    if layer in expected_dim:
        assert feats.shape[1] == expected_dim[layer]
    if layer == "fc7":
        torch.testing.assert_close(feats, out)  # fc7 is the embedding (eval: no dropout)
    else:
        assert (feats >= 0).all()  # conv and fc6 outputs are taken after their ReLU
    if layer == "fc6":
        assert feats.shape[1] == model.num_features
        assert (feats > 0).any()


def test_forward_features_unknown_layer(small_alexnet: AlexNet) -> None:
    model = small_alexnet
    with pytest.raises(TcdnError, match="unknown layer 'fc8'") as info:
        model.forward_features(torch.zeros(1, 3, 48, 48), layer="fc8")
    assert "fc6" in str(info.value)  # lists the layers it has


def test_caffe_init() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", init="caffe", **SMALL)
    conv1 = model.stages["conv1"][0]
    assert conv1.weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert conv1.weight.mean().abs().item() < 1e-3
    assert torch.all(conv1.bias == 0)
    assert torch.all(model.stages["conv2"][0].bias == 1)
    fc6 = model.stages["fc6"][0]
    assert fc6.weight.std().item() == pytest.approx(0.005, rel=0.03)
    assert torch.all(fc6.bias == 1)
    assert torch.all(model.stages["fc7"][1].bias == 0)


def test_kaiming_init_differs_from_caffe() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", **SMALL)
    assert model.stages["conv1"][0].weight.std().item() > 0.02


@pytest.mark.parametrize(
    ("options", "match"),
    [({"init": "xavier"}, "unknown init 'xavier'"), ({"dropout": 1.0}, "dropout must be in")],
)
def test_bad_model_options(options: dict, match: str) -> None:
    with pytest.raises(TcdnError, match=match):
        build_model("alexnet", **SMALL, **options)


def test_dropout_active_only_in_training() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet", **SMALL)
    x = torch.randn(2, 3, 48, 48)
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # dropout 0.5 by default
    model.eval()
    assert torch.equal(model(x), model(x))


def test_alexnet_lrcn_at_64() -> None:
    torch.manual_seed(0)
    model = build_model("alexnet_lrcn", **SMALL)
    conv = model.stages["conv1"][0]
    assert (conv.out_channels, conv.kernel_size, conv.stride) == (96, (7, 7), (2, 2))
    assert model.stages["conv5"][0].out_channels == 384
    x = torch.randn(2, 3, 64, 64)
    model.train()
    # the release's net has no dropout: training-mode outputs are deterministic
    out = model(x)
    assert out.shape == (2, 16)
    assert torch.equal(out, model(x))
    assert model.forward_features(x, "fc6").shape == (2, 64)
