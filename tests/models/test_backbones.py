"""Backbones (``tcdn.models``): the registry, shapes at several input sizes, layers, init."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from tcdn.errors import TcdnError
from tcdn.models import (
    MODELS,
    AlexNet,
    Backbone,
    CifarNet,
    build_model,
    count_parameters,
    register_model,
)
from tcdn.models.layers import CrossChannelLRN, WithinChannelLRN

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


def test_torch_init_differs_from_caffe() -> None:
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


# -- every backbone: the shared interface ---------------------------------------------------------
# name -> (small build options, a small input side for the fast checks)
BACKBONES: dict[str, tuple[dict, int]] = {
    "alexnet": (SMALL, 48),
    "alexnet_lrcn": (SMALL, 48),
    "alexnet_bn": (SMALL, 48),
    "cifar10_quick": ({"embed_dim": 16}, 32),
    "cifar10_full": ({"embed_dim": 16}, 32),
    "googlenet": ({"embed_dim": 16}, 64),
    "resnet18": ({"embed_dim": 16}, 64),
}


def _build(name: str, **options: object) -> Backbone:
    torch.manual_seed(0)
    return build_model(name, **{**BACKBONES[name][0], **options})


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def backbone(request: pytest.FixtureRequest) -> tuple[Backbone, int]:
    return _build(request.param).eval(), BACKBONES[request.param][1]


def test_registry_has_every_backbone() -> None:
    assert set(BACKBONES) == set(MODELS)
    for name in MODELS:
        assert isinstance(_build(name), Backbone)


def test_register_model_refuses_a_second_entry_of_a_name() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_model("alexnet")(lambda **kw: None)  # type: ignore[arg-type,return-value]
    assert MODELS["alexnet"].__name__ == "alexnet"


def _stage_outputs(model: Backbone, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The full forward, with every stage's output caught by a hook."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        stage.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out))
        for name, stage in model.stages.items()
    ]
    try:
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


def test_forward_features_is_a_prefix_of_forward(backbone: tuple[Backbone, int]) -> None:
    model, side = backbone
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out, seen = _stage_outputs(model, x)
        assert list(seen) == list(model.layer_names)
        for layer in model.layer_names:
            feats = model.forward_features(x, layer)
            assert feats.shape == (2, model.feature_dim(layer, side)), layer
            torch.testing.assert_close(feats, seen[layer].flatten(1), rtol=0, atol=0)
        torch.testing.assert_close(model.forward_features(x, model.layer_names[-1]), out)
        # no layer named: the default discovery layer, whose width is num_features
        default = model.forward_features(x)
        torch.testing.assert_close(default, model.forward_features(x, model.default_layer))
    assert out.shape == (2, model.embed_dim)
    assert default.shape[1] == model.num_features == model.feature_dim()


def test_unknown_layer_lists_the_layers(backbone: tuple[Backbone, int]) -> None:
    model, side = backbone
    with pytest.raises(TcdnError, match="unknown layer 'fc99'") as info:
        model.forward_features(torch.zeros(1, 3, side, side), layer="fc99")
    for layer in model.layer_names:
        assert layer in str(info.value)
    with pytest.raises(TcdnError, match="unknown layer"):
        model.feature_dim("fc99")


def test_eval_is_deterministic_and_feature_dim_keeps_the_mode(
    backbone: tuple[Backbone, int],
) -> None:
    model, side = backbone
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    try:
        model.feature_dim("conv1", side)
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_gradients_reach_every_parameter(name: str) -> None:
    model = _build(name).train()
    side = BACKBONES[name][1]
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(4))
    model(x).pow(2).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize(
    ("name", "sides"),
    [
        ("cifar10_quick", (32, 24, 40, 64)),
        ("cifar10_full", (32, 24, 64)),
        ("googlenet", (32, 96)),
        ("resnet18", (32, 100)),
    ],
)
def test_other_input_sizes(name: str, sides: tuple[int, ...]) -> None:
    model = _build(name).eval()
    with torch.no_grad():
        for side in sides:
            out = model(torch.randn(1, 3, side, side))
            assert out.shape == (1, 16), side
            assert torch.isfinite(out).all()
            # the layers after the adaptive pool have the same width at every size
            assert model.feature_dim(model.layer_names[-2], side) == model.feature_dim(
                model.layer_names[-2]
            )


@pytest.mark.parametrize(
    ("name", "shapes"),
    [
        (
            "googlenet",
            {
                "conv1": (64, 56, 56),
                "conv2": (192, 28, 28),
                "inception_3a": (256, 28, 28),
                "inception_3b": (480, 28, 28),
                "inception_4a": (512, 14, 14),
                "inception_4e": (832, 14, 14),
                "inception_5a": (832, 7, 7),
                "inception_5b": (1024, 7, 7),
                "pool": (1024,),
                "fc": (16,),
            },
        ),
        (
            "resnet18",
            {
                "conv1": (64, 56, 56),
                "layer1": (64, 56, 56),
                "layer2": (128, 28, 28),
                "layer3": (256, 14, 14),
                "layer4": (512, 7, 7),
                "pool": (512,),
                "fc": (16,),
            },
        ),
    ],
)
def test_layer_shapes_at_224(name: str, shapes: dict[str, tuple[int, ...]]) -> None:
    model = _build(name).eval()
    with torch.no_grad():
        _, seen = _stage_outputs(model, torch.randn(1, 3, 224, 224))
    for layer, shape in shapes.items():
        assert tuple(seen[layer].shape[1:]) == shape, layer


def test_cifar_layer_shapes_at_32() -> None:
    for name, ip1 in (("cifar10_quick", 64), ("cifar10_full", 16)):
        model = _build(name).eval()
        with torch.no_grad():
            _, seen = _stage_outputs(model, torch.randn(1, 3, 32, 32))
        assert tuple(seen["conv1"].shape[1:]) == (32, 16, 16)
        assert tuple(seen["conv2"].shape[1:]) == (32, 8, 8)
        assert tuple(seen["conv3"].shape[1:]) == (64, 8, 8)
        assert tuple(seen["pool3"].shape[1:]) == (64 * 4 * 4,)
        assert tuple(seen["ip1"].shape[1:]) == (ip1,)


def _conv_params(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_parameter_counts_match_the_published_networks() -> None:
    # ResNet-18 with its 1000-way fc: the ImageNet model's 11,689,512
    assert count_parameters(build_model("resnet18", embed_dim=1000)) == 11_689_512
    # bvlc_alexnet (grouped convs, 60,965,224 parameters) up to fc7 4096, i.e. without its fc8
    fc8 = 4096 * 1000 + 1000
    assert count_parameters(build_model("alexnet", embed_dim=4096)) == 60_965_224 - fc8
    # GoogLeNet (bvlc_googlenet, no auxiliary heads): counted here from Szegedy et al.'s Table 1.
    # (torchvision's 6.6M differs: batch norm and a 3x3 conv where the paper has 5x5.)
    table = [
        (192, 64, 96, 128, 16, 32, 32),
        (256, 128, 128, 192, 32, 96, 64),
        (480, 192, 96, 208, 16, 48, 64),
        (512, 160, 112, 224, 24, 64, 64),
        (512, 128, 128, 256, 24, 64, 64),
        (512, 112, 144, 288, 32, 64, 64),
        (528, 256, 160, 320, 32, 128, 128),
        (832, 256, 160, 320, 32, 128, 128),
        (832, 384, 192, 384, 48, 128, 128),
    ]
    expected = _conv_params(3, 64, 7) + _conv_params(64, 64, 1) + _conv_params(64, 192, 3)
    for cin, c1, c3r, c3, c5r, c5, proj in table:
        expected += _conv_params(cin, c1, 1) + _conv_params(cin, c3r, 1) + _conv_params(c3r, c3, 3)
        expected += (
            _conv_params(cin, c5r, 1) + _conv_params(c5r, c5, 5) + _conv_params(cin, proj, 1)
        )
    expected += 1024 * 1000 + 1000
    googlenet = count_parameters(build_model("googlenet", embed_dim=1000))
    assert googlenet == expected
    assert 6_900_000 < googlenet < 7_100_000
    # Caffe's CIFAR-10 nets with their 10-way classifier as the embedding
    assert count_parameters(build_model("cifar10_quick", embed_dim=10)) == 145_578
    assert count_parameters(build_model("cifar10_full", embed_dim=10)) == 89_578


def test_alexnet_state_dict_keys_unchanged() -> None:
    keys = list(build_model("alexnet", **SMALL).state_dict())
    assert keys == [
        "stages.conv1.0.weight",
        "stages.conv1.0.bias",
        "stages.conv2.0.weight",
        "stages.conv2.0.bias",
        "stages.conv3.0.weight",
        "stages.conv3.0.bias",
        "stages.conv4.0.weight",
        "stages.conv4.0.bias",
        "stages.conv5.0.weight",
        "stages.conv5.0.bias",
        "stages.fc6.0.weight",
        "stages.fc6.0.bias",
        "stages.fc7.1.weight",
        "stages.fc7.1.bias",
    ]


# -- inits ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_unknown_init_is_refused_by_every_backbone(name: str) -> None:
    with pytest.raises(TcdnError, match="unknown init 'xavier'"):
        _build(name, init="xavier")


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_both_inits_build_and_differ(name: str) -> None:
    other = "he" if name == "alexnet_bn" else "caffe"  # alexnet_bn has no Caffe definition
    a, b = _build(name, init="torch"), _build(name, init=other)
    assert (a.init, b.init) == ("torch", other)
    assert _build(name, init="kaiming").init == "torch"  # the old name of "torch" still works
    first = next(iter(a.state_dict()))
    assert not torch.equal(a.state_dict()[first], b.state_dict()[first])


@pytest.mark.parametrize("name", ["cifar10_quick", "cifar10_full"])
def test_cifar_caffe_init(name: str) -> None:
    model = _build(name, init="caffe")
    conv1, conv3 = model.stages["conv1"][0], model.stages["conv3"][0]
    assert conv1.weight.std().item() == pytest.approx(1e-4, rel=0.1)
    assert conv3.weight.std().item() == pytest.approx(0.01, rel=0.1)
    ip1 = model.stages["ip1"]
    assert ip1.weight.std().item() == pytest.approx(
        0.1 if name == "cifar10_quick" else 0.01, rel=0.1
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            assert torch.all(m.bias == 0)


def test_googlenet_caffe_init_is_xavier_with_bias_0_2() -> None:
    model = _build("googlenet", init="caffe")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 + 9 * 6
    for m in convs:
        fan_in = m.weight[0].numel()
        assert m.weight.abs().max().item() <= (3 / fan_in) ** 0.5
        assert torch.all(m.bias == 0.2)
    conv = model.stages["inception_4e"].branch3[1][0]
    assert conv.weight.std().item() == pytest.approx((1 / conv.weight[0].numel()) ** 0.5, rel=0.05)
    assert torch.all(model.stages["fc"][1].bias == 0)


def test_resnet_inits() -> None:
    kaiming = _build("resnet18", init="torch")
    conv1 = kaiming.stages["conv1"][0]
    # He et al. 2015, fan-out: std = sqrt(2 / (64 * 7 * 7))
    assert conv1.weight.std().item() == pytest.approx((2 / (64 * 49)) ** 0.5, rel=0.05)
    caffe = _build("resnet18", init="caffe")
    assert caffe.stages["layer3"][0].conv1.weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert torch.all(caffe.stages["fc"].bias == 0)
    for model in (kaiming, caffe):
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


# -- details of the CIFAR and GoogLeNet layouts -----------------------------------------------------
def test_within_channel_lrn_matches_a_naive_loop() -> None:
    lrn = WithinChannelLRN(3, alpha=0.5, beta=0.75)  # a large alpha so that the division shows
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = torch.empty_like(x)
    n, c, h, w = x.shape
    for b, ch, i, j in itertools.product(range(n), range(c), range(h), range(w)):
        window = x[b, ch, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
        mean_sq = (window**2).sum() / 9  # zero padding counts in the mean, as in Caffe
        expected[b, ch, i, j] = x[b, ch, i, j] / (1 + 0.5 * mean_sq) ** 0.75
    torch.testing.assert_close(lrn(x), expected)
    with pytest.raises(ValueError, match="odd"):
        WithinChannelLRN(2)


def test_cifar_layouts() -> None:
    quick, full = _build("cifar10_quick"), _build("cifar10_full")
    assert quick.layer_names[-1] == "ip2" and quick.default_layer == "ip1"
    assert full.layer_names[-1] == "ip1" and full.default_layer == "pool3"
    assert not any(isinstance(m, WithinChannelLRN) for m in quick.modules())
    assert sum(isinstance(m, WithinChannelLRN) for m in full.modules()) == 2
    # cifar10_quick: max-pool before the ReLU in conv1, average pools after conv2 and conv3
    assert [type(m) for m in quick.stages["conv1"]] == [nn.Conv2d, nn.MaxPool2d, nn.ReLU]
    assert isinstance(quick.stages["pool3"][0], nn.AvgPool2d)
    with pytest.raises(TcdnError, match="unknown layout 'huge'"):
        CifarNet(layout="huge")


def test_googlenet_dropout_only_in_training() -> None:
    model = _build("googlenet")
    x = torch.randn(2, 3, 32, 32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    with pytest.raises(TcdnError, match="dropout must be in"):
        _build("googlenet", dropout=1.5)


# -- the LRN layers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "channels"), [(5, 8), (5, 3), (4, 7), (1, 4), (3, 2)])
def test_cross_channel_lrn_is_torchs_lrn(size: int, channels: int) -> None:
    # alpha large enough that the normalisation matters
    ours, ref = CrossChannelLRN(size, 0.3, 0.75, 1.5), nn.LocalResponseNorm(size, 0.3, 0.75, 1.5)
    gen = torch.Generator().manual_seed(size * 10 + channels)
    x = torch.randn(2, channels, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, channels, 4, 5, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(ours(x), x, g)
    (grad_ref,) = torch.autograd.grad(ref(x), x, g)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(ours, (x,))


def test_cross_channel_lrn_float32_and_channels_last() -> None:
    ours, ref = CrossChannelLRN(5), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0)
    x = torch.randn(3, 16, 9, 9, generator=torch.Generator().manual_seed(6)) * 30
    torch.testing.assert_close(ours(x), ref(x))
    x_cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.ones_like(x)
    (grad,) = torch.autograd.grad(ours(x_cl), x_cl, g)
    x_ref = x.clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad(ref(x_ref), x_ref, g)
    torch.testing.assert_close(grad, grad_ref)
