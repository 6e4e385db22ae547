"""The report of a 10,000-frame discovery: how long it takes to build, and how large it is.

10,000 rows of fc6-like synthetic features (4,096 dims, 20 clusters; benchmarks/bench_cluster.py's
generator), labelled, from 41 videos: 40 clips of 200 frames and one untrimmed recording of
2,000 frames, whose frames (64x64) are at hand for the montages. One K-means clustering
(``repeats=1``, K = 20) is written with ``write_results``; then timed:

- ``prepare``: :func:`tcdn.report.prepare.write_report_data`, the sample frames (8 per cluster)
  and the Barnes-Hut t-SNE map of a 3,000-row sample, what ``tcdn discover`` adds to its run;
- ``page``: :func:`tcdn.report.page.build_report`, the pictures and report.html, what
  ``tcdn report`` does.

Run: ``python benchmarks/bench_report.py`` (``--n`` to change the size).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cluster

K = 20


def main() -> None:
    from tcdn.data.collection import VideoEntry
    from tcdn.data.frameset import FrameSet, Positions
    from tcdn.discovery.config import DiscoverConfig
    from tcdn.discovery.pipeline import discover_features
    from tcdn.discovery.results import write_results
    from tcdn.features.featureset import FeatureSet
    from tcdn.report.page import build_report
    from tcdn.report.prepare import write_report_data

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10000)
    args = ap.parse_args()
    n = args.n
    bench_cluster.K = K
    x, labels = bench_cluster.make_features(n)
    long = n // 5
    lengths = [long] + [(n - long) // 40] * 40
    lengths[-1] += n - sum(lengths)
    names = ["recording.mp4"] + [f"clip{i:02d}.mp4" for i in range(40)]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frame = np.concatenate([np.arange(k) for k in lengths])
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    fs = FeatureSet(x, np.repeat(names, lengths), frame, [f"c{c}" for c in labels], time=frame / 25)
    videos = [VideoEntry(Path(v), v, None) for v in names]
    frameset = FrameSet(frames, videos, offsets, positions=Positions(frame, frame / 25))
    found = discover_features(fs, DiscoverConfig(methods=("kmeans",), repeats=1, k=K))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_results(out, found.clustered, found.results, found.assignments)
        t0 = time.perf_counter()
        write_report_data(out, found, frameset)
        t1 = time.perf_counter()
        page = build_report(out)
        t2 = time.perf_counter()
        html = page.stat().st_size
        folder = sum(p.stat().st_size for p in (out / "report").rglob("*") if p.is_file())
        files = sum(1 for p in (out / "report").rglob("*") if p.is_file())
    print(f"{n} rows x {x.shape[1]} dims, K = {K}, {len(names)} videos")
    print(f"prepare (samples + t-SNE of 3,000 rows): {t1 - t0:.1f} s")
    print(f"page (pictures + report.html):          {t2 - t1:.1f} s")
    print(f"report.html {html / 1024:.1f} KiB; report/ {folder / 2**20:.2f} MiB in {files} files")


if __name__ == "__main__":
    main()
