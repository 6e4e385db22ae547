"""Random reads from the frame store, as training does them, measured in one run.

Builds a raw and a JPEG store of the same textured 320x240 videos (see ``bench_ingest.py``) at
227x227, then measures, from the page cache:

- ``raw store``: random quadruplet batches (40 tuples = 160 frames: t, t+1, t+20 of one video
  and a frame of another) leaving the store as a ``torch.uint8`` tensor, frames/s;
- ``memmap fancy index``: the same indices into one ``np.memmap`` of all frames (a reference);
- ``naive float``: the memmap batch converted to float32 in NumPy (what not to do on the CPU);
- ``jpeg store``: the same batches, decoded with libjpeg-turbo in T threads, frames/s;
- bytes per frame of each, and the JPEG/raw ratio (target <= 1/8);
- ``video seek``: the same frames read by seeking in the video files, one per tuple member;
- ``train step``: frames/s one AlexNet Lq step consumes here (forward + backward, 160 frames);
- ``open``: time and RSS growth to open a 100,000-frame store (sparse files: no disk used) and
  read one batch from it.

Run ``make bench-data`` or ``python benchmarks/bench_store.py [--videos N] [--frames T]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import write_collection
from tcdn.data.collection import find_videos
from tcdn.data.decode import DecodeSettings
from tcdn.data.frameset import FrameSet
from tcdn.data.store.manifest import MANIFEST, STORE_FORMAT, STORE_VERSION, StoreSettings, video_key
from tcdn.data.store.reader import open_store
from tcdn.data.store.writer import ingest

BATCH = 40  # quadruplets
FAR = 20


def quadruplet_indices(fs: FrameSet, rng: np.random.Generator) -> np.ndarray:
    """``(4 * BATCH,)`` global frame indices: anchor t, positive t+1, far t+FAR, a negative."""
    lengths = fs.lengths
    ok = np.flatnonzero(lengths > FAR)
    v = rng.choice(ok, BATCH)
    t = (rng.random(BATCH) * (lengths[v] - FAR)).astype(np.int64)
    base = fs.offsets[v] + t
    other = (v + rng.integers(1, len(lengths), BATCH)) % len(lengths)
    neg = fs.offsets[other] + (rng.random(BATCH) * lengths[other]).astype(np.int64)
    return np.concatenate([base, base + 1, base + FAR, neg])


def rate(fn, batches: list[np.ndarray], repeats: int = 3) -> float:
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for idx in batches:
            fn(idx)
        best = max(best, sum(len(b) for b in batches) / (time.perf_counter() - t0))
    return best


def seek_read(fs: FrameSet, idx: np.ndarray, size: int) -> None:
    """Read each frame by opening its video and seeking to it (the no-store baseline)."""
    vids = np.searchsorted(fs.offsets, idx, side="right") - 1
    for v, g in zip(vids, idx, strict=True):
        t = int(g - fs.offsets[v])
        with av.open(str(fs.videos[v].path)) as container:
            stream = container.streams.video[0]
            tb, rate_ = stream.time_base, stream.average_rate
            assert tb is not None and rate_ is not None
            target = int(t / rate_ / tb)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= target:
                    frame.to_ndarray(width=size, height=size, format="rgb24")
                    break


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def sparse_store(root: Path, n_frames: int, per_video: int, size: int) -> Path:
    """A raw store of ``n_frames`` whose data files are sparse (they read as zeros, use no disk)."""
    data = root / "data"
    data.mkdir(parents=True)
    videos = []
    for v in range(n_frames // per_video):
        name = f"v{v:06d}.avi"
        key = video_key(name)
        with open(data / f"{key}.u8", "wb") as fh:
            fh.truncate(per_video * size * size * 3)
        videos.append(
            {
                "name": name,
                "label": None,
                "source": f"/nowhere/{name}",
                "file_size": 0,
                "mtime_ns": 0,
                "key": key,
                "n_frames": per_video,
                "bytes": per_video * size * size * 3,
            }
        )
    settings = StoreSettings(decode=DecodeSettings.make(size)).to_dict()
    manifest = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "complete": True,
        "source": "sparse",
        "settings": settings,
        "frame_shape": [size, size, 3],
        "n_frames": n_frames,
        "videos": videos,
        "bad": [],
    }
    (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def train_step_rate(size: int) -> float:
    from tcdn.models import build_model

    model = build_model("alexnet")
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(4 * BATCH, 3, size, size)
    for i in range(3):
        if i == 1:
            t0 = time.perf_counter()
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return 2 * 4 * BATCH / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--videos", type=int, default=20, help="videos to write (default: 20)")
    ap.add_argument("--frames", type=int, default=150, help="frames per video (default: 150)")
    ap.add_argument("--size", type=int, default=227, help="frame side (default: 227)")
    ap.add_argument("--batches", type=int, default=20, help="batches per timing (default: 20)")
    ap.add_argument("--threads", type=int, default=2, help="JPEG decoding threads (default: 2)")
    ap.add_argument("--open-frames", type=int, default=100_000, help="frames of the open test")
    ap.add_argument("--no-train-step", action="store_true", help="skip the training-step timing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory(prefix="tcdn-bench-store-") as tmp_:
        tmp = Path(tmp_)
        src = write_collection(tmp / "videos", args.videos, args.frames, 320, 240)
        entries = find_videos(src)
        stores = {}
        for storage in ("raw", "jpeg"):
            settings = StoreSettings(decode=DecodeSettings.make(args.size), storage=storage)
            report = ingest(entries, tmp / storage, settings, workers=2, progress=False)
            stores[storage] = (open_store(tmp / storage, threads=args.threads), report)
        raw, raw_report = stores["raw"]
        jpeg, jpeg_report = stores["jpeg"]
        batches = [quadruplet_indices(raw, rng) for _ in range(args.batches)]

        # one memmap of every frame: the plain fancy-index reference
        flat = tmp / "all.u8"
        with open(flat, "wb") as fh:
            for v in range(len(raw.videos)):
                fh.write(raw.frames[raw.offsets[v] : raw.offsets[v + 1]].tobytes())
        mm = np.memmap(flat, np.uint8, "r", shape=raw.frames.shape)
        for b in batches:  # warm the page cache for every reader
            raw.frames[b], jpeg.frames[b], mm[b]

        r_raw = rate(lambda i: torch.from_numpy(raw.frames[i]), batches)
        r_mm = rate(lambda i: torch.from_numpy(mm[i]), batches)
        r_float = rate(lambda i: mm[i].astype(np.float32) / 255.0, batches)
        r_jpeg = rate(lambda i: torch.from_numpy(jpeg.frames[i]), batches)
        seek_batches = [b[::4] for b in batches[:2]]  # 40 frames each: seeking is slow
        r_seek = rate(lambda i: seek_read(raw, i, args.size), seek_batches, repeats=1)
        print(
            f"stores: {raw_report.n_frames} frames of {args.videos} textured 320x240 videos at {args.size}x{args.size}; batches of {4 * BATCH} frames"
        )
        print(
            f"raw store -> uint8 tensor        {r_raw:9.0f} frames/s  {raw_report.bytes_per_frame:9,.0f} B/frame"
        )
        print(
            f"memmap fancy index (reference)   {r_mm:9.0f} frames/s  ratio raw/memmap {r_raw / r_mm:.2f}"
        )
        print(f"memmap + naive float conversion  {r_float:9.0f} frames/s")
        print(
            f"jpeg store ({args.threads} threads) -> tensor  {r_jpeg:7.0f} frames/s  {jpeg_report.bytes_per_frame:9,.0f} B/frame "
            f"= 1/{raw_report.bytes_per_frame / jpeg_report.bytes_per_frame:.1f} of raw (q90, 4:2:0)"
        )
        print(
            f"video seek per frame (baseline)  {r_seek:9.0f} frames/s  raw/seek {r_raw / r_seek:.0f}x, jpeg/seek {r_jpeg / r_seek:.0f}x"
        )
        if not args.no_train_step:
            r_train = train_step_rate(args.size)
            print(
                f"train step consumes              {r_train:9.0f} frames/s  "
                f"raw {r_raw / r_train:.0f}x, jpeg {r_jpeg / r_train:.0f}x what it needs (target >= 5x)"
            )

        before = rss_kb()
        t0 = time.perf_counter()
        big = open_store(sparse_store(tmp / "sparse", args.open_frames, 100, args.size))
        t_open = time.perf_counter() - t0
        after_open = rss_kb()
        big.frames[quadruplet_indices(big, rng)]
        after_read = rss_kb()
        print(
            f"open a {args.open_frames:,}-frame store   {t_open * 1000:9.1f} ms  RSS +{(after_open - before) / 1024:.1f} MB "
            f"after open, +{(after_read - before) / 1024:.1f} MB after one batch "
            f"(all frames: {args.open_frames * args.size * args.size * 3 / 1e9:.1f} GB)"
        )


if __name__ == "__main__":
    main()
