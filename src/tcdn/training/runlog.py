"""What a training run writes as it goes: ``log.jsonl`` (one JSON record every ``log_every``
steps: loss, learning rate, the step's diagnostics, throughput), the same scalars to TensorBoard
with ``tensorboard: true``, and a warning when the embeddings collapse.

``log.jsonl`` is appended to, never through a symbolic link (:func:`tcdn.outputs.open_append`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tcdn.errors import TcdnError
from tcdn.outputs import open_append, os_error_hint, sub_folder
from tcdn.training.diagnostics import COLLAPSE_SPREAD, DIRECTION_COLLAPSE, embedding_diagnostics
from tcdn.training.trainer import StepResult

log = logging.getLogger(__name__)

LOG_NAME = "log.jsonl"


def summary_writer_class() -> Any:
    """TensorBoard's ``SummaryWriter``, or a clear error when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TcdnError(
            "tensorboard: true needs the tensorboard package: pip install 'tcdn[tensorboard]' "
            "(or tensorboard), or set tensorboard: false; log.jsonl is written either way"
        ) from None
    return SummaryWriter


class RunLog:
    """The run's records: appended to ``run/log.jsonl`` and, with ``tensorboard``, written as
    scalars under ``run/tensorboard/``. Use as a context manager (the files are closed on exit)."""

    def __init__(self, run: Path, *, tensorboard: bool = False) -> None:
        self.path = run / LOG_NAME
        self._fh = open_append(self.path)
        self._writer = None
        if tensorboard:
            try:
                events = sub_folder(run, "tensorboard")  # never a link: refused, as log.jsonl
                self._writer = summary_writer_class()(log_dir=str(events))
            except BaseException:
                self._fh.close()
                raise

    def write(self, rec: dict[str, Any]) -> None:
        """Append one record (a line of JSON) and flush it; its numbers go to TensorBoard too."""
        try:
            self._fh.write(json.dumps(rec) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise TcdnError(f"cannot write {self.path}: {os_error_hint(exc)}") from None
        if self._writer is not None:
            for name, value in rec.items():
                if name != "step":
                    self._writer.add_scalar(f"train/{name}", value, rec["step"])

    def close(self) -> None:
        self._fh.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Monitor:
    """The log record of a step: loss, learning rate, the step's diagnostics and the throughput
    since the last record; warns once when the embeddings have collapsed."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.t0, self.tuples = time.perf_counter(), 0
        self.warned: set[str] = set()

    def count(self) -> None:
        self.tuples += self.batch

    def record(self, step: int, result: StepResult, lr: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        rate = self.tuples / elapsed if elapsed > 0 else float("nan")
        found = result.diagnostics or embedding_diagnostics(result.embeddings, result.labels)
        self._warn(step, result.loss, found)
        self.t0, self.tuples = time.perf_counter(), 0
        return {"step": step, "loss": result.loss, "lr": lr, **found, "tuples_per_s": rate}

    def _warn(self, step: int, loss: float, found: dict[str, float]) -> None:
        # Spread 0 means the network maps every frame to one point, the trivial minimum of Lq
        # (loss = margin) and of Ls positives; a relative spread near 0 means every frame points
        # nearly the same way, which is all an L2-normalised loss sees.
        if found["embedding_spread"] < COLLAPSE_SPREAD and "point" not in self.warned:
            log.warning(
                "step %d: the embeddings have collapsed to one point (spread %.2g, loss %.4f): the "
                "network has stopped learning; lower the learning rate or try normalize: true",
                step,
                found["embedding_spread"],
                loss,
            )
            self.warned.add("point")
        elif found["relative_spread"] < DIRECTION_COLLAPSE and "direction" not in self.warned:
            log.warning(
                "step %d: the embeddings point nearly one way (relative spread %.3f, about 1 for "
                "unit vectors spread over every dimension): the loss sees little but noise and the "
                "features may learn little; a BatchNorm backbone starts spread out",
                step,
                found["relative_spread"],
            )
            self.warned.add("direction")
