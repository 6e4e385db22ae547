"""Ingest throughput against the plain PyAV decode rate of the same files, measured in one run.

Writes a small collection shaped like UCF101 (320x240 MPEG-4 part 2 in AVI, 25 fps, textured
content that pans and moves), then measures in frames/s:

- ``decode only``: demux + decode, no conversion (one process, one decoder thread);
- ``plain decode``: decode + ``to_ndarray(format="rgb24")`` at the native size, no resize
  (one process, one decoder thread): the reference the target is stated against;
- ``naive resize``: decode + ``frame.to_ndarray(width=, height=)`` (what tcdn did before: it
  builds a new scaling context for every frame);
- ``ingest raw`` / ``ingest jpeg``: ``tcdn.data.store.writer`` with ``--workers W`` (decode, scale
  to SIZE, write the store).

Prints the ratios ``ingest / (plain decode x W)`` (target >= 0.8). On a machine shared with other
jobs the W > 1 figures undercount: compare W = 1 too. Run ``make bench-data`` or
``python benchmarks/bench_ingest.py [--videos N] [--frames T] [--workers W] [--size S]``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from tcdn.data.collection import find_videos
from tcdn.data.decode import DecodeSettings
from tcdn.data.store.manifest import StoreSettings
from tcdn.data.store.writer import ingest


def textured_frames(n: int, width: int, height: int, seed: int) -> np.ndarray:
    """``(n, H, W, 3)`` frames with natural-image-like statistics: a smooth multi-scale texture
    that pans, two moving blobs, and a little sensor noise (JPEG sizes close to real video)."""
    rng = np.random.default_rng(seed)
    big_h, big_w = height + 64, width + 2 * n + 64
    tex = np.zeros((big_h, big_w, 3), np.float32)
    for scale in (4, 16, 64):  # octaves of upsampled noise: detail at several scales
        small = rng.normal(size=(big_h // scale + 2, big_w // scale + 2, 3)).astype(np.float32)
        up = np.repeat(np.repeat(small, scale, 0), scale, 1)[:big_h, :big_w]
        k = max(scale // 2, 1)
        cs = np.cumsum(np.cumsum(np.pad(up, ((k, k), (k, k), (0, 0)), mode="edge"), 0), 1)
        up = (
            cs[2 * k :, 2 * k :]
            - cs[: -2 * k, 2 * k :]
            - cs[2 * k :, : -2 * k]
            + cs[: -2 * k, : -2 * k]
        ) / (4 * k * k)
        tex += up[:big_h, :big_w] * (scale**0.5)
    tex = (tex - tex.min()) / (np.ptp(tex) + 1e-6) * 255
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        frame = tex[16 : 16 + height, 2 * t : 2 * t + width].copy()
        for b, color in enumerate(([230, 60, 40], [40, 90, 220])):
            cx = width * (0.3 + 0.4 * np.sin(0.07 * t + 2 * b))
            cy = height * (0.5 + 0.3 * np.cos(0.05 * t + b))
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (height / 7) ** 2
            frame[mask] = color
        frame += rng.normal(0, 3, frame.shape)
        out[t] = np.clip(frame, 0, 255)
    return out


def write_collection(root: Path, videos: int, frames: int, width: int, height: int) -> Path:
    """``videos`` XviD-like AVIs (MPEG-4 part 2, like UCF101) in ``root/classNN/``."""
    for v in range(videos):
        path = root / f"class{v % 5:02d}" / f"v{v:03d}.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        arr = textured_frames(frames, width, height, seed=v)
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height = width, height  # type: ignore[union-attr]
            stream.pix_fmt = "yuv420p"  # type: ignore[union-attr]
            stream.bit_rate = 1_500_000  # type: ignore[union-attr]
            for a in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):  # type: ignore[union-attr]
                    container.mux(packet)
            for packet in stream.encode():  # type: ignore[union-attr]
                container.mux(packet)
    return root


def decode_rate(paths: list[Path], how: str, size: int) -> float:
    """Frames/s of decoding ``paths`` in this process with one decoder thread."""
    n = 0
    t0 = time.perf_counter()
    for p in paths:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            for frame in container.decode(stream):
                if how == "rgb":
                    frame.to_ndarray(format="rgb24")
                elif how == "naive":
                    frame.to_ndarray(width=size, height=size, format="rgb24")
                n += 1
    return n / (time.perf_counter() - t0)


def parallel_decode_rate(paths: list[Path], workers: int) -> float:
    """Frames/s of the plain decode run in ``workers`` spawned processes at once (pool start
    included, as in an ingest): the reference measured under the same load as the ingest."""
    import concurrent.futures as cf
    import multiprocessing

    chunks = [paths[k::workers] for k in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        n = sum(pool.map(_plain_decode, chunks))
    return n / (time.perf_counter() - t0)


def _plain_decode(paths: list[Path]) -> int:
    """Decode + rgb24 at the native size, one decoder thread; returns the frame count."""
    n = 0
    for p in paths:
        with av.open(str(p)) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--videos", type=int, default=12, help="videos to write (default: 12)")
    ap.add_argument("--frames", type=int, default=150, help="frames per video (default: 150)")
    ap.add_argument("--width", type=int, default=320, help="source width (default: 320, UCF101's)")
    ap.add_argument("--height", type=int, default=240, help="source height (default: 240)")
    ap.add_argument("--size", type=int, default=227, help="store frame side (default: 227)")
    ap.add_argument("--workers", type=int, default=2, help="ingest processes (default: 2)")
    ap.add_argument("--repeats", type=int, default=2, help="best of R runs (default: 2)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="tcdn-bench-ingest-") as tmp:
        src = write_collection(
            Path(tmp) / "videos", args.videos, args.frames, args.width, args.height
        )
        paths = [e.path for e in find_videos(src)]
        total = args.videos * args.frames
        best = {
            k: max(decode_rate(paths, k, args.size) for _ in range(args.repeats))
            for k in ("decode", "rgb", "naive")
        }
        print(
            f"collection: {args.videos} videos x {args.frames} frames, {args.width}x{args.height} MPEG-4 AVI -> {args.size}x{args.size}"
        )
        print(f"decode only (1 proc)            {best['decode']:8.0f} frames/s")
        print(f"plain decode, rgb native (1 proc) {best['rgb']:6.0f} frames/s   <- reference")
        print(
            f"naive to_ndarray(w,h) (1 proc)  {best['naive']:8.0f} frames/s   ratio to plain {best['naive'] / best['rgb']:.2f}"
        )
        par = max(parallel_decode_rate(paths, args.workers) for _ in range(args.repeats))
        print(
            f"plain decode in {args.workers} procs at once  {par:6.0f} frames/s   "
            f"({par / best['rgb']:.2f} x the 1-proc rate: how much of {args.workers} cores this busy machine gives)"
        )
        for storage in ("raw", "jpeg"):
            for workers in sorted({1, args.workers}):
                rates = []
                for r in range(args.repeats):
                    out = Path(tmp) / f"store-{storage}-{workers}-{r}"
                    settings = StoreSettings(decode=DecodeSettings.make(args.size), storage=storage)
                    t0 = time.perf_counter()
                    report = ingest(
                        find_videos(src), out, settings, workers=workers, progress=False
                    )
                    rates.append(report.n_frames / (time.perf_counter() - t0))
                    assert report.n_frames == total and not report.bad
                rate = max(rates)
                ratio = rate / (best["rgb"] * workers)
                same_load = rate / (best["rgb"] if workers == 1 else par)
                print(
                    f"ingest {storage:4s} workers={workers}          {rate:8.0f} frames/s   "
                    f"ratio to plain x {workers}: {ratio:.2f} (target >= 0.8); to plain in "
                    f"{workers} procs measured: {same_load:.2f}; {report.bytes_per_frame:,.0f} bytes/frame"
                )


if __name__ == "__main__":
    main()
