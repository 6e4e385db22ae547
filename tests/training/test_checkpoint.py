"""Reading checkpoints (``tcdn.training.checkpoint``): bad files end in clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tcdn.errors import TcdnError
from tcdn.training.checkpoint import load_checkpoint


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(TcdnError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    with pytest.raises(TcdnError, match="does not exist"):
        load_checkpoint(tmp_path / "step_00000001.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(TcdnError, match="cannot read checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(TcdnError, match="not a tcdn checkpoint"):
        load_checkpoint(other)
