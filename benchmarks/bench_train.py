"""Training throughput of the demo configuration: the real data pipeline vs the compute-only limit.

Measured in one run on the same model and batch:

- ``pipeline``: :meth:`tcdn.training.trainer.Trainer.step`, the step ``tcdn train`` runs: sample
  quadruplets from a decoded synthetic collection, gather the frames, convert to float,
  forward + backward + clipping + SGD step;
- ``pipeline+augment``: the same with the per-frame appearance augmentation
  (``augment: appearance``, default strengths) on every frame;
- ``compute``: :meth:`~tcdn.training.trainer.Trainer.optimize` alone, on a random tensor already
  in memory.

Prints steps/s of each and their ratios to compute-only (the target is >= 0.9 without
augmentation; augmentation is an option and its cost is reported, not targeted). Run: ``make bench`` or
``python benchmarks/bench_train.py [--steps N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time

import numpy as np
import torch

from tcdn.data.load import load_frames
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.demo import DEMO_SIZE
from tcdn.training.recipes import lq_64px
from tcdn.training.trainer import Trainer


def _time_steps(step, n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=10, help="timed steps per mode (default: 10)")
    ap.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = lq_64px(steps=10**6, seed=0).resolved()  # the figures in the README are this recipe's
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, SyntheticConfig(), progress=False)
        frames = load_frames(tmp, size=DEMO_SIZE, progress=False)
    # The trainer's own step (what `tcdn train` runs), without and with augmentation.
    torch.manual_seed(0)
    plain = Trainer(frames, cfg, torch.device("cpu"))
    torch.manual_seed(0)
    augmented = Trainer(frames, dataclasses.replace(cfg, augment="appearance"), torch.device("cpu"))
    batch = plain.batch
    fixed = torch.randn(4 * batch, 3, DEMO_SIZE, DEMO_SIZE).contiguous(
        memory_format=torch.channels_last
    )

    def data_only() -> None:
        plain.inputs(plain.draw().indices)

    def augment_only() -> None:
        augmented.inputs(augmented.draw().indices)

    # Interleave the modes so that drift of the machine's speed hits both alike.
    rates: dict[str, list[float]] = {
        "pipeline": [],
        "augmented": [],
        "compute": [],
        "data": [],
        "data_aug": [],
    }
    for _ in range(3):
        rates["compute"].append(_time_steps(lambda: plain.optimize(fixed), args.steps))
        rates["pipeline"].append(_time_steps(plain.step, args.steps))
        rates["augmented"].append(_time_steps(augmented.step, args.steps))
        rates["data"].append(_time_steps(data_only, args.steps * 10))
        rates["data_aug"].append(_time_steps(augment_only, args.steps * 2))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    print(
        f"demo configuration: AlexNet {DEMO_SIZE}x{DEMO_SIZE}, {batch} quadruplets = {4 * batch} frames/step, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(
        f"compute-only (tensor in memory): {med['compute']:8.3f} steps/s  ({med['compute'] * batch:7.1f} tuples/s)"
    )
    print(
        f"real data pipeline             : {med['pipeline']:8.3f} steps/s  ({med['pipeline'] * batch:7.1f} tuples/s)"
    )
    print(
        f"pipeline + augmentation        : {med['augmented']:8.3f} steps/s  ({med['augmented'] * batch:7.1f} tuples/s)"
    )
    print(
        f"data alone (sample+gather+float): {med['data']:8.1f} batches/s ({med['data'] * 4 * batch:9.0f} frames/s)"
    )
    print(
        f"data + augmentation alone      : {med['data_aug']:8.1f} batches/s ({med['data_aug'] * 4 * batch:9.0f} frames/s)"
    )
    print(
        f"ratio pipeline / compute-only  : {med['pipeline'] / med['compute']:8.3f}  (target >= 0.9)"
    )
    print(
        f"ratio pipeline+augment / compute-only: {med['augmented'] / med['compute']:8.3f}  (reported, no target)"
    )


if __name__ == "__main__":
    main()
