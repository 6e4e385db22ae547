"""The results of a discovery: the ``results.json`` record, the table, the cluster CSV."""

from __future__ import annotations

import csv
import json
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn import __version__
from tcdn.discovery.config import METHODS, DiscoverConfig
from tcdn.discovery.evaluate import Score
from tcdn.features.featureset import FeatureSet

RESULTS_FORMAT = "tcdn-results-2"


def build_results(
    clustered: FeatureSet,
    scores: dict[str, dict[str, Score]],
    timings: dict[str, float],
    config: DiscoverConfig,
    *,
    n_frames: int,
    layer: str | None,
    checkpoint: str | None,
    train_config: dict[str, Any] | None,
    features: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``results.json`` record of scored sources: the scores, and the facts needed to
    reproduce them. ``n_rows`` counts the rows clustered (videos at level ``video``),
    ``n_frames`` the frames (or feature rows) they were made of."""
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "tcdn_version": __version__,
        "metric": "conditional entropy H(class | cluster), bits, lower is better",
        "level": config.level,
        "groups": dict(config.groups),
        "layer": layer,
        "repeats": config.repeats,
        "seed": config.seed,
        "n_videos": len(clustered.videos),
        "n_rows": len(clustered),
        "n_frames": n_frames,
        "classes": clustered.class_names,
        "checkpoint": checkpoint,
        "train_config": train_config,
    }
    if features is not None:
        results["features"] = features
    results.update(
        machine={
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        seconds=timings,
        results={s: {m: sc.to_dict() for m, sc in per.items()} for s, per in scores.items()},
    )
    return results


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
        f"conditional entropy H(class|cluster) in bits, lower is better; {results['n_rows']} {unit}, "
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
    for group in results.get("groups") or {}:
        pairs = ", ".join(
            f"{source}/{m} {score['nmi_mean']:.3f} vs {score[f'nmi_{group}_mean']:.3f}"
            for source, per in res.items()
            for m, score in per.items()
            if f"nmi_{group}_mean" in score and source != "random_assignment"
        )
        lines.append(f"NMI with the class vs with the {group}: {pairs}")
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
