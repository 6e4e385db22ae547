"""Training a network with temporal coherence: the rooms of a run.

- :mod:`~tcdn.training.config`: :class:`TrainConfig` (merged from YAML, flags and ``--set``);
- :mod:`~tcdn.training.checkpoint`: atomic checkpoints and the network they hold;
- :mod:`~tcdn.training.distributed`: the ``torchrun`` process group;
- :mod:`~tcdn.training.trainer`: :class:`Trainer` (a run's state and one step);
- :mod:`~tcdn.training.state`: what a run saves and restores (checkpoints, resume checks);
- :mod:`~tcdn.training.runlog`: ``log.jsonl``, TensorBoard and the collapse warnings;
- :mod:`~tcdn.training.run`: :func:`train` (a whole run).

Names are imported on first use, so reading a checkpoint does not import the trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports

if TYPE_CHECKING:
    from tcdn.training.checkpoint import load_checkpoint, model_from_checkpoint
    from tcdn.training.config import TrainConfig
    from tcdn.training.run import train
    from tcdn.training.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "load_checkpoint", "model_from_checkpoint", "train"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TrainConfig": "tcdn.training.config",
        "load_checkpoint": "tcdn.training.checkpoint",
        "model_from_checkpoint": "tcdn.training.checkpoint",
        "Trainer": "tcdn.training.trainer",
        "train": "tcdn.training.run",
    },
)
