"""Checkpoints: written atomically, read back into a network.

A checkpoint is one ``torch.save`` file, ``RUN/step_XXXXXXXX.pt``, holding the run's config, the
model, optimiser, schedule, sampler and augmentation generator states, the torch RNG, the input
mean and the step (see :meth:`tcdn.training.loop.Trainer.state_dict`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn.errors import TcdnError
from tcdn.models import Backbone
from tcdn.training.config import TrainConfig

CHECKPOINT_PATTERN = "step_{:08d}.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: never a half-written file."""
    tmp = path.with_name(f".{path.name}.partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def list_checkpoints(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("step_*.pt"))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        ckpts = list_checkpoints(path)
        if not ckpts:
            raise TcdnError(f"no checkpoint (step_*.pt) in {path}: train first with `tcdn train`")
        path = ckpts[-1]
    if not path.is_file():
        raise TcdnError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise TcdnError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise TcdnError(f"{path} is not a tcdn checkpoint")
    ckpt["path"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[Backbone, np.ndarray, TrainConfig]:
    """The trained network, its input mean and its config."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    model = cfg.build_model()
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, np.asarray(ckpt["mean"], dtype=np.float32), cfg
