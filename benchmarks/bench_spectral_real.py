"""Spectral clustering against K-means on real feature files (issue 20).

For each feature file (``tcdn features`` output, every row labelled): K-means and spectral
clustering as ``tcdn discover`` runs them (``score_clusterings``, given each row's video: the
video graph), ``--repeats`` seeds each, into as many clusters as there are classes; the K of
the largest eigengap on the video graph; and spectral clustering without the videos (the graph
tcdn used before: dense up to 5,000 rows, kNN beyond), for comparison. CE in bits, mean ± std.

    python benchmarks/bench_spectral_real.py A.npz B.npz --repeats 10 --json out.json

Set ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` to bound the threads on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any

log = logging.getLogger("bench_spectral_real")


def one_file(path: str, repeats: int, stride: int = 1) -> dict[str, Any]:
    from tcdn.discovery.evaluate import score_clusterings
    from tcdn.features.featureset import FeatureSet

    fs = FeatureSet.load(path)
    if stride > 1:  # every stride-th row of each video, as --frame-stride keeps them
        fs = fs.subset(fs.rows(stride, None))
    labels = fs.label_codes()
    k = len(fs.class_names)
    row: dict[str, Any] = {
        "file": os.path.basename(path),
        "rows": len(fs),
        "dims": int(fs.features.shape[1]),
        "videos": len(set(fs.video.tolist())),
        "k": k,
        "stride": stride,
    }
    t0 = time.perf_counter()
    with_videos = score_clusterings(
        lambda r: fs.features, labels, k=k, repeats=repeats, videos=fs.video
    )
    row["seconds"] = time.perf_counter() - t0
    for method, score in with_videos.items():
        row[f"{method}_ce"] = [score.mean, score.std]
    row["spectral_affinity"] = with_videos["spectral"].affinity
    row["graph_components"] = with_videos["spectral"].graph_components
    row["k_eigengap"] = with_videos["spectral"].k_eigengap
    t0 = time.perf_counter()
    plain = score_clusterings(
        lambda r: fs.features, labels, k=k, repeats=repeats, methods=["spectral"], estimate_k=False
    )["spectral"]
    row["plain_seconds"] = time.perf_counter() - t0
    row["plain_spectral_ce"] = [plain.mean, plain.std]
    row["plain_affinity"] = plain.affinity
    row["plain_components"] = plain.graph_components
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="+", help="feature files (.npz) with labels")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--stride", type=int, default=1, help="every S-th row of each video")
    ap.add_argument("--json", default="bench_spectral_real.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = []
    for path in args.files:
        load = os.getloadavg()[0]
        r = one_file(path, args.repeats, args.stride)
        r["load"] = [load, os.getloadavg()[0]]
        rows.append(r)
        print(
            f"{r['file']} (stride {r['stride']}): {r['rows']} rows, {r['videos']} videos, K = {r['k']}: K-means "
            f"{r['kmeans_ce'][0]:.3f} ± {r['kmeans_ce'][1]:.3f}, spectral (video graph) "
            f"{r['spectral_ce'][0]:.3f} ± {r['spectral_ce'][1]:.3f} "
            f"[{r['graph_components']} pieces], eigengap K {r['k_eigengap']}; spectral without "
            f"videos ({r['plain_affinity']}) {r['plain_spectral_ce'][0]:.3f} ± "
            f"{r['plain_spectral_ce'][1]:.3f}; {r['seconds']:.0f} s + {r['plain_seconds']:.0f} s, "
            f"load {r['load'][0]:.1f}-{r['load'][1]:.1f}",
            flush=True,
        )
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
