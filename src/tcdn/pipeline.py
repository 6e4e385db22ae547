"""The end-to-end jobs: discovery on a collection with every baseline, and the demo.

``discover_collection`` scores one collection with four feature sources computed the same way:

- ``trained``: the checkpoint's network (layer ``fc6`` by default);
- ``random_init``: the *same* network with random weights, a fresh initialisation per repeat;
- ``raw_pixels``: the frames' pixels reduced by PCA;
- ``random_assignment``: every frame put in a uniformly random cluster.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn import __version__
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.data.video import FrameSet, load_frames
from tcdn.discover import METHODS, Score, random_assignment_scores, score_clusterings
from tcdn.errors import TcdnError
from tcdn.features import extract_features, raw_pixel_features
from tcdn.train import (
    TrainConfig,
    channel_mean,
    load_checkpoint,
    model_from_checkpoint,
    model_from_config,
    train,
)

log = logging.getLogger(__name__)

SOURCES = ("trained", "random_init", "raw_pixels", "random_assignment")
RESULTS_FORMAT = "tcdn-results-1"


def evaluation_rows(
    frames: FrameSet, stride: int = 1, max_per_video: int | None = None
) -> np.ndarray:
    """Rows of ``frames`` to evaluate: every ``stride``-th frame of each video, at most ``max_per_video``."""
    if stride < 1:
        raise TcdnError(f"--frame-stride must be >= 1, got {stride}")
    rows = []
    for v in range(len(frames.videos)):
        r = np.arange(frames.offsets[v], frames.offsets[v + 1], stride)
        rows.append(r[:max_per_video] if max_per_video else r)
    return np.concatenate(rows)


def _constant(features: np.ndarray) -> Callable[[int], np.ndarray]:
    """The same features for every repeat (a fixed feature source)."""
    return lambda _repeat: features


def discover_collection(
    frames: FrameSet,
    checkpoint: dict[str, Any] | None,
    *,
    sources: Sequence[str] = SOURCES,
    methods: Sequence[str] = METHODS,
    layer: str = "fc6",
    repeats: int = 10,
    seed: int = 0,
    k: int | None = None,
    frame_stride: int = 1,
    max_per_video: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Cluster the frames of ``frames`` with every feature source; return ``results`` and the
    first repeat's cluster assignments per ``"source/method"``.

    ``checkpoint`` is needed for ``trained`` and gives ``random_init`` its architecture; without
    it ``random_init`` uses the default AlexNet at the frames' size.
    """
    for s in sources:
        if s not in SOURCES:
            raise TcdnError(f"unknown feature source {s!r}; choose from {', '.join(SOURCES)}")
    if repeats < 1:
        raise TcdnError(f"--repeats must be >= 1, got {repeats}")
    labels_all = frames.frame_labels()
    if len(frames.class_names) < 2:
        raise TcdnError(
            f"the collection has a single class ({frames.class_names[0]}): scoring a discovery needs at least two"
        )
    rows = evaluation_rows(frames, frame_stride, max_per_video)
    x, labels = frames.frames[rows], labels_all[rows]
    size = int(x.shape[1])
    if checkpoint is not None:
        model, mean, cfg = model_from_checkpoint(checkpoint)
    else:
        cfg, model, mean = TrainConfig(image_size=size), None, channel_mean(x, seed=seed)
    if cfg.image_size != size:
        raise TcdnError(
            f"the checkpoint was trained on {cfg.image_size}px frames but these are {size}px"
        )

    scores: dict[str, dict[str, Score]] = {}
    timings: dict[str, float] = {}
    for source in sources:
        t0 = time.perf_counter()
        if source == "trained":
            if model is None:
                raise TcdnError("the 'trained' source needs a checkpoint (--checkpoint)")
            feats = extract_features(model, x, mean, layer=layer, device=device, progress=progress)
            scores[source] = score_clusterings(
                _constant(feats), labels, k=k, methods=methods, repeats=repeats, seed=seed
            )
        elif source == "random_init":

            def random_features(r: int) -> np.ndarray:
                torch.manual_seed(seed + 1000 + r)
                net = model_from_config(cfg)
                return extract_features(
                    net,
                    x,
                    mean,
                    layer=layer,
                    device=device,
                    progress=progress,
                    desc=f"random-init net {r + 1}",
                )

            scores[source] = score_clusterings(
                random_features, labels, k=k, methods=methods, repeats=repeats, seed=seed
            )
        elif source == "raw_pixels":
            pix = raw_pixel_features(x, seed=seed)
            scores[source] = score_clusterings(
                _constant(pix), labels, k=k, methods=methods, repeats=repeats, seed=seed
            )
        else:
            scores[source] = random_assignment_scores(
                labels, k=k, methods=methods, repeats=repeats, seed=seed
            )
        timings[source] = time.perf_counter() - t0
        log.info(
            "%s: %s (%.1f s)",
            source,
            ", ".join(f"{m} {s.mean:.3f}" for m, s in scores[source].items()),
            timings[source],
        )

    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "tcdn_version": __version__,
        "metric": "conditional entropy H(class | cluster), bits, lower is better",
        "layer": layer,
        "repeats": repeats,
        "seed": seed,
        "n_videos": len(frames.videos),
        "n_frames": len(rows),
        "classes": frames.class_names,
        "checkpoint": checkpoint.get("path") if checkpoint else None,
        "train_config": cfg.to_dict() if checkpoint else None,
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "seconds": timings,
        "results": {s: {m: sc.to_dict() for m, sc in per.items()} for s, per in scores.items()},
    }
    assignments = {
        f"{s}/{m}": sc.first_assignment
        for s, per in scores.items()
        for m, sc in per.items()
        if sc.first_assignment is not None
    }
    return results, {"rows": rows, **assignments}


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table: CE mean ± std per feature source and method."""
    res = results["results"]
    methods = sorted(
        {m for per in res.values() for m in per},
        key=lambda m: METHODS.index(m) if m in METHODS else 99,
    )
    head = f"{'features':<20}" + "".join(f"{m:>20}" for m in methods)
    lines = [
        f"conditional entropy H(class|cluster) in bits, lower is better; {results['n_frames']} frames, "
        f"{len(results['classes'])} classes, {results['repeats']} repeats, layer {results['layer']}",
        head,
        "-" * len(head),
    ]
    for source, per in res.items():
        cells = "".join(
            f"{per[m]['ce_mean']:>12.3f} ± {per[m]['ce_std']:<5.3f}" if m in per else f"{'':>20}"
            for m in methods
        )
        lines.append(f"{source:<20}{cells}")
    return "\n".join(lines)


def write_results(
    out_dir: str | Path,
    frames: FrameSet,
    results: dict[str, Any],
    assignments: dict[str, np.ndarray],
) -> None:
    """``results.json`` and ``clusters.csv`` (video, frame, label, one column per source/method) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".results.json.partial"
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out / "results.json")

    rows = assignments["rows"]
    cols = [k for k in assignments if k != "rows"]
    vid, fr = frames.video_index[rows], frames.frame_index[rows]
    tmp = out / ".clusters.csv.partial"
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "frame", "label", *[c.replace("/", "_") for c in cols]])
        for i in range(len(rows)):
            v = frames.videos[vid[i]]
            w.writerow([v.name, int(fr[i]), v.label or "", *[int(assignments[c][i]) for c in cols]])
    os.replace(tmp, out / "clusters.csv")


# -- the demo ------------------------------------------------------------------------------------
DEMO_SIZE = 64


def demo_train_config(steps: int, seed: int) -> TrainConfig:
    """The demo's training run: Lq and AlexNet on 64x64 frames, a short schedule that fits a laptop.

    It departs from the paper's configuration in three ways, each measured on the synthetic
    data (never on a labelled evaluation set):

    - at 64x64 AlexNet's pool5 is 1x1, so the adaptive pool before fc6 is 1x1 too instead of
      6x6 (which only repeats that one cell 36 times, at 36 times the cost of fc6);
    - 200 steps instead of 30,000, at a constant learning rate of 0.01;
    - L2-normalised embeddings and squared distances (the authors' release): with the paper's
      plain Euclidean Lq, every learning rate we tried (0.001 to 0.01) collapsed the embeddings
      to one point (loss = margin) within 150-500 steps on this data.
    """
    return TrainConfig(
        loss="lq",
        model="alexnet",
        model_options={"pool_size": 1},
        image_size=DEMO_SIZE,
        steps=steps,
        lr=0.01,
        lr_step=10 * steps,
        normalize=True,
        squared=True,
        checkpoint_every=max(steps // 4, 1),
        keep_last=2,
        seed=seed,
    )


def run_demo(
    out_dir: str | Path,
    *,
    steps: int = 200,
    seed: int = 0,
    repeats: int = 10,
    frame_stride: int = 2,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Generate the synthetic collection, train Lq on it, discover its classes; return the results.

    Discovery is scored on every ``frame_stride``-th frame of each video.
    """
    out = Path(out_dir)
    videos = out / "videos"
    generate(videos, SyntheticConfig(seed=seed), progress=progress)
    frames = load_frames(videos, size=DEMO_SIZE, progress=progress)
    ckpt_path = train(
        frames,
        demo_train_config(steps, seed),
        out / "run",
        resume=True,
        device=device,
        progress=progress,
    )
    results, assignments = discover_collection(
        frames,
        load_checkpoint(ckpt_path),
        repeats=repeats,
        seed=seed,
        frame_stride=frame_stride,
        device=device,
        progress=progress,
    )
    results["collection"] = str(videos)
    write_results(out, frames, results, assignments)
    return results
