"""The default recipe's training step: what its cross-stream term costs, and what bf16 saves.

``--vs term`` (the default): ``best`` (two AlexNet-BN streams at 64x64, temporal InfoNCE plus
``cross_stream: 1.0``) against the same recipe with ``cross_stream: 0`` (round 4's default), in
``--precision`` (fp32 unless it says bf16). ``--vs precision``: ``best`` in fp32 against ``best``
in bf16 autocast (what its ``precision: auto`` picks where the CPU has bf16 natively; where it
has not, bf16 is emulated and slow, and the line saying the CPU's bf16 support tells so). Both on
the demo's synthetic collection: :meth:`tcdn.training.trainer.Trainer.step`, the step ``tcdn
train`` runs (sampling, gathering, augmentation, forward, the loss, backward, clipping, SGD). The
two are interleaved (several rounds, the median kept) so that drift of the machine's speed hits
both alike. Prints seconds per step of each, their ratio, and the machine it ran on. Run: ``make
bench-cross`` or ``python benchmarks/bench_cross_stream.py [--vs term|precision] [--steps N]
[--rounds R] [--threads T] [--precision fp32|bf16]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tcdn.data.load import load_frames
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.demo import DEMO_SIZE
from tcdn.training.recipes import best
from tcdn.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cluster import cpu_name  # the CPU's name, as every bench prints it


def _seconds_per_step(trainer: Trainer, n: int) -> float:
    trainer.step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        trainer.step()
    return (time.perf_counter() - t0) / n


def _native_bf16() -> str:
    from tcdn.training.precision import native_bf16

    return "yes" if native_bf16(torch.device("cpu")) else "no (emulated)"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round (default: 5)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    ap.add_argument("--vs", choices=("term", "precision"), default="term", help="what to compare")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = best(steps=10**6, seed=0)
    if args.vs == "term":
        arms = {
            "with the term (best)": dataclasses.replace(cfg, precision=args.precision),
            "without it": dataclasses.replace(cfg, precision=args.precision, cross_stream=0.0),
        }
    else:
        arms = {p: dataclasses.replace(cfg, precision=p) for p in ("fp32", "bf16")}
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp, SyntheticConfig(), progress=False)
        frames = load_frames(tmp, size=DEMO_SIZE, progress=False)
    trainers = {}
    for name, arm in arms.items():
        torch.manual_seed(0)
        trainers[name] = Trainer(frames, arm, torch.device("cpu"))
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(args.rounds):
        for name, trainer in trainers.items():
            times[name].append(_seconds_per_step(trainer, args.steps))
    med = {name: float(np.median(v)) for name, v in times.items()}
    what = args.precision if args.vs == "term" else "fp32 against bf16"
    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; native bf16: {_native_bf16()}; {what}; "
        f"{cfg.batch_size or 40} quadruplets at {DEMO_SIZE}x{DEMO_SIZE}, {args.rounds} rounds x "
        f"{args.steps} steps"
    )
    for name, sec in med.items():
        print(
            f"{name:22s}: {sec:.3f} s per step (rounds: {', '.join(f'{t:.3f}' for t in times[name])})"
        )
    first, second = med.values()
    print(f"ratio {' / '.join(med)}: {first / second:.3f}")


if __name__ == "__main__":
    main()
