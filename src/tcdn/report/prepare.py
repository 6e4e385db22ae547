"""What a report needs beside ``results.json`` and ``clusters.csv``, kept in ``RESULTS/report/``
when the features and frames are at hand (``tcdn discover``), so that ``tcdn report RESULTS``
later works from the folder alone:

- ``frames/`` and ``samples.csv``: for each cluster of the answer, a few of its frames (spread
  over as many videos as it has), as PNG thumbnails, with each one's video, frame, time and label;
- ``map.csv``: a 2-D map of the features (Barnes-Hut t-SNE of their first 50 principal
  components, on a seeded sample of at most ``map_points`` rows) with each point's cluster and label.

The folder holds a marker file, ``.tcdn-report``: tcdn only writes into (and only deletes from)
a ``report/`` folder that holds it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data.frameset import FrameSet
from tcdn.discovery.pipeline import Discovery
from tcdn.discovery.results import primary_assignment
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.outputs import atomic_writer, sub_folder
from tcdn.report.files import (
    FRAMES_DIR,
    MAP_CSV,
    SAMPLES_CSV,
    claim_report_dir,
    write_csv,
)

log = logging.getLogger(__name__)

#: thumbnails are at most this many pixels on a side
THUMB = 128


def _seconds(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else ""


def sample_rows(
    clusters: np.ndarray, video: np.ndarray, per_cluster: int, seed: int
) -> dict[int, list[int]]:
    """For each cluster, up to ``per_cluster`` of its rows drawn at random (seeded), one per
    video while there are videos left to draw from."""
    rng = np.random.default_rng(seed)
    out: dict[int, list[int]] = {}
    for c in np.unique(clusters).tolist():
        rows = rng.permutation(np.flatnonzero(clusters == c))
        _, first = np.unique(video[rows], return_index=True)
        spread = rows[np.sort(first)]  # one row per video, in the drawn order
        rest = rows[~np.isin(rows, spread)]
        out[int(c)] = np.concatenate([spread, rest])[:per_cluster].tolist()
    return out


def _thumbnail(frame: np.ndarray) -> Any:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame))
    if max(img.size) > THUMB:
        img.thumbnail((THUMB, THUMB), Image.Resampling.BILINEAR)
    return img


def tsne_map(features: np.ndarray, *, max_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, xy)``: a seeded sample of at most ``max_points`` rows and their 2-D Barnes-Hut
    t-SNE coordinates (scikit-learn; perplexity 30 or less for few rows; PCA to 50 dimensions
    first, PCA initialisation). Fewer than 5 rows: no map."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from tcdn.discovery.evaluate import no_information

    n = len(features)
    # no map for features that carry no information (every row the same): scikit-learn's
    # Barnes-Hut t-SNE crashes the process on them
    if n < 5 or features.shape[1] == 0 or no_information(features):
        return np.zeros(0, np.int64), np.zeros((0, 2))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    x = features[rows].astype(np.float32)
    dims = min(50, x.shape[1], len(x))
    if x.shape[1] > dims:
        x = PCA(dims, random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=float(min(30.0, (len(x) - 1) / 3)),
        init="pca",
        learning_rate="auto",
        method="barnes_hut",
        random_state=seed,
    )
    return rows, tsne.fit_transform(x)


def write_report_data(
    results_dir: str | Path,
    discovery: Discovery,
    frames: FrameSet | None = None,
    *,
    per_cluster: int = 8,
    map_points: int = 3000,
    seed: int = 0,
) -> Path:
    """Keep in ``RESULTS/report/`` what a report needs beyond the results files (see the module
    text): sample frames of every cluster (when ``frames``, the collection the features came
    from, is given) and the 2-D map. Returns the report folder."""
    results, assignments, clustered = discovery
    answer = primary_assignment(results, assignments)
    if answer is None:
        raise TcdnError("the discovery names no answer (results['discovered']): nothing to report")
    report = claim_report_dir(Path(results_dir))
    t0 = time.perf_counter()
    _write_samples(report, clustered, answer, frames, per_cluster, seed)
    rows, xy = tsne_map(clustered.features, max_points=map_points, seed=seed)
    write_csv(
        report / MAP_CSV,
        ["x", "y", "cluster", "label", "video"],
        [
            [f"{x:.4f}", f"{y:.4f}", int(answer[r]), clustered.label[r], clustered.video[r]]
            for r, (x, y) in zip(rows.tolist(), xy.tolist(), strict=True)
        ],
    )
    log.info("report data (samples, %d-point map) in %.1f s", len(rows), time.perf_counter() - t0)
    return report


def _write_samples(
    report: Path,
    clustered: FeatureSet,
    answer: np.ndarray,
    frames: FrameSet | None,
    per_cluster: int,
    seed: int,
) -> None:
    folder = sub_folder(report, FRAMES_DIR)
    for old in folder.glob("*.png"):  # this folder is tcdn's (its parent holds the marker)
        old.unlink()
    picks = sample_rows(answer, clustered.video, per_cluster, seed)
    order = [r for c in sorted(picks) for r in picks[c]]
    where = (
        frames.locate(clustered.video[order], clustered.frame[order])
        if frames is not None
        else np.full(len(order), -1)
    )
    found = where >= 0
    images: np.ndarray = (
        np.asarray(frames.frames[where[found]])
        if frames is not None and found.any()
        else np.zeros((0, 1, 1, 3), np.uint8)
    )
    image_of = dict(zip(np.flatnonzero(found).tolist(), range(len(images)), strict=True))
    rows = []
    for i, r in enumerate(order):
        c = int(answer[r])
        name = ""
        if i in image_of:
            name = f"c{c:03d}_{i:05d}.png"
            with atomic_writer(folder / name, "wb") as fh:  # never through a link
                _thumbnail(images[image_of[i]]).save(fh, format="PNG")
        rows.append(
            [
                f"{FRAMES_DIR}/{name}" if name else "",
                c,
                clustered.video[r],
                int(clustered.frame[r]),
                _seconds(float(clustered.seconds[r])),
                clustered.label[r],
            ]
        )
    if frames is None:
        log.info(
            "no frames at hand: the report's montages will name the frames without showing them"
        )
    elif not found.all():
        log.warning(
            "%d sampled frame(s) are not in the collection given: shown by name only",
            int((~found).sum()),
        )
    write_csv(report / SAMPLES_CSV, ["file", "cluster", "video", "frame", "time", "label"], rows)


def write_report(
    results_dir: str | Path,
    discovery: Discovery,
    frames: FrameSet | None = None,
    *,
    seed: int = 0,
) -> Path:
    """The whole report of a discovery whose results are in ``results_dir``
    (:func:`~tcdn.discovery.results.write_results`): its data (:func:`write_report_data`), then
    the page (:func:`tcdn.report.page.build_report`). Returns the page's path."""
    from tcdn.report.page import build_report

    write_report_data(results_dir, discovery, frames, seed=seed)
    return build_report(results_dir)
