"""Resolving ``--device`` (``tcdn.device``)."""

from __future__ import annotations

import pytest
import torch

import tcdn.device as train_mod
from tcdn.errors import TcdnError


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_mod.resolve_device("auto") == torch.device("cpu")
    assert train_mod.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(TcdnError, match="CUDA is not available"):
        train_mod.resolve_device("cuda")
    with pytest.raises(TcdnError, match="--device must be"):
        train_mod.resolve_device("tpu")
