"""Where a process stands in a ``torchrun`` job, and the collectives the trainer needs.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the trainer joins the process group
(NCCL on GPUs, gloo on CPUs); outside one, everything here is a no-op for rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from tcdn.errors import TcdnError


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 outside one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call initialised the process group (and destroys it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise TcdnError(
            f"environment variable {name}={text!r} is not a whole number (set by torchrun)"
        ) from None


@contextmanager
def distributed(device: torch.device) -> Iterator[Dist]:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``)."""
    world = env_int("WORLD_SIZE", 1)
    if world <= 1:
        yield Dist()
        return
    local_rank = env_int("LOCAL_RANK", 0)
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    try:
        yield Dist(dist.get_rank(), dist.get_world_size(), local_rank, owns)
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


def gather(state: torch.Tensor, ddp: Dist) -> list[torch.Tensor]:
    """Every rank's copy of ``state`` (collective: all ranks call it together)."""
    if ddp.world == 1:
        return [state]
    states: list[Any] = [None] * ddp.world
    dist.all_gather_object(states, state)
    return states


def mean_over_ranks(value: torch.Tensor, ddp: Dist) -> torch.Tensor:
    """The mean of ``value`` over the ranks (collective), e.g. the global batch's loss."""
    if ddp.world > 1:
        dist.all_reduce(value)
        value /= ddp.world
    return value


def barrier(ddp: Dist) -> None:
    if ddp.world > 1:
        dist.barrier()
