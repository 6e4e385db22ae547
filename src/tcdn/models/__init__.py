"""Backbones by name. Every backbone maps ``(B, 3, H, W)`` frames to ``(B, embed_dim)`` embeddings
and exposes ``forward_features(x, layer=...)`` for any of its ``layer_names``.

========================  =======================================  ==========  =============
name                      network                                  input side  default layer
========================  =======================================  ==========  =============
``alexnet``               bvlc_alexnet, fc7 embedding (SPEC §3)    227         fc6
``alexnet_lrcn``          the authors' release (LRCN single-frame) 227         fc6
``alexnet_bn``            bvlc_alexnet + BatchNorm, no LRN         227         fc6
``cifar10_quick``         Caffe's cifar10_quick                    32          ip1
``cifar10_full``          Krizhevsky's CIFAR layout (layers-18pct) 32          pool3
``googlenet``             Inception v1 + 1024 fc                   224         fc
``resnet18``              ResNet-18 + fc embedding                 224         pool
========================  =======================================  ==========  =============

All of them accept other input sides (an adaptive pool feeds their fc layers) and the inits
``init="torch"`` (the network's PyTorch reference init), ``init="caffe"`` and ``init="he"``
(He et al. 2015 for every layer); the AlexNets also take ``in_channels`` (motion input), and
:func:`~tcdn.models.base.add_projection_head` puts a projection head in place of an embedding; :class:`~tcdn.models.base.Backbone` holds what they share.
"""

from __future__ import annotations

from typing import Any

from tcdn.errors import TcdnError
from tcdn.models.alexnet import AlexNet, alexnet, alexnet_bn, alexnet_lrcn
from tcdn.models.base import (
    HEAD_MODELS,
    INITS,
    MODELS,
    MULTICHANNEL_MODELS,
    Backbone,
    ProjectionHead,
    add_projection_head,
    count_parameters,
    he_init_,
    register_model,
)
from tcdn.models.cifar import CifarNet, cifar10_full, cifar10_quick
from tcdn.models.googlenet import GoogLeNet, googlenet
from tcdn.models.resnet import ResNet18, resnet18


def build_model(name: str, **kwargs: Any) -> Backbone:
    """Build the backbone registered as ``name`` with the given keyword arguments."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise TcdnError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None
    return factory(**kwargs)


__all__ = [
    "HEAD_MODELS",
    "INITS",
    "MODELS",
    "MULTICHANNEL_MODELS",
    "AlexNet",
    "Backbone",
    "CifarNet",
    "GoogLeNet",
    "ProjectionHead",
    "ResNet18",
    "add_projection_head",
    "alexnet",
    "alexnet_bn",
    "alexnet_lrcn",
    "build_model",
    "cifar10_full",
    "cifar10_quick",
    "count_parameters",
    "googlenet",
    "he_init_",
    "register_model",
    "resnet18",
]
