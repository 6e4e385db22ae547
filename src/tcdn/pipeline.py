"""The end-to-end jobs: discovery on a collection with every baseline, and the demo.

``discover_collection`` scores one collection with four feature sources computed the same way:

- ``trained``: the checkpoint's network (its default feature layer, ``fc6`` for AlexNet);
- ``random_init``: the *same* network with random weights, a fresh initialisation per repeat;
- ``raw_pixels``: the frames' pixels reduced by PCA;
- ``random_assignment``: every frame put in a uniformly random cluster.

``discover_features`` scores features of any origin (a :class:`~tcdn.features.FeatureSet`) the
same way, against ``random_assignment``. Both cluster frames (``level="frame"``) or videos
(``level="video"``: the mean of each video's frame features, :func:`~tcdn.features.pool_by_video`).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tcdn import __version__
from tcdn.data.synthetic import SyntheticConfig, generate
from tcdn.data.video import FrameSet, load_frames
from tcdn.discover import METHODS, Score, random_assignment_scores, score_clusterings
from tcdn.errors import TcdnError
from tcdn.features import FeatureSet, FrameFeaturizer, pool_by_video
from tcdn.train import TrainConfig, load_checkpoint, train

log = logging.getLogger(__name__)

SOURCES = ("trained", "random_init", "raw_pixels", "random_assignment")
#: the source name of features given by the user (``discover_features``)
GIVEN = "given"
LEVELS = ("frame", "video")
RESULTS_FORMAT = "tcdn-results-1"


class Discovery(NamedTuple):
    """What a discovery returns.

    Attributes
    ----------
    results
        The scores and the facts needed to reproduce them (written to ``results.json``).
    assignments
        ``"source/method"`` -> ``(N,)`` clusters of the first repeat, for every source that clusters.
    clustered
        The ``N`` rows clustered: their ``video``, ``frame`` (-1 for a whole video) and ``label``
        (no feature columns).
    """

    results: dict[str, Any]
    assignments: dict[str, np.ndarray]
    clustered: FeatureSet


def _every_nth(rank: np.ndarray, stride: int, max_per_video: int | None) -> np.ndarray:
    """Rows whose position ``rank`` inside their video is a multiple of ``stride``, at most
    ``max_per_video`` per video; ascending."""
    if stride < 1:
        raise TcdnError(f"--frame-stride must be >= 1, got {stride}")
    keep = rank % stride == 0
    if max_per_video:
        keep &= rank // stride < max_per_video
    return np.flatnonzero(keep)


def evaluation_rows(
    frames: FrameSet, stride: int = 1, max_per_video: int | None = None
) -> np.ndarray:
    """Rows of ``frames`` to evaluate: every ``stride``-th frame of each video, at most ``max_per_video``."""
    return _every_nth(frames.frame_index, stride, max_per_video)


def feature_rows(fs: FeatureSet, stride: int = 1, max_per_video: int | None = None) -> np.ndarray:
    """Rows of ``fs`` to evaluate: every ``stride``-th row of each video (counted in the file's
    order), at most ``max_per_video``; in the file's order."""
    _, inverse = np.unique(fs.video, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(inverse))[:-1]])
    rank = np.empty(len(fs), dtype=np.int64)
    rank[order] = np.arange(len(fs)) - starts[inverse[order]]
    return _every_nth(rank, stride, max_per_video)


@dataclass
class _Source:
    """How one feature source gives the features of repeat ``r`` (``None``: random assignment)."""

    features: Callable[[int], np.ndarray] | None
    per_repeat: bool = False  # a new array every repeat (random_init); else computed once


def _repeat_features(
    source: _Source, pool: Callable[[np.ndarray], np.ndarray]
) -> Callable[[int], np.ndarray]:
    """``repeat -> pooled features``; a fixed source is computed (and pooled) once, so that
    :func:`score_clusterings` sees the same array and reuses its spectral embedding."""
    compute = source.features
    assert compute is not None
    if source.per_repeat:
        return lambda r: pool(compute(r))
    cache: list[np.ndarray] = []

    def once(_repeat: int) -> np.ndarray:
        if not cache:
            cache.append(pool(compute(0)))
        return cache[0]

    return once


def _score_sources(
    index: FeatureSet,
    sources: dict[str, _Source],
    *,
    level: str,
    methods: Sequence[str],
    repeats: int,
    seed: int,
    k: int | None,
) -> tuple[FeatureSet, dict[str, dict[str, Score]], dict[str, float]]:
    """Cluster the rows of ``index`` (pooled per video at ``level="video"``) with each source's
    features and score them; return the rows clustered, the scores and the seconds per source."""
    if level not in LEVELS:
        raise TcdnError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    if repeats < 1:
        raise TcdnError(f"--repeats must be >= 1, got {repeats}")
    for m in methods:
        if m not in METHODS:
            raise TcdnError(f"unknown clustering method {m!r}; choose from {', '.join(METHODS)}")
    clustered = pool_by_video(index) if level == "video" else index
    unit = "videos" if level == "video" else "frames"
    labels = clustered.label_codes()
    classes = clustered.class_names
    if len(classes) < 2:
        raise TcdnError(
            f"the {unit} to cluster have a single class ({classes[0] if classes else 'none'}): "
            "scoring a discovery needs at least two"
        )
    n_clusters = k or len(classes)
    if not 2 <= n_clusters <= len(clustered):
        hint = " or use --level frame" if level == "video" else ""
        raise TcdnError(
            f"--k {n_clusters}: the number of clusters must be in [2, {len(clustered)}], the number "
            f"of {unit} to cluster at --level {level}; change --k{hint}"
        )

    def pool(features: np.ndarray) -> np.ndarray:
        if level == "frame":
            return features
        return pool_by_video(replace(index, features=features)).features

    scores: dict[str, dict[str, Score]] = {}
    timings: dict[str, float] = {}
    for name, source in sources.items():
        t0 = time.perf_counter()
        if source.features is None:
            scores[name] = random_assignment_scores(
                labels, k=k, methods=methods, repeats=repeats, seed=seed
            )
        else:
            scores[name] = score_clusterings(
                _repeat_features(source, pool),
                labels,
                k=k,
                methods=methods,
                repeats=repeats,
                seed=seed,
            )
        timings[name] = time.perf_counter() - t0
        log.info(
            "%s: %s (%.1f s)",
            name,
            ", ".join(f"{m} {s.mean:.3f}" for m, s in scores[name].items()),
            timings[name],
        )
    return clustered, scores, timings


def _discovery(
    clustered: FeatureSet,
    scores: dict[str, dict[str, Score]],
    timings: dict[str, float],
    *,
    level: str,
    layer: str | None,
    repeats: int,
    seed: int,
    checkpoint: str | None,
    train_config: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> Discovery:
    """The :class:`Discovery` of scored sources, with the same ``results`` for every path."""
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "tcdn_version": __version__,
        "metric": "conditional entropy H(class | cluster), bits, lower is better",
        "level": level,
        "layer": layer,
        "repeats": repeats,
        "seed": seed,
        "n_videos": len(clustered.videos),
        "n_frames": len(clustered),  # the rows clustered: videos at level "video"
        "classes": clustered.class_names,
        "checkpoint": checkpoint,
        "train_config": train_config,
        **(extra or {}),
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
    rows = replace(clustered, features=np.zeros((len(clustered), 0), np.float32), meta={})
    return Discovery(results, assignments, rows)


def discover_collection(
    frames: FrameSet,
    checkpoint: dict[str, Any] | None,
    *,
    sources: Sequence[str] = SOURCES,
    methods: Sequence[str] = METHODS,
    layer: str | None = None,
    repeats: int = 10,
    seed: int = 0,
    k: int | None = None,
    frame_stride: int = 1,
    max_per_video: int | None = None,
    level: str = "frame",
    device: str = "cpu",
    progress: bool = True,
) -> Discovery:
    """Cluster the frames (``level="frame"``) or videos (``level="video"``, each the mean of its
    frames' features) of ``frames`` with every feature source, and score the clusters.

    ``checkpoint`` is needed for ``trained`` and gives ``random_init`` its architecture; without
    it ``random_init`` uses the default AlexNet at the frames' size. Features are computed by
    :class:`~tcdn.features.FrameFeaturizer`, as ``tcdn features`` computes them.
    """
    for s in sources:
        if s not in SOURCES:
            raise TcdnError(f"unknown feature source {s!r}; choose from {', '.join(SOURCES)}")
    if "trained" in sources and checkpoint is None:
        raise TcdnError("the 'trained' source needs a checkpoint (--checkpoint)")
    frames.frame_labels()  # every video needs a label: say so in the collection's terms
    rows = evaluation_rows(frames, frame_stride, max_per_video)
    featurizer = FrameFeaturizer(
        frames, rows, checkpoint, layer=layer, seed=seed, device=device, progress=progress
    )
    # features are computed lazily: every option is checked before the first one

    def source_features(source: str) -> Callable[[int], np.ndarray]:
        return lambda r: featurizer.features(source, r)

    plan = {
        s: _Source(
            None if s == "random_assignment" else source_features(s),
            per_repeat=s == "random_init",
        )
        for s in sources
    }
    clustered, scores, timings = _score_sources(
        featurizer.index, plan, level=level, methods=methods, repeats=repeats, seed=seed, k=k
    )
    return _discovery(
        clustered,
        scores,
        timings,
        level=level,
        layer=featurizer.layer,
        repeats=repeats,
        seed=seed,
        checkpoint=checkpoint.get("path") if checkpoint else None,
        train_config=featurizer.config.to_dict() if featurizer.config else None,
    )


def discover_features(
    fs: FeatureSet,
    *,
    methods: Sequence[str] = METHODS,
    repeats: int = 10,
    seed: int = 0,
    k: int | None = None,
    frame_stride: int = 1,
    max_per_video: int | None = None,
    level: str = "frame",
) -> Discovery:
    """Cluster features of any origin and score the clusters: the source ``given`` (``fs``'s
    features) and ``random_assignment``, as :func:`discover_collection` scores its sources.

    ``frame_stride`` and ``max_per_video`` keep every S-th row of each video, at most M; at
    ``level="video"`` the kept rows of each video are averaged into one.
    """
    rows = feature_rows(fs, frame_stride, max_per_video)
    subset = fs.subset(rows)
    if len(subset) == 0:
        raise TcdnError("the feature set has no rows: there is nothing to cluster")
    plan = {GIVEN: _Source(lambda _r: subset.features), "random_assignment": _Source(None)}
    index = replace(subset, features=np.zeros((len(subset), 0), np.float32))
    clustered, scores, timings = _score_sources(
        index, plan, level=level, methods=methods, repeats=repeats, seed=seed, k=k
    )
    meta = fs.meta
    return _discovery(
        clustered,
        scores,
        timings,
        level=level,
        layer=meta.get("layer"),
        repeats=repeats,
        seed=seed,
        checkpoint=meta.get("checkpoint"),
        train_config=meta.get("train_config"),
        extra={"features": meta},
    )


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table: CE mean ± std per feature source and method."""
    res = results["results"]
    methods = sorted(
        {m for per in res.values() for m in per},
        key=lambda m: METHODS.index(m) if m in METHODS else 99,
    )
    unit = "videos" if results.get("level") == "video" else "frames"
    layer = f", layer {results['layer']}" if results.get("layer") else ""
    head = f"{'features':<20}" + "".join(f"{m:>20}" for m in methods)
    lines = [
        f"conditional entropy H(class|cluster) in bits, lower is better; {results['n_frames']} {unit}, "
        f"{len(results['classes'])} classes, {results['repeats']} repeats{layer}",
        head,
        "-" * len(head),
    ]
    for source, per in res.items():
        cells = "".join(
            f"{per[m]['ce_mean']:>12.3f} ± {per[m]['ce_std']:<5.3f}" if m in per else f"{'':>20}"
            for m in methods
        )
        lines.append(f"{source:<20}{cells}")
    for key, rule in (("k_eigengap", "largest eigengap"), ("k_silhouette", "best silhouette")):
        chosen = {
            source: next(iter(per.values())).get(key)
            for source, per in res.items()
            if source != "random_assignment" and per
        }
        if any(v is not None for v in chosen.values()):
            k = next(iter(next(iter(res.values())).values()))["k"]
            picks = ", ".join(f"{s} {v}" for s, v in chosen.items() if v is not None)
            lines.append(f"K without labels ({rule}), beside the known K = {k}: {picks}")
    return "\n".join(lines)


def write_results(
    out_dir: str | Path,
    index: FeatureSet,
    results: dict[str, Any],
    assignments: dict[str, np.ndarray],
) -> None:
    """``results.json`` and ``clusters.csv`` in ``out_dir``, each written atomically.

    ``clusters.csv`` has one line per row of ``index`` (a :attr:`Discovery.clustered` or any
    :class:`FeatureSet` aligned with ``assignments``): its ``video``, ``frame`` (-1 for a whole
    video) and ``label``, then one column per ``source/method`` (``/`` written ``_``).
    """
    cols = list(assignments)
    for c in cols:
        if len(assignments[c]) != len(index):
            raise ValueError(
                f"{c} assigns {len(assignments[c])} rows but the index has {len(index)}"
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".results.json.partial"
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out / "results.json")

    tmp = out / ".clusters.csv.partial"
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "frame", "label", *[c.replace("/", "_") for c in cols]])
        for i, (video, frame, label) in enumerate(
            zip(index.video.tolist(), index.frame.tolist(), index.label.tolist(), strict=True)
        ):
            w.writerow([video, frame, label, *[int(assignments[c][i]) for c in cols]])
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
    results, assignments, clustered = discover_collection(
        frames,
        load_checkpoint(ckpt_path),
        repeats=repeats,
        seed=seed,
        frame_stride=frame_stride,
        device=device,
        progress=progress,
    )
    results["collection"] = str(videos)
    write_results(out, clustered, results, assignments)
    return results
