"""Where a sweep keeps what it made (see :mod:`tcdn.sweep.run` for the folder's layout)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tcdn.outputs import write_atomic
from tcdn.sweep.spec import SweepSpec, recipe_key

SPEC_FILE = "spec.json"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of a sweep and its discoveries."""

    recipe: str
    dataset: str
    seed: int

    def folder(self, out: Path) -> Path:
        return out / "cells" / self.recipe / self.dataset / f"seed{self.seed}"

    def curve_path(self, out: Path, level: str, steps: int) -> Path:
        """The scores of the learning curve's checkpoint at ``steps`` (``curve/run`` continues
        the cell's run)."""
        return self.folder(out) / "curve" / f"{level}-step{steps:08d}.json"


def baseline_path(out: Path, dataset: str, level: str, key: str) -> Path:
    return out / "baselines" / dataset / f"{level}-{key}.json"


def is_done(path: Path, key: str) -> bool:
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text())["sweep"]["recipe_key"] == key
    except (OSError, ValueError, KeyError):
        return False  # a damaged result is computed again


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(obj, indent=1))


def _cells(spec: SweepSpec, seeds: int) -> Iterator[tuple[Cell, str]]:
    """The cells of ``spec``'s first ``seeds`` training seeds, each with its recipe's key."""
    for d in spec.datasets:
        for r, cfg in spec.recipes.items():
            key = recipe_key(cfg)
            for s in range(seeds):
                yield Cell(r, d, s), key


def iter_cell_results(
    out: Path, spec: SweepSpec, level: str
) -> Iterator[tuple[Cell, dict[str, Any]]]:
    """The finished cells of ``spec`` in ``out`` at ``level`` (a scoring), with their results."""
    for cell, key in _cells(spec, spec.train_seeds):
        path = cell.folder(out) / f"{level}.json"
        if is_done(path, key):
            yield cell, json.loads(path.read_text())


def iter_curve_results(
    out: Path, spec: SweepSpec, level: str
) -> Iterator[tuple[Cell, int, dict[str, Any]]]:
    """The learning curves' points finished so far at ``level``: (cell, steps, results), the
    cell's own scores at the recipe's ``steps`` first."""
    for cell, key in _cells(spec, spec.curve_seeds if spec.curve_steps else 0):
        points = [(spec.recipes[cell.recipe].steps, cell.folder(out) / f"{level}.json")]
        points += [(n, cell.curve_path(out, level, n)) for n in spec.curve_steps]
        for steps, path in points:
            if is_done(path, key):
                yield cell, steps, json.loads(path.read_text())
