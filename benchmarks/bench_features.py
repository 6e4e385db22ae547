"""Feature extraction throughput: ``tcdn.features.extract_features`` vs the network's forward-only rate.

Measured in one run, same network and batch size:

- ``forward-only``: ``model.forward_features(x, "fc6")`` under inference mode on a float tensor
  already in memory (the compute limit);
- ``extract``: ``extract_features`` over uint8 frames (conversion, mean subtraction, forward,
  copy of the features out), as ``tcdn features`` / ``tcdn discover`` run it.

Prints frames/s of each and the ratio (target >= 0.9). Run ``python benchmarks/bench_features.py
[--image-size 64|227] [--frames N]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tcdn.features.extract import extract_features
from tcdn.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--image-size", type=int, default=64, help="frame side (default: 64, the demo's)"
    )
    ap.add_argument(
        "--frames", type=int, default=2048, help="frames per timed pass (default: 2048)"
    )
    ap.add_argument("--batch-size", type=int, default=256, help="frames per forward (default: 256)")
    args = ap.parse_args()
    torch.manual_seed(0)
    pool = 1 if args.image_size < 100 else 6
    model = build_model("alexnet", embed_dim=1024, pool_size=pool).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(
        0, 256, (args.frames, args.image_size, args.image_size, 3), dtype=np.uint8
    )
    mean = frames.reshape(-1, 3).mean(0).astype(np.float32)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)

    @torch.inference_mode()
    def forward_only() -> None:
        for _ in range(0, args.frames, args.batch_size):
            model.forward_features(x, layer="fc6")

    def extract() -> None:
        extract_features(model, frames, mean, batch_size=args.batch_size, progress=False)

    rates: dict[str, list[float]] = {"forward": [], "extract": []}
    forward_only(), extract()  # warm-up
    for _ in range(3):  # interleaved, so drift of the machine's speed hits both alike
        for name, fn in (("forward", forward_only), ("extract", extract)):
            t0 = time.perf_counter()
            fn()
            rates[name].append(args.frames / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    print(
        f"AlexNet fc6 at {args.image_size}x{args.image_size}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"forward-only (float tensor in memory): {med['forward']:9.1f} frames/s")
    print(f"extract_features (uint8 frames)      : {med['extract']:9.1f} frames/s")
    print(
        f"ratio extract / forward-only          : {med['extract'] / med['forward']:9.3f}  (target >= 0.9)"
    )


if __name__ == "__main__":
    main()
