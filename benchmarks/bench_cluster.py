"""Clustering at the scale of a real collection: wall time and peak memory on this machine.

For N = 10k, 50k, 100k rows x 4,096 dims (fc6-like synthetic features: 101 clusters in a 32-d
latent space, a random ReLU map to 4,096 dims, noise) and K = 101:

- ``kmeans``: scikit-learn K-means (k-means++, one run), as ``tcdn discover`` uses it;
- ``spectral``: ``tcdn``'s spectral clustering, kNN affinity (faiss: exact search up to 10k rows,
  HNSW beyond; local-scaling Gaussian weights), ARPACK on the sparse
  normalised affinity, K-means (best of 10) on the embedding;
- ``sklearn-knn`` (10k only, a reference): scikit-learn's SpectralClustering(affinity="nearest_neighbors").

And the agreement of the sparse kNN variant with the exact dense one where both run (N = 5k):
the conditional entropy of each against the true clusters.

Each case runs in its own process, so its peak resident memory (``ru_maxrss``, which includes
the features array itself: 164 MB per 10k rows) is its own. Run: ``python benchmarks/bench_cluster.py``
(about 10 minutes on 2 cores) or ``--sizes 10000`` for a quick look.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

K = 101
DIM = 4096


def make_features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent = 32
    centres = rng.normal(size=(K, latent)).astype(np.float32) * 1.5
    labels = rng.integers(0, K, n)
    w = rng.normal(size=(latent, DIM)).astype(np.float32) / np.sqrt(latent)
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n, 10000):
        e = min(n, s + 10000)
        z = centres[labels[s:e]] + rng.normal(size=(e - s, latent)).astype(np.float32)
        x[s:e] = np.maximum(z @ w, 0) + 0.1 * rng.random((e - s, DIM), dtype=np.float32)
    return x, labels


def run_case(case: str, n: int) -> dict[str, float | str | int]:
    from tcdn.discovery.cluster import kmeans, spectral_embedding
    from tcdn.discovery.metrics import conditional_entropy

    x, labels = make_features(n)
    t0 = time.perf_counter()
    if case == "kmeans":
        pred = kmeans(x, K, 0)
    elif case in ("spectral", "spectral-dense"):
        affinity = "dense" if case == "spectral-dense" else "knn"
        emb = spectral_embedding(x, K, affinity=affinity)
        pred = kmeans(emb, K, 0, n_init=10)  # as tcdn discover clusters the embedding
    elif case == "sklearn-knn":
        from sklearn.cluster import SpectralClustering

        pred = SpectralClustering(
            K, affinity="nearest_neighbors", n_neighbors=10, random_state=0
        ).fit_predict(x)
    else:
        raise SystemExit(f"unknown case {case}")
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {
        "case": case,
        "n": n,
        "seconds": seconds,
        "peak_gib": peak,
        "ce": conditional_entropy(labels, pred),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10000,50000,100000", help="comma-separated N")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:  # a child process: one case
        print(json.dumps(run_case(args.case, args.n)))
        return

    plan = [("spectral-dense", 5000), ("spectral", 5000), ("sklearn-knn", 10000)]
    for n in (int(s) for s in args.sizes.split(",")):
        plan += [("kmeans", n), ("spectral", n)]
    print(f"K = {K}, {DIM} dims; each case in its own process (peak memory includes the features)")
    print(f"{'case':<16}{'N':>8}{'seconds':>10}{'peak GiB':>10}{'CE bits':>9}")
    results = []
    for case, n in plan:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--n", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{case:<16}{n:>8}{r['seconds']:>10.1f}{r['peak_gib']:>10.2f}{r['ce']:>9.3f}",
            flush=True,
        )
    by = {(r["case"], r["n"]): r for r in results}
    if ("spectral", 5000) in by:
        diff = abs(by[("spectral", 5000)]["ce"] - by[("spectral-dense", 5000)]["ce"])
        print(
            f"sparse kNN vs dense spectral at N=5000: |CE difference| = {diff:.3f} bits (target <= 0.05)"
        )
    if ("spectral", 10000) in by:
        ratio = by[("sklearn-knn", 10000)]["seconds"] / by[("spectral", 10000)]["seconds"]
        print(f"N=10000: scikit-learn kNN spectral / tcdn spectral wall time = {ratio:.1f}x")


if __name__ == "__main__":
    main()
