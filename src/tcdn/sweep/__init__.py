"""Recipe studies: training recipes x data sets x training seeds, each cell trained, clustered
and scored as ``tcdn train`` and ``tcdn discover`` do, in one resumable run (``tcdn sweep``).

- :mod:`~tcdn.sweep.spec`: the YAML spec (no torch);
- :mod:`~tcdn.sweep.run`: running the cells and the baselines;
- :mod:`~tcdn.sweep.layout`: where a sweep folder keeps what it made;
- :mod:`~tcdn.sweep.table`: the table (CSV, JSON, markdown) and the training curves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tcdn._lazy import lazy_exports
from tcdn.sweep.spec import DatasetSpec, SweepSpec

if TYPE_CHECKING:
    from tcdn.sweep.run import run_sweep

__all__ = ["DatasetSpec", "SweepSpec", "run_sweep"]
__getattr__, __dir__ = lazy_exports(__name__, {"run_sweep": "tcdn.sweep.run"})
