"""Discovery at scale: wall time, peak memory and conditional entropy of tcdn's clustering.

Cases (``--cases``, comma-separated; default: all but ``features``):

- ``video32k``: a collection like a real one: 32,000 frames of 69 "videos" (~465 frames each,
  each a tight trajectory around its own offset from its class centre, so every class is made of
  many tight per-video sub-clusters), 4,096 dims, K = 2. tcdn's spectral clustering as
  ``tcdn discover`` runs it (:class:`~tcdn.discovery.cluster.SpectralClustering`: kNN graph in a
  128-d PCA, ``top_eigenpairs``, K-means best of 10 on the embedding). Target: < 30 s.
- ``sklearn32k``: the same features through scikit-learn's
  ``SpectralClustering(affinity="nearest_neighbors", eigen_solver="amg")``, with a time bound.
- ``agree``: on sets that fit dense (5,000 rows; blob features with K = 10 and K = 101, video
  features with K = 2 and K = 101), every solver path against the exact dense one (dense
  affinity, dense LAPACK): the kNN affinity with ``top_eigenpairs`` as it chooses, and forced to
  dense LAPACK, to shift-invert Lanczos and to LOBPCG-AMG. Target: CE within 0.05 bits.
- ``kmeans100k``: 10 seeds of K-means as ``tcdn discover`` runs them on 100,000 x 4,096 blob
  features, K = 101: the features reduced once to their 128-d working PCA
  (:func:`~tcdn.discovery.cluster.working_space`, timed with the seeds), then faiss (the default
  from 20k rows) per seed. Target: < 60 s for the 10. ``sklearn-kmeans100k``: one seed of
  scikit-learn's K-means on every one of the 4,096 dims, with a time bound.
- ``spectral1m``: 1,000,000 x 4,096 **float16** video features (``--big-n``), K = 101, spectral
  clustering. The features are generated chunk by chunk into a float16 memory map in a temporary
  folder, never as one float32 array. Targets: < 15 min and < 16 GiB peak.
- ``videoset``: issue 20's sets (:data:`VIDEO_SETS`: 320 videos of 100 frames at K = 2, 1,000
  at K = 10, 3,000 at K = 101; 512 dims), K-means and spectral clustering given each row's video.
  Target: spectral CE within 0.05 bits of K-means CE. (The spectral cases all pass each row's
  video, as ``tcdn discover`` does, and report one seed of K-means' CE beside spectral's.)
- ``features``: a tcdn feature file (``--features FILE.npz``, from ``tcdn features``), clustered
  by K-means and spectral clustering into as many clusters as it has classes.

Each case runs in its own process (its peak resident memory, ``ru_maxrss``, is its own and
includes the features it generated; a memory-mapped array counts once touched), under a time
bound (``--timeout``, ``--sklearn-timeout``); a case that runs over is reported as "did not finish
in X s". The table and a JSON file (``--json``) hold every figure and the ratios of one run, with
the machine, its thread settings and its load average before and after each case; the CPU
seconds of each timed step (all threads) are beside its wall time, since on a shared machine
the wall time mostly measures the other jobs.
``--quick``: smaller sizes, for a look in a couple of minutes. Run: ``make bench-cluster`` or
``python benchmarks/bench_cluster.py --cases video32k,sklearn32k``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

DIM = 4096
ALL_CASES = (
    "video32k",
    "sklearn32k",
    "agree",
    "kmeans100k",
    "sklearn-kmeans100k",
    "spectral1m",
    "videoset",
)
#: issue 20's video-structured sets: (videos of 100 frames, K); ``--quick`` takes the first
VIDEO_SETS = ((320, 2), (1000, 10), (3000, 101))
AGREE_SETS = (("blob", 10), ("blob", 101), ("video", 2), ("video", 101))


# ----------------------------------------------------------------------------- data


def make_blob_features(n: int, k: int, dim: int = DIM, seed: int = 0) -> tuple[np.ndarray, Any]:
    """``k`` blobs in a 32-d latent space mapped to ``dim`` dims by a random ReLU layer, plus noise
    (fc6-like; no video structure). Returns float32 features and the blob of each row."""
    rng = np.random.default_rng(seed)
    latent = 32
    centres = rng.normal(size=(k, latent)).astype(np.float32) * 1.5
    labels = rng.integers(0, k, n)
    w = rng.normal(size=(latent, dim)).astype(np.float32) / np.sqrt(latent)
    x = np.empty((n, dim), np.float32)
    for s in range(0, n, 10000):
        e = min(n, s + 10000)
        z = centres[labels[s:e]] + rng.normal(size=(e - s, latent)).astype(np.float32)
        x[s:e] = np.maximum(z @ w, 0) + 0.1 * rng.random((e - s, dim), dtype=np.float32)
    return x, labels


def make_video_features(
    n: int,
    k: int,
    dim: int = DIM,
    *,
    mean_len: int = 465,
    seed: int = 0,
    out: np.ndarray | None = None,
    latent: int = 32,
    class_scale: float = 3.0,
    video_scale: float = 0.3,
    step: float = 0.05,
    frame_noise: float = 0.1,
    out_noise: float = 0.01,
    chunk: int = 20000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of ``k`` classes, each class many videos, each video a tight trajectory (the idea
    of the eigensolver study's generator, /work/scratch/eig/harness.py).

    A video is ``L ~ U[mean_len / 2, 3 mean_len / 2]`` consecutive frames: a centred random walk
    (``step`` per frame) plus per-frame jitter around a video offset (``video_scale``) from its
    class centre (``class_scale``), in ``latent`` dims, mapped to ``dim`` dims by a random ReLU
    layer plus uniform noise. Every class gets at least one video. The features are written
    chunk by chunk into ``out`` (any float dtype, e.g. a float16 memory map), or a new float32
    array. Returns the features, the class and the video of each row.
    """
    rng = np.random.default_rng(seed)
    lo, hi = max(1, mean_len // 2), max(1, (3 * mean_len) // 2)
    lens: list[int] = []
    total = 0
    while total < n:
        length = min(int(rng.integers(lo, hi + 1)), n - total)
        lens.append(length)
        total += length
    v = len(lens)
    vid_class = np.concatenate([np.arange(k), rng.integers(0, k, max(0, v - k))])[:v]
    rng.shuffle(vid_class)
    centres = rng.normal(size=(k, latent)) * class_scale
    offsets = centres[vid_class] + rng.normal(size=(v, latent)) * video_scale
    z = np.empty((n, latent), np.float32)
    labels = np.repeat(vid_class, lens)
    video = np.repeat(np.arange(v), lens)
    s = 0
    for i, length in enumerate(lens):
        walk = np.cumsum(rng.normal(size=(length, latent)) * step, axis=0)
        walk -= walk.mean(0)
        z[s : s + length] = offsets[i] + walk + rng.normal(size=(length, latent)) * frame_noise
        s += length
    w = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    x = np.empty((n, dim), np.float32) if out is None else out
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        block = np.maximum(z[a:b] @ w, 0)
        block += out_noise * rng.random((b - a, dim), dtype=np.float32)
        x[a:b] = block
    return x, labels, video


# ----------------------------------------------------------------------------- one case


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def _ce(labels: np.ndarray, pred: np.ndarray) -> float:
    from tcdn.discovery.metrics import conditional_entropy

    return float(conditional_entropy(labels, pred))


def _tcdn_spectral(
    x: np.ndarray, k: int, video: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The clusters of ``tcdn discover``'s spectral path (given each row's ``video``, as discover
    is: the video graph), and what the eigensolver did."""
    from tcdn.discovery.cluster import SpectralClustering

    est = SpectralClustering(k, random_state=0).fit(x, video)
    info = est.eigen_info_
    extra = {} if video is None else _eigengap(x, k, video)
    return est.labels_, {
        **extra,
        "affinity": est.affinity_,
        "eigen_method": info.method,
        "eigen_seconds": info.seconds,
        "graph_components": info.n_components,
        "eigen_converged": info.converged,
        "eigen_steps": info.steps[:6],
    }


def _eigengap(x: np.ndarray, k: int, video: np.ndarray) -> dict[str, Any]:
    """The K of the largest eigengap of the video graph, up to max(2K, 10) (timed apart: not
    part of the spectral clustering's time)."""
    from tcdn.discovery.cluster import affinity_graph, estimate_k_eigengap, working_space

    t0 = time.perf_counter()
    space = working_space(x)
    found, _ = estimate_k_eigengap(space, max(2 * k, 10), graph=affinity_graph(space, videos=video))
    return {"k_eigengap": found, "eigengap_seconds": time.perf_counter() - t0}


def case_video32k(p: dict[str, Any]) -> dict[str, Any]:
    x, labels, video = make_video_features(p["n"], 2, mean_len=p["mean_len"])
    t0, c0 = time.perf_counter(), time.process_time()
    pred, extra = _tcdn_spectral(x, 2, video)
    seconds = time.perf_counter() - t0
    return {
        "kmeans_ce": _kmeans_ce(x, labels, 2),
        "cpu_seconds": time.process_time() - c0,
        "n": p["n"],
        "k": 2,
        "videos": int(video.max()) + 1,
        "seconds": seconds,
        "ce": _ce(labels, pred),
        **extra,
    }


def case_sklearn32k(p: dict[str, Any]) -> dict[str, Any]:
    from sklearn.cluster import SpectralClustering

    x, labels, _ = make_video_features(p["n"], 2, mean_len=p["mean_len"])
    t0, c0 = time.perf_counter(), time.process_time()
    pred = SpectralClustering(
        2, affinity="nearest_neighbors", eigen_solver="amg", random_state=0
    ).fit_predict(x)
    return {
        "n": p["n"],
        "k": 2,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "ce": _ce(labels, pred),
    }


def case_agree(p: dict[str, Any]) -> dict[str, Any]:
    """Every solver path on one set, against the dense affinity solved by dense LAPACK."""
    from tcdn.discovery import eigen
    from tcdn.discovery.cluster import kmeans, spectral_decomposition

    n, k, kind = p["n"], p["k"], p["set"]
    if kind == "blob":
        x, labels = make_blob_features(n, k)
    else:  # videos short enough that there are more videos than classes
        x, labels, _ = make_video_features(n, k, mean_len=max(10, min(465, n // (2 * k))))
    paths = {  # name -> (affinity, eigen module constants to force a strategy)
        "dense affinity, dense LAPACK (reference)": ("dense", {}),
        "kNN affinity, top_eigenpairs as it chooses": ("knn", {}),
        "kNN, forced dense LAPACK": ("knn", {"DENSE_MAX": 10**9}),
        "kNN, forced shift-invert": ("knn", {"DENSE_MAX": 0, "SMALL_COMPONENT_MAX": 30}),
        "kNN, forced LOBPCG-AMG": (
            "knn",
            {"DENSE_MAX": 0, "SMALL_COMPONENT_MAX": 30, "LU_MAX": 0},
        ),
    }
    saved = {name: getattr(eigen, name) for name in ("DENSE_MAX", "SMALL_COMPONENT_MAX", "LU_MAX")}
    rows = []
    vals_ref: np.ndarray | None = None
    for name, (affinity, force) in paths.items():
        for attr, value in {**saved, **force}.items():
            setattr(eigen, attr, value)
        t0 = time.perf_counter()
        spectrum = spectral_decomposition(x, k, affinity=affinity)
        pred = kmeans(spectrum.embedding, k, random_state=0, n_init=10)
        row = {
            "path": name,
            "seconds": time.perf_counter() - t0,
            "ce": _ce(labels, pred),
            "eigen_method": spectrum.eigen.method,
            "eigen_steps": spectrum.eigen.steps[:4],
            "graph_components": spectrum.eigen.n_components,
            "max_residual": spectrum.eigen.max_residual,
        }
        if name == "kNN, forced dense LAPACK":
            vals_ref = spectrum.eigenvalues
        elif affinity == "knn" and vals_ref is not None:
            row["max_eigenvalue_diff_vs_knn_dense"] = float(
                np.abs(spectrum.eigenvalues - vals_ref).max()
            )
        rows.append(row)
    for attr, value in saved.items():
        setattr(eigen, attr, value)
    ref = rows[0]["ce"]
    for row in rows:
        row["ce_diff"] = row["ce"] - ref
    return {
        "set": kind,
        "n": n,
        "k": k,
        "paths": rows,
        "max_abs_ce_diff": max(abs(r["ce_diff"]) for r in rows),
    }


def case_kmeans100k(p: dict[str, Any]) -> dict[str, Any]:
    from tcdn.discovery.cluster import KMeans, working_space

    x, labels = make_blob_features(p["n"], p["k"])
    ces, seconds, backend = [], [], ""
    t0, c0 = time.perf_counter(), time.process_time()
    space = working_space(x)  # as discover does: once per feature set, shared by the seeds
    pca_seconds = time.perf_counter() - t0
    for seed in range(p["seeds"]):
        t1 = time.perf_counter()
        est = KMeans(p["k"], random_state=seed).fit(space)
        seconds.append(time.perf_counter() - t1)
        ces.append(_ce(labels, est.labels_))
        backend = est.backend_
    return {
        "n": p["n"],
        "k": p["k"],
        "seeds": p["seeds"],
        "backend": backend,
        "dims_clustered": int(space.shape[1]),
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "pca_seconds": pca_seconds,
        "seconds_per_seed": seconds,
        "ce": float(np.mean(ces)),
        "ce_std": float(np.std(ces)),
        "ce_per_seed": ces,
    }


def case_sklearn_kmeans100k(p: dict[str, Any]) -> dict[str, Any]:
    from sklearn.cluster import KMeans

    x, labels = make_blob_features(p["n"], p["k"])
    t0, c0 = time.perf_counter(), time.process_time()
    est = KMeans(p["k"], n_init=1, random_state=0).fit(x)  # every row, every dim
    return {
        "n": p["n"],
        "k": p["k"],
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "ce": _ce(labels, est.labels_),
    }


def case_spectral1m(p: dict[str, Any]) -> dict[str, Any]:
    n, k = p["n"], p["k"]
    with tempfile.TemporaryDirectory(prefix="tcdn-bench-") as tmp:
        x = np.lib.format.open_memmap(
            os.path.join(tmp, "features.npy"), mode="w+", dtype=np.float16, shape=(n, DIM)
        )
        t0 = time.perf_counter()
        _, labels, video = make_video_features(n, k, mean_len=p["mean_len"], out=x)
        x.flush()
        generate_s = time.perf_counter() - t0
        peak_after_generation = _peak_gib()
        t0, c0 = time.perf_counter(), time.process_time()
        pred, extra = _tcdn_spectral(x, k, video)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        kmeans_ce = _kmeans_ce(x, labels, k)
        del x
    return {
        "n": n,
        "k": k,
        "videos": int(video.max()) + 1,
        "dtype": "float16 (memory map)",
        "features_gib": n * DIM * 2 / 2**30,
        "generate_seconds": generate_s,
        "kmeans_ce": kmeans_ce,
        "peak_gib_after_generation": peak_after_generation,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "ce": _ce(labels, pred),
        **extra,
    }


def _kmeans_ce(x: np.ndarray, labels: np.ndarray, k: int) -> float:
    from tcdn.discovery.cluster import kmeans

    return _ce(labels, kmeans(x, k, random_state=0))


def case_videoset(p: dict[str, Any]) -> dict[str, Any]:
    """Issue 20's video-structured set (:func:`~tcdn.discovery.synthetic.video_structured_features`):
    K-means and spectral clustering given each row's video."""
    from tcdn.discovery.synthetic import video_structured_features

    x, labels, video = video_structured_features(p["videos"], p["frames"], p["k"])
    t0 = time.perf_counter()
    kmeans_ce = _kmeans_ce(x, labels, p["k"])
    kmeans_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    pred, extra = _tcdn_spectral(x, p["k"], video)
    return {
        "n": len(x),
        "k": p["k"],
        "videos": p["videos"],
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "ce": _ce(labels, pred),
        "kmeans_ce": kmeans_ce,
        "kmeans_seconds": kmeans_s,
        **extra,
    }


def case_features(p: dict[str, Any]) -> dict[str, Any]:
    from tcdn.discovery.cluster import KMeans
    from tcdn.features.featureset import FeatureSet

    fs = FeatureSet.load(p["path"])
    labels = fs.label_codes()
    k = len(fs.class_names)
    x = fs.features
    t0 = time.perf_counter()
    km = KMeans(k, random_state=0).fit(x)
    kmeans_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred, extra = _tcdn_spectral(x, k, fs.video)
    return {
        "n": len(x),
        "dims": int(x.shape[1]),
        "k": k,
        "kmeans_seconds": kmeans_s,
        "kmeans_ce": _ce(labels, km.labels_),
        "seconds": time.perf_counter() - t0,
        "ce": _ce(labels, pred),
        **extra,
    }


CHILD = {
    "video32k": case_video32k,
    "sklearn32k": case_sklearn32k,
    "agree": case_agree,
    "kmeans100k": case_kmeans100k,
    "sklearn-kmeans100k": case_sklearn_kmeans100k,
    "spectral1m": case_spectral1m,
    "videoset": case_videoset,
    "features": case_features,
}


def child(case: str, params: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    out = CHILD[case](params)
    out.update(case=case, peak_gib=_peak_gib(), wall_seconds=time.perf_counter() - t0)
    print("RESULT " + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- the run


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or "?"


def machine() -> dict[str, Any]:
    """The CPU, its threads and the load: the timings are only meaningful beside them."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "load_avg": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "thread_env": {
            v: os.environ.get(v)
            for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
    }
    try:
        import faiss

        info["faiss_threads"] = faiss.omp_get_max_threads()
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            f"{p.get('internal_api')} {p.get('num_threads')} threads" for p in threadpool_info()
        ]
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = int(f.readline().split()[1]) / 2**20
    except OSError:
        pass
    return info


def plan(args: argparse.Namespace) -> list[tuple[str, dict[str, Any], float]]:
    """``(case, params, timeout)`` of every child process to run."""
    q = args.quick
    n32 = 8000 if q else 32000
    n100 = 25000 if q else 100000
    big = args.big_n or (50000 if q else 1_000_000)
    n_agree = args.agree_n or (2000 if q else 5000)
    sk = float(args.sklearn_timeout)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    out: list[tuple[str, dict[str, Any], float]] = []
    for case in cases:
        if case == "video32k":
            out.append((case, {"n": n32, "mean_len": 465}, args.timeout))
        elif case == "sklearn32k":
            out.append((case, {"n": n32, "mean_len": 465}, sk))
        elif case == "agree":
            for kind, k in AGREE_SETS:
                out.append((case, {"set": kind, "k": k, "n": n_agree}, args.timeout))
        elif case == "kmeans100k":
            out.append((case, {"n": n100, "k": 101, "seeds": 10}, args.timeout))
        elif case == "sklearn-kmeans100k":
            out.append((case, {"n": n100, "k": 101}, sk))
        elif case == "spectral1m":
            out.append((case, {"n": big, "k": args.big_k, "mean_len": 465}, args.big_timeout))
        elif case == "videoset":
            for videos, k in VIDEO_SETS[:1] if q else VIDEO_SETS:
                out.append((case, {"videos": videos, "frames": 100, "k": k}, args.timeout))
        elif case == "features":
            if not args.features:
                raise SystemExit("--cases features needs --features FILE.npz")
            out.append((case, {"path": args.features}, args.timeout))
        else:
            raise SystemExit(f"unknown case {case!r}; choose from {', '.join(CHILD)}")
    return out


def run_child(case: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
    load_before = list(os.getloadavg())
    cmd = [sys.executable, __file__, "--child", case, json.dumps(params)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "case": case,
            **params,
            "status": f"did not finish in {timeout:.0f} s",
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
        }
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {
            "case": case,
            **params,
            "status": f"failed (rc {proc.returncode}): {' | '.join(tail)}",
            "load_before": load_before,
        }
    result = json.loads(lines[-1][len("RESULT ") :])
    result.update(
        status="ok",
        process_seconds=time.perf_counter() - t0,
        load_before=load_before,
        load_after=list(os.getloadavg()),
    )
    return result


def describe(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['case']:<20}{r.get('n', ''):>9}  {r['status']}"
    ce = f"{r['ce']:.3f}" + (f" ± {r['ce_std']:.3f}" if "ce_std" in r else "")
    line = (
        f"{r['case']:<20}{r['n']:>9}{r['seconds']:>10.1f}{r['peak_gib']:>10.2f}  {ce:<15}"
        f"load {r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}"
    )
    if "cpu_seconds" in r:
        line += f"  cpu {r['cpu_seconds']:.0f} s"
    if "kmeans_ce" in r:
        line += f"  K-means CE {r['kmeans_ce']:.3f}"
    if "k_eigengap" in r:
        line += f"  eigengap K {r['k_eigengap']}"
    if "eigen_method" in r:
        line += f"  [{r['affinity']}, {r['eigen_method']}, {r['graph_components']} pieces]"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cases", default=",".join(ALL_CASES), help="comma-separated cases")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (8k, 25k, 50k, 2k rows)")
    ap.add_argument("--big-n", type=int, default=None, help="rows of spectral1m (1,000,000)")
    ap.add_argument("--big-k", type=int, default=101, help="classes of spectral1m (101)")
    ap.add_argument("--agree-n", type=int, default=None, help="rows of the agree sets (5,000)")
    ap.add_argument("--features", help="a tcdn feature file (.npz) for the 'features' case")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per case (900)")
    ap.add_argument("--big-timeout", type=float, default=1800, help="seconds for spectral1m")
    ap.add_argument(
        "--sklearn-timeout", type=float, default=300, help="seconds for scikit-learn's cases"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OpenMP/BLAS threads of each case (default: the libraries' own, all cores); 1 "
        "avoids OpenMP threads spinning against each other on a CPU other jobs share",
    )
    ap.add_argument("--json", default="bench_cluster.json", help="where to write the figures")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], json.loads(args.child[1]))
        return
    if args.threads:  # read by the children's OpenMP, OpenBLAS and faiss at start-up
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    if args.features and "features" not in args.cases:
        args.cases += ",features"

    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cpus']} CPUs, {info.get('mem_gib', 0):.0f} GiB; "
        f"faiss threads {info.get('faiss_threads')}; BLAS {info.get('blas')}; "
        f"load average {info['load_avg'][0]:.2f} {info['load_avg'][1]:.2f} "
        f"{info['load_avg'][2]:.2f} (other processes share the CPUs: timings are as loaded)"
    )
    print("each case in its own process; peak GiB = its max RSS, the features included")
    print(f"{'case':<20}{'N':>9}{'seconds':>10}{'peak GiB':>10}  {'CE bits':<15}")
    results: list[dict[str, Any]] = []
    for case, params, timeout in plan(args):
        r = run_child(case, params, timeout)
        results.append(r)
        if case == "agree" and r["status"] == "ok":
            print(f"agree: {r['set']} set, N = {r['n']}, K = {r['k']}", flush=True)
            for row in r["paths"]:
                print(
                    f"    {row['path']:<44}{row['seconds']:>7.1f} s  CE {row['ce']:.3f} "
                    f"(diff {row['ce_diff']:+.3f})  {row['eigen_method']} {row['eigen_steps'][:2]}",
                    flush=True,
                )
        else:
            print(describe(r), flush=True)

    summary = summarise(results)
    for line in summary["lines"]:
        print(line)
    with open(args.json, "w") as f:
        json.dump(
            {
                "machine": info,
                "load_avg_end": list(os.getloadavg()),
                "results": results,
                "summary": summary,
            },
            f,
            indent=1,
        )
    print(f"wrote {args.json}")


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Targets met or missed, and the ratios between cases of this run."""
    ok = {r["case"]: r for r in results if r["status"] == "ok"}
    lines: list[str] = []
    out: dict[str, Any] = {}
    if "video32k" in ok:
        s = ok["video32k"]["seconds"]
        lines.append(f"video32k: {s:.1f} s (target < 30 s: {'met' if s < 30 else 'MISSED'})")
        if "sklearn32k" in ok:
            ratio = ok["sklearn32k"]["seconds"] / s
            out["sklearn32k_over_tcdn"] = ratio
            lines.append(f"  scikit-learn amg / tcdn wall time = {ratio:.1f}x")
    agree = [r for r in results if r["case"] == "agree" and r["status"] == "ok"]
    if agree:
        worst = max(r["max_abs_ce_diff"] for r in agree)
        out["agree_max_abs_ce_diff"] = worst
        lines.append(
            f"agree: largest |CE - dense exact| = {worst:.3f} bits "
            f"(target <= 0.05: {'met' if worst <= 0.05 else 'MISSED'})"
        )
    if "kmeans100k" in ok:
        r = ok["kmeans100k"]
        lines.append(
            f"kmeans100k: {r['seeds']} seeds ({r['backend']}, in {r['dims_clustered']} dims) in "
            f"{r['seconds']:.1f} s with the PCA's {r['pca_seconds']:.1f} s "
            f"(target < 60 s: {'met' if r['seconds'] < 60 else 'MISSED'}), CE {r['ce']:.3f} ± "
            f"{r['ce_std']:.3f}"
        )
        if "sklearn-kmeans100k" in ok:
            per_seed = r["seconds"] / r["seeds"]
            ratio = ok["sklearn-kmeans100k"]["seconds"] / per_seed
            out["sklearn_kmeans_over_faiss_per_seed"] = ratio
            lines.append(f"  scikit-learn on every dim / tcdn per seed (PCA shared) = {ratio:.1f}x")
    if "spectral1m" in ok:
        r = ok["spectral1m"]
        met = r["seconds"] < 900 and r["peak_gib"] < 16
        lines.append(
            f"spectral1m: N = {r['n']}, {r['seconds']:.0f} s, peak {r['peak_gib']:.1f} GiB, CE "
            f"{r['ce']:.3f} (target < 900 s and < 16 GiB: {'met' if met else 'MISSED'})"
        )
    out["lines"] = lines
    return out


if __name__ == "__main__":
    main()
