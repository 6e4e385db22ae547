"""The report's pictures, drawn with matplotlib (Agg, no display) into PNG files: training
curves, the 2-D feature map, and timeline strips of untrimmed videos. One colour per cluster
everywhere (:func:`cluster_colour`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.report.files import write_bytes_atomic


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _palette(names: tuple[str, ...]) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return [str(to_hex(c)) for name in names for c in colormaps[name].colors]  # type: ignore[attr-defined]


def cluster_colour(c: int) -> str:
    """The ``#rrggbb`` colour of cluster ``c``: tab10, then Dark2, Set1 and tab20b, cycling."""
    palette = _palette(("tab10", "Dark2", "Set1", "tab20b"))
    return palette[int(c) % len(palette)]


def class_colour(i: int) -> str:
    """The colour of true class ``i`` (other hues than the clusters': Set2, Pastel1, Set3)."""
    palette = _palette(("Set2", "Pastel1", "Set3", "tab20c"))
    return palette[int(i) % len(palette)]


def _save(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    write_bytes_atomic(path, buf.getvalue())


def training_curves(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss, learning rate and embedding spread against the step, from ``log.jsonl`` records."""
    plt = _pyplot()
    keys = [k for k in ("loss", "embedding_spread", "lr") if any(k in r for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in records if key in r and "step" in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2, color="#1f77b4")
        ax.set_xlabel("step")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
        if key == "lr" and pts and min(p[1] for p in pts) > 0:
            ax.set_yscale("log")
    fig.tight_layout()
    _save(fig, path)


def feature_map(
    xy: np.ndarray, clusters: np.ndarray, labels: Sequence[str] | None, path: Path
) -> None:
    """The 2-D map coloured by cluster and, when ``labels`` are given, beside it by true class."""
    plt = _pyplot()
    panels = 2 if labels is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5.0), squeeze=False)
    size = float(np.clip(3000 / max(len(xy), 1), 2, 30))
    ax = axes[0][0]
    ax.scatter(xy[:, 0], xy[:, 1], s=size, c=[cluster_colour(c) for c in clusters], lw=0)
    ax.set_title("by discovered cluster")
    if labels is not None:
        names = sorted(set(labels))
        colour = {n: class_colour(i) for i, n in enumerate(names)}
        ax2 = axes[0][1]
        for n in names:
            m = np.array([lab == n for lab in labels])
            ax2.scatter(xy[m, 0], xy[m, 1], s=size, c=colour[n], lw=0, label=n)
        ax2.set_title("by true class")
        if len(names) <= 20:
            ax2.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
    for a in axes[0]:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    _save(fig, path)


def timeline(
    x: np.ndarray,
    clusters: np.ndarray,
    labels: Sequence[str] | None,
    path: Path,
    *,
    xlabel: str,
) -> None:
    """A strip of the cluster of every frame along one video (``x``: times or frame indices,
    ascending), above a strip of the true segments when ``labels`` are given."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    rows = 2 if labels is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 0.55 * rows + 0.6), squeeze=False)
    ends = np.append(x, x[-1] + (x[-1] - x[-2] if len(x) > 1 else 1))
    k = int(clusters.max()) + 1
    axes[0][0].pcolormesh(
        ends,
        [0, 1],
        clusters[None, :],
        cmap=ListedColormap([cluster_colour(c) for c in range(k)]),
        vmin=-0.5,
        vmax=k - 0.5,
    )
    axes[0][0].set_ylabel("cluster", rotation=0, ha="right", va="center", fontsize=8)
    if labels is not None:
        names = sorted(set(labels))
        codes = np.array([names.index(lab) for lab in labels])
        axes[1][0].pcolormesh(
            ends,
            [0, 1],
            codes[None, :],
            cmap=ListedColormap([class_colour(i) for i in range(len(names))]),
            vmin=-0.5,
            vmax=len(names) - 0.5,
        )
        axes[1][0].set_ylabel("true", rotation=0, ha="right", va="center", fontsize=8)
    for row in axes:
        row[0].set_yticks([])
    for row in axes[:-1]:
        row[0].set_xticks([])
    axes[-1][0].set_xlabel(xlabel)
    fig.tight_layout()
    _save(fig, path)
