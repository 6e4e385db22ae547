"""Sharded extraction: ``tcdn features`` in one process vs ``torchrun --nproc_per_node=P``.

Runs, one after the other, on the same collection and checkpoint (one thread per process,
``OMP_NUM_THREADS=1``):

- ``python -m tcdn features VIDEOS --checkpoint CKPT --out one.npz``;
- ``torchrun --standalone --nproc_per_node=P -m tcdn features ... --out many.npz``;

and prints for each the wall seconds and the CPU seconds (user + system of every process it
started, torchrun's agent included), their ratios, and whether the two files are the same bytes.
CPU seconds are the figure to read on a shared machine; the load average is printed beside them.
Run e.g. ``nice -n 10 python benchmarks/bench_shards.py /work/shared/data/arid6/videos RUN``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (this process's children, all of them) of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("videos", type=Path)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--float16", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    common = [str(args.videos), "--checkpoint", str(args.checkpoint), "--no-progress", "-q"]
    common += ["--float16"] if args.float16 else []
    print(f"machine: {os.cpu_count()} cores; {args.videos}")
    with tempfile.TemporaryDirectory(prefix="tcdn-bench-shards-") as tmp:
        one, many = Path(tmp) / "one.npz", Path(tmp) / "many.npz"
        l0 = load()
        w1, c1 = timed([sys.executable, "-m", "tcdn", "features", *common, "--out", str(one)], env)
        l1 = load()
        cmd = [torchrun, "--standalone", f"--nproc_per_node={args.nproc}", "-m", "tcdn"]
        wp, cp = timed([*cmd, "features", *common, "--out", str(many)], env)
        l2 = load()
        same = one.read_bytes() == many.read_bytes()
    print(f"1 process:  {w1:6.1f} s wall, {c1:6.1f} s CPU  (load {l0} -> {l1})")
    print(f"{args.nproc} processes: {wp:6.1f} s wall, {cp:6.1f} s CPU  (load {l1} -> {l2})")
    print(f"ratios ({args.nproc} / 1): wall {wp / w1:.2f}, CPU {cp / c1:.2f}; same bytes: {same}")


if __name__ == "__main__":
    main()
