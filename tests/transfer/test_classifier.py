"""The classifier of a checkpoint's network and the weight transfer (``tcdn.transfer.classifier``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tcdn.errors import TcdnError
from tcdn.training.config import TrainConfig
from tcdn.transfer.classifier import Classifier, build_classifier, transfer_weights, weights_digest
from tests.conftest import tiny_checkpoint
from tests.transfer.conftest import cifar_checkpoint


def test_learned_init_copies_every_backbone_tensor(cifar_ckpt: dict[str, Any]) -> None:
    model, report = build_classifier(
        cifar_ckpt["config"], 10, init="trained", state=cifar_ckpt["model"], seed=1
    )
    assert report is not None
    own = model.state_dict()
    for name, tensor in cifar_ckpt["model"].items():
        assert torch.equal(own["backbone." + name], tensor), name
    assert [n for n, _ in report.loaded] == ["backbone." + n for n in cifar_ckpt["model"]]
    assert report.new == [("head.1.weight", (10, 8)), ("head.1.bias", (10,))]
    assert report.unused == []
    assert report.layers == ["conv1", "conv2", "conv3", "ip1", "ip2"]  # pool3 has no weights
    text = report.summary()
    assert "loaded 10 tensors" in text and "head.1.weight [10, 8]" in text
    assert report.to_dict()["new"][0] == {"name": "head.1.weight", "shape": [10, 8]}


def test_random_init_is_the_same_network_freshly_initialised(cifar_ckpt: dict[str, Any]) -> None:
    learned, _ = build_classifier(
        cifar_ckpt["config"], 10, init="trained", state=cifar_ckpt["model"], seed=5
    )
    rand, report = build_classifier(cifar_ckpt["config"], 10, init="random_init", seed=5)
    again, _ = build_classifier(cifar_ckpt["config"], 10, init="random_init", seed=5)
    assert report is None
    a, b, c = learned.state_dict(), rand.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    assert not torch.equal(a["backbone.stages.conv1.0.weight"], b["backbone.stages.conv1.0.weight"])
    assert torch.equal(a["head.1.weight"], b["head.1.weight"])  # the same new layer
    assert all(torch.equal(b[k], c[k]) for k in b)  # seeded


def test_build_leaves_the_callers_rng(cifar_ckpt: dict[str, Any]) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_classifier(cifar_ckpt["config"], 3, init="random_init", seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_upto_transfers_the_first_layers_only(cifar_ckpt: dict[str, Any]) -> None:
    model, report = build_classifier(
        cifar_ckpt["config"], 4, init="trained", state=cifar_ckpt["model"], seed=1, upto="conv3"
    )
    assert report is not None and report.layers == ["conv1", "conv2", "conv3"]
    own = model.state_dict()
    assert torch.equal(
        own["backbone.stages.conv3.0.weight"], cifar_ckpt["model"]["stages.conv3.0.weight"]
    )
    assert not torch.equal(
        own["backbone.stages.ip1.weight"], cifar_ckpt["model"]["stages.ip1.weight"]
    )
    assert ("backbone.stages.ip1.weight", (64, 1024)) in report.new
    assert [n for n, _ in report.unused] == [
        "stages.ip1.weight",
        "stages.ip1.bias",
        "stages.ip2.weight",
        "stages.ip2.bias",
    ]
    with pytest.raises(TcdnError, match="unknown layer 'fc6'"):
        build_classifier(
            cifar_ckpt["config"], 4, init="trained", state=cifar_ckpt["model"], upto="fc6"
        )


def test_shape_mismatch_is_a_clear_error() -> None:
    other = cifar_checkpoint(embed_dim=8, model_options={"ip1_dim": 32})
    cfg = cifar_checkpoint(embed_dim=8)["config"]
    model, _ = build_classifier(cfg, 3, init="random_init")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TcdnError, match=r"shape mismatch for stages\.ip1\.weight") as info:
        transfer_weights(model, other["model"], source="other.pt")
    assert "other.pt has [32, 1024]" in str(info.value)
    assert "needs [64, 1024]" in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing copied
    # the layers before the mismatch can still be transferred
    report = transfer_weights(model, other["model"], upto="pool3", source="other.pt")
    assert report.layers == ["conv1", "conv2", "conv3"]


def test_checkpoint_of_another_network_is_a_clear_error() -> None:
    model, _ = build_classifier(cifar_checkpoint()["config"], 3, init="random_init")
    with pytest.raises(
        TcdnError, match=r"stages\.conv1\.0\.weight: tiny\.pt has \[96, 3, 11, 11\]"
    ):
        transfer_weights(model, tiny_checkpoint()["model"], source="tiny.pt")
    state = dict(cifar_checkpoint()["model"])
    del state["stages.conv3.0.weight"]
    with pytest.raises(TcdnError, match=r"part\.pt has no tensor stages\.conv3\.0\.weight"):
        transfer_weights(model, state, source="part.pt")


def test_head_on_alexnet_and_resnet() -> None:
    alex = tiny_checkpoint()
    model, report = build_classifier(
        alex["config"], 5, init="trained", state=alex["model"], dropout=0.5
    )
    assert isinstance(model.head[0], nn.ReLU) and isinstance(model.head[1], nn.Dropout)
    assert report is not None and "fc7" in report.layers and "fc6" in report.layers
    out = model.eval()(torch.zeros(2, 3, 40, 40))
    assert out.shape == (2, 5)
    feats = model.forward_features(torch.zeros(2, 3, 40, 40), "fc6")
    assert feats.shape == (2, 64)
    res = TrainConfig(
        model="resnet18", image_size=32, embed_dim=8, model_options={"widths": [4, 4, 8, 8]}
    )
    net, _ = build_classifier(res.to_dict(), 3, init="random_init")
    assert net.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(TcdnError, match="at least 2 classes"):
        Classifier(net.backbone, 1)


def test_weights_digest_sees_any_change(cifar_ckpt: dict[str, Any]) -> None:
    state = {k: v.clone() for k, v in cifar_ckpt["model"].items()}
    d = weights_digest(state)
    assert d == weights_digest(cifar_ckpt["model"])
    state["stages.ip2.bias"][0] += 1e-6
    assert weights_digest(state) != d
