"""Search at scale: the approximate index (``tcdn.search_index``) against the exact scan.

Writes ``--rows`` x ``--dims`` float16 features (synthetic: rows around 1,000 centres in a 64-d
subspace, plus noise in every dimension; or give a real feature file with ``--features``) to a
feature file in ``--dir`` (a temporary folder by default, removed afterwards), then measures, in
one run:

- the index's build: wall and CPU seconds, peak memory of this process, and the file's size;
- recall@10 of the index against the exact scan (:func:`tcdn.search.nearest`, the reference),
  over ``--queries`` rows used as queries (each row left out of its own answer);
- one query in this process: exact scan vs index (mean seconds);
- ``tcdn search --row R --no-montage`` as a user runs it, the start-up of the CLI included: the
  index (already built) vs ``--exact``; wall seconds of each call.

Prints the machine (cores, load average) beside the figures. Synthetic rows have a clean
structure; recall on real features is measured with ``--features FILE``. Run e.g.
``nice -n 10 python benchmarks/bench_search.py --rows 1000000 --dims 1024``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tcdn.features.featureset import FeatureSet
from tcdn.search import nearest
from tcdn.search_index import (
    approximate_nearest,
    build_index,
    index_path,
    open_features,
    save_index,
)


def synthetic(n: int, dims: int, path: Path, seed: int = 0) -> None:
    """``n`` x ``dims`` float16 rows around 1,000 centres of a 64-d subspace, 100 rows a video."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((64, dims), dtype=np.float32) / 8
    centres = rng.standard_normal((1000, 64), dtype=np.float32) * 3
    x = np.empty((n, dims), np.float16)
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        latent = centres[rng.integers(0, 1000, m)] + rng.standard_normal((m, 64), dtype=np.float32)
        noise = rng.standard_normal((m, dims), dtype=np.float32) * 0.1
        x[s : s + m] = latent @ basis + noise
    per = 100
    video = np.array([f"synthetic/v{i:06d}.mp4" for i in range(n // per + 1)])[np.arange(n) // per]
    frame = np.arange(n) % per
    FeatureSet(x, video, frame, np.full(n, ""), meta={"source": "synthetic"}).save(path)


def cli_seconds(features: Path, row: int, *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one ``tcdn search`` call."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tcdn", "search", "--features", str(features), "--row", str(row),
         "--no-montage", "-q", *extra],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=1024)
    ap.add_argument("--queries", type=int, default=20, help="rows used as queries for recall")
    ap.add_argument("--features", type=Path, default=None, help="a real feature file instead")
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {open('/proc/loadavg').read().strip()}")
    tmp = Path(tempfile.mkdtemp(prefix="tcdn-bench-search-", dir=args.dir))
    try:
        if args.features is None:
            path = tmp / "features.npz"
            t0 = time.perf_counter()
            synthetic(args.rows, args.dims, path)
            print(f"wrote {args.rows:,} x {args.dims} float16 rows in {time.perf_counter() - t0:.0f} s"
                  f" ({path.stat().st_size / 2**30:.2f} GiB)")  # fmt: skip
        else:
            path = tmp / args.features.name
            shutil.copy(args.features, path)
        t0 = time.perf_counter()
        fs = open_features(path)
        print(f"opened (memory-mapped) in {time.perf_counter() - t0:.2f} s: {len(fs):,} x "
              f"{fs.features.shape[1]} {fs.features.dtype}")  # fmt: skip
        w0, c0 = time.perf_counter(), time.process_time()
        idx = build_index(fs)
        save_index(idx, index_path(path), path)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        size = index_path(path).stat().st_size / 2**20
        print(f"index: built and saved in {wall:.1f} s wall, {cpu:.1f} s CPU; {size:.0f} MiB; "
              f"peak memory of this process {peak:.1f} GiB; {idx.meta['lists']} lists, "
              f"PCA to {idx.meta['pca_dims']}")  # fmt: skip
        rows = np.random.default_rng(1).choice(len(fs), args.queries, replace=False).tolist()
        found, t_exact, t_index = 0, 0.0, 0.0
        for r in rows:
            t0 = time.perf_counter()
            exact = nearest(fs, fs.features[r], 10, exclude=r)
            t1 = time.perf_counter()
            approx = approximate_nearest(fs, idx, fs.features[r], 10, exclude=r)
            t_index += time.perf_counter() - t1
            t_exact += t1 - t0
            found += len({h.row for h in exact.frames} & {h.row for h in approx.frames})
        n = len(rows)
        print(f"recall@10 (index vs exact scan, {n} queries): {found / (10 * n):.3f}")
        print(f"one query in-process: exact scan {t_exact / n:.2f} s, index {t_index / n:.3f} s "
              f"({t_exact / max(t_index, 1e-9):.0f}x)")  # fmt: skip
        cli = [cli_seconds(path, r) for r in rows[:3]]
        ew, ec = cli_seconds(path, rows[0], "--exact")
        print("tcdn search --row (CLI start-up included), wall / CPU s, index: "
              + ", ".join(f"{w:.2f} / {c:.2f}" for w, c in cli) + f"; --exact: {ew:.2f} / {ec:.2f}")  # fmt: skip
        print(f"load average after: {open('/proc/loadavg').read().strip()}")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
