"""The results of a discovery: the ``results.json`` record, the table, the cluster CSV."""

from __future__ import annotations

import csv
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn import __version__
from tcdn.discovery.config import METHODS, DiscoverConfig
from tcdn.discovery.evaluate import Score
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet, group_means
from tcdn.outputs import atomic_writer, check_output_files, os_error_hint, write_atomic
from tcdn.training.recipes import recipe_name

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
    norm: str | None = None,
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
        # the networks' features divided by their length before clustering ("l2"), or not
        "norm": norm or "none",
        "repeats": config.repeats,
        "random_inits": config.random_init_repeats,
        "seed": config.seed,
        "n_videos": len(clustered.videos),
        "n_rows": len(clustered),
        "n_frames": n_frames,
        "classes": clustered.class_names,
        "checkpoint": checkpoint,
        "train_config": train_config,
        # the named recipe (tcdn.training.recipes) that made the trained features, if any
        "recipe": recipe_name(train_config) if train_config else None,
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


def format_discovered(results: dict[str, Any]) -> str:
    """What was discovered, in a few lines: the clusters' source, method, K and how it was
    chosen (with every candidate's score when chosen without labels), and their sizes."""
    found = results.get("discovered")
    if not found:
        return ""
    unit = "videos" if results.get("level") == "video" else "frames"
    lines = [
        f"discovered {found['k']} clusters of {results['n_rows']} {unit} ({results['n_videos']} "
        f"videos) with {found['source']} features and {found['method']}; K: {found['k_rule']}"
    ]
    choice = found.get("k_choice")
    if choice:
        cands = ", ".join(f"{k}: {v:.3f}" for k, v in choice["silhouette"].items())
        lines.append(f"K-means silhouette per candidate K (higher is better): {cands}")
        if choice.get("k_eigengap"):
            lines.append(f"the largest eigengap would choose K = {choice['k_eigengap']}")
    sizes = found.get("sizes") or []
    lines.append("cluster sizes: " + ", ".join(f"{c}: {n}" for c, n in enumerate(sizes)))
    if not found.get("scored"):
        lines.append(f"not scored: {found.get('why_unscored')}")
    return "\n".join(lines)


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table: CE mean ± std per feature source and method, then
    what was discovered (:func:`format_discovered`); only the latter when nothing was scored."""
    res = results["results"]
    if not res:
        return format_discovered(results)
    methods = sorted(
        {m for per in res.values() for m in per},
        key=lambda m: METHODS.index(m) if m in METHODS else 99,
    )
    unit = "videos" if results.get("level") == "video" else "frames"
    layer = f", layer {results['layer']}" if results.get("layer") else ""
    if results.get("norm") == "l2":
        layer += " (unit length)"
    seconds = results.get("seconds") or {}

    def runs_of(per: dict[str, Any]) -> Any:
        first: dict[str, Any] = next(iter(per.values()), {})
        return first.get("repeats", results["repeats"])

    head = f"{'features':<20}" + "".join(f"{m:>20}" for m in methods) + f"{'seconds':>10}"
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
        runs = runs_of(per)
        name = source if runs == results["repeats"] else f"{source} ({runs}x)"
        took = f"{seconds[source]:>10.1f}" if source in seconds else ""
        lines.append(f"{name:<20}{cells}{took}")
    if any(runs_of(per) != results["repeats"] for per in res.values()):
        lines.append(
            "(Nx): N repeats, e.g. random_init: N freshly initialised networks (--random-inits)"
        )
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
    found = format_discovered(results)
    return "\n".join(lines + ([found] if found else []))


def centre_distances(
    features: np.ndarray, clusters: np.ndarray, *, chunk: int = 16384
) -> np.ndarray:
    """``(N,)`` Euclidean distance of each row to the centre (the mean) of its cluster, in the
    space of ``features``; NaN when ``features`` has no columns."""
    n = len(clusters)
    if features.ndim != 2 or features.shape[1] == 0 or len(features) != n:
        return np.full(n, np.nan)
    # Two passes, ``chunk`` rows at a time in float64: a million float16 rows of 4,096 dims are
    # never copied whole (as float64 they would take 32 GiB).
    clusters = np.asarray(clusters, dtype=np.int64)
    k = int(clusters.max()) + 1 if n else 0
    centres, _ = group_means(features, clusters, k, chunk=chunk)
    out = np.empty(n)
    for s in range(0, n, chunk):
        x = np.asarray(features[s : s + chunk], dtype=np.float64)
        out[s : s + chunk] = np.linalg.norm(x - centres[clusters[s : s + chunk]], axis=1)
    return out


def video_summary(index: FeatureSet, clusters: np.ndarray) -> list[dict[str, Any]]:
    """One record per video, in the order of its first row: ``video``, ``label``, ``rows``, its
    dominant ``cluster``, that cluster's ``share`` of its rows and the number of ``clusters``
    its rows fall in."""
    out = []
    for name in index.videos:
        mask = index.video == name
        counts = np.bincount(clusters[mask])
        top = int(np.argmax(counts))
        out.append(
            {
                "video": name,
                "label": str(index.label[mask][0]),
                "rows": int(mask.sum()),
                "cluster": top,
                "share": float(counts[top] / mask.sum()),
                "clusters": int((counts > 0).sum()),
            }
        )
    return out


def primary_assignment(
    results: dict[str, Any], assignments: dict[str, np.ndarray]
) -> np.ndarray | None:
    """The clusters that are a discovery's answer (``results["discovered"]``), if it says."""
    found = results.get("discovered")
    if not found:
        return None
    return assignments.get(f"{found['source']}/{found['method']}")


def _atomic_csv(path: Path, header: list[str], rows: Any) -> None:
    with atomic_writer(path, "w", ours=is_result_file, newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _seconds(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3f}"


def write_results(
    out_dir: str | Path,
    index: FeatureSet,
    results: dict[str, Any],
    assignments: dict[str, np.ndarray],
) -> None:
    """``results.json``, ``clusters.csv`` and ``videos.csv`` in ``out_dir``, each written atomically.

    ``clusters.csv`` has one line per row of ``index`` (a :attr:`Discovery.clustered` or any
    :class:`FeatureSet` aligned with ``assignments``): its ``video``, ``frame`` (the index in the
    source video; -1 for a whole video), ``time`` (seconds from the video's start; empty when
    unknown) and ``label`` (empty when unlabelled); then, when ``results["discovered"]`` names
    the answer, its ``cluster`` and the row's ``distance`` to that cluster's centre (the mean of
    its rows' features); then one column per ``source/method`` (``/`` written ``_``), the first
    repeat of each. ``videos.csv`` summarises the answer per video (:func:`video_summary`).

    Checked first, for callers from Python as for ``tcdn discover``: each of those files that is
    there already must be one tcdn wrote (:func:`is_result_file`), and none may be a symbolic
    link (:func:`tcdn.outputs.check_output_files`); otherwise :class:`TcdnError`, nothing written.
    """
    cols = list(assignments)
    for c in cols:
        if len(assignments[c]) != len(index):
            raise ValueError(
                f"{c} assigns {len(assignments[c])} rows but the index has {len(index)}"
            )
    out = check_output_files(out_dir, dict.fromkeys(RESULT_FILES, is_result_file), "out_dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TcdnError(f"cannot create {out}: {os_error_hint(exc)}") from None
    write_atomic(out / "results.json", json.dumps(results, indent=2), ours=is_result_file)

    answer = primary_assignment(results, assignments)
    extra: list[str] = []
    per_row: list[list[Any]] = [[] for _ in range(len(index))]
    if answer is not None:
        extra = ["cluster", "distance"]
        dist = centre_distances(index.features, answer)
        per_row = [
            [int(c), "" if not np.isfinite(d) else f"{d:.4f}"]
            for c, d in zip(answer.tolist(), dist.tolist(), strict=True)
        ]
    header = ["video", "frame", "time", "label", *extra, *[c.replace("/", "_") for c in cols]]
    body = (
        [video, frame, _seconds(t), label, *per_row[i], *[int(assignments[c][i]) for c in cols]]
        for i, (video, frame, t, label) in enumerate(
            zip(
                index.video.tolist(),
                index.frame.tolist(),
                index.seconds.tolist(),
                index.label.tolist(),
                strict=True,
            )
        )
    )
    _atomic_csv(out / "clusters.csv", header, body)
    if answer is None:  # no answer, no summary: an earlier one (tcdn's) would describe others
        if is_result_file(out / "videos.csv"):
            (out / "videos.csv").unlink()
    else:
        summary = video_summary(index, answer)
        _atomic_csv(
            out / "videos.csv",
            ["video", "label", "rows", "cluster", "share", "clusters"],
            (
                [
                    r["video"],
                    r["label"],
                    r["rows"],
                    r["cluster"],
                    f"{r['share']:.3f}",
                    r["clusters"],
                ]
                for r in summary
            ),
        )


#: the files :func:`write_results` writes
RESULT_FILES = ("results.json", "clusters.csv", "videos.csv")

#: how the CSV files :func:`write_results` writes begin
_CSV_HEADERS = {"clusters.csv": "video,frame,", "videos.csv": "video,label,rows,"}


def is_result_file(path: Path) -> bool:
    """Whether ``path`` is one of the :data:`RESULT_FILES` as :func:`write_results` writes it
    (``results.json`` in tcdn's format, a CSV with its header), so that writing it again loses
    nothing of the user's."""
    if path.name == "results.json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and str(data.get("format", "")).startswith("tcdn-results")
    header = _CSV_HEADERS.get(path.name)
    if header is None:
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            return fh.readline().startswith(header)
    except (OSError, UnicodeDecodeError):
        return False
