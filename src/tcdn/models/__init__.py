"""Backbones by name. Every backbone maps ``(B, 3, H, W)`` frames to ``(B, embed_dim)`` embeddings
and exposes ``forward_features(x, layer=...)`` for any of its ``layer_names``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from tcdn.errors import TcdnError
from tcdn.models.alexnet import AlexNet, alexnet, alexnet_lrcn

MODELS: dict[str, Callable[..., nn.Module]] = {
    "alexnet": alexnet,
    "alexnet_lrcn": alexnet_lrcn,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the backbone registered as ``name`` with the given keyword arguments."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise TcdnError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None
    return factory(**kwargs)


__all__ = ["MODELS", "AlexNet", "build_model"]
