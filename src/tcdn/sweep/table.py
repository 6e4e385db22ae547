"""A sweep's table: every recipe and baseline on every data set, level and clustering method.

A trained row's numbers are over training seeds: ``ce_mean`` is the mean over the seeds of each
seed's CE (itself the mean over the clustering repeats), ``ce_std`` their sample standard
deviation (``ddof=1``; 0 with one seed), ``ce_values`` the seeds' CEs. A baseline row (random
init, raw pixels, random assignment) is computed once per data set, as ``tcdn discover`` does:
its ``ce_std`` is over the clustering repeats (fresh random networks for ``random_init``).

Written as ``table.csv`` and ``table.json`` (one row per recipe or baseline x data set x level x
method), ``summary.md`` (one table per level and method, with each recipe's mean rank over the
data sets) and ``curves-<dataset>.png`` (the training diagnostics, mean over seeds); when the
recipes differ in one numeric option (a margin sweep: the paper's Figure 4), ``ce-vs-<option>.png``.
With a ``curve:``, the learning curve too: ``table.json``'s ``curve`` rows (one per recipe x data
set x level x method x step count, mean ± std over the curve's seeds), a section of
``summary.md`` and ``learning-curve.png``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.outputs import atomic_writer, write_atomic
from tcdn.sweep.layout import baseline_path, iter_cell_results, iter_curve_results, write_json
from tcdn.sweep.spec import SweepSpec, architecture_key, scoring_title

BASELINES = ("random_init", "raw_pixels", "random_assignment")
#: log.jsonl fields that are not training diagnostics
_NOT_CURVES = {"step", "tuples_per_s"}


def table_rows(spec: SweepSpec, out: Path) -> list[dict[str, Any]]:
    """The table's rows (see the module docstring), for the cells finished so far."""
    rows: list[dict[str, Any]] = []
    for level in spec.scorings:
        per: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for cell, results in iter_cell_results(out, spec, level):
            for method, score in results["results"]["trained"].items():
                per.setdefault((cell.recipe, cell.dataset, method), []).append(score)
        for (recipe, dataset, method), scores in per.items():
            rows.append(_trained_row(recipe, dataset, level, method, scores))
        for dataset in spec.datasets:
            rows += _baseline_rows(spec, out, dataset, level)
    return rows


def _trained_row(
    recipe: str, dataset: str, level: str, method: str, scores: list[dict[str, Any]]
) -> dict[str, Any]:
    ce = np.array([s["ce_mean"] for s in scores])
    row: dict[str, Any] = {
        "source": "trained",
        "recipe": recipe,
        "dataset": dataset,
        "level": level,
        "method": method,
        "seeds": len(ce),
        "ce_mean": float(ce.mean()),
        "ce_std": float(ce.std(ddof=1)) if len(ce) > 1 else 0.0,
        "ce_values": ce.tolist(),
        "ce_std_within_seed": float(np.mean([s["ce_std"] for s in scores])),
    }
    for key in sorted(scores[0]):
        if key.startswith("nmi") and key.endswith("_mean"):
            row[key] = float(np.mean([s[key] for s in scores]))
    return row


def curve_rows(spec: SweepSpec, out: Path) -> list[dict[str, Any]]:
    """The learning curve's rows: one per recipe x data set x level x method x step count, over
    the curve's seeds (the recipe's own step count included: the cell's scores)."""
    rows: list[dict[str, Any]] = []
    for level in spec.scorings:
        per: dict[tuple[str, str, int, str], list[dict[str, Any]]] = {}
        for cell, steps, results in iter_curve_results(out, spec, level):
            for method, score in results["results"]["trained"].items():
                per.setdefault((cell.recipe, cell.dataset, steps, method), []).append(score)
        for (recipe, dataset, steps, method), scores in sorted(per.items()):
            row = _trained_row(recipe, dataset, level, method, scores)
            rows.append({**row, "source": "curve", "steps": steps})
    return rows


def _baseline_rows(spec: SweepSpec, out: Path, dataset: str, level: str) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    keys = {f"{cfg.image_size}px" for cfg in spec.recipes.values()} | {
        f"random_init-{architecture_key(cfg)}" for cfg in spec.recipes.values()
    }
    rows = []
    for key in sorted(keys):
        path = baseline_path(out, dataset, level, key)
        if not path.is_file():
            continue
        results = json.loads(path.read_text())
        for source, per in results["results"].items():
            name = source if len(keys) <= 2 else f"{source} ({key})"
            found[name] = per
    for name, per in found.items():
        for method, score in per.items():
            row = {
                "source": name.split(" ")[0],
                "recipe": name,
                "dataset": dataset,
                "level": level,
                "method": method,
                "seeds": 0,
                "ce_mean": score["ce_mean"],
                "ce_std": score["ce_std"],
                "ce_values": score["ce_values"],
                "ce_std_within_seed": score["ce_std"],
            }
            row.update(
                {k: v for k, v in score.items() if k.startswith("nmi") and k.endswith("_mean")}
            )
            rows.append(row)
    return rows


def mean_ranks(rows: list[dict[str, Any]], level: str, method: str) -> dict[str, float]:
    """Each recipe's rank (1 = lowest CE) among the recipes on each data set, averaged over the
    data sets it was run on; ties share the mean rank."""
    ranks: dict[str, list[float]] = {}
    trained = [
        r
        for r in rows
        if r["source"] == "trained" and r["level"] == level and r["method"] == method
    ]
    for dataset in sorted({r["dataset"] for r in trained}):
        here = [r for r in trained if r["dataset"] == dataset]
        values = np.array([r["ce_mean"] for r in here])
        for r in here:
            below = float((values < r["ce_mean"]).sum())
            equal = float((values == r["ce_mean"]).sum())
            ranks.setdefault(r["recipe"], []).append(below + (equal + 1) / 2)
    return {recipe: float(np.mean(v)) for recipe, v in ranks.items()}


def summary_markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    datasets = list(spec.datasets)
    lines = [
        "# Sweep summary",
        "",
        f"{len(spec.recipes)} recipes x {len(datasets)} data sets x {spec.train_seeds} training "
        f"seeds; conditional entropy H(class | cluster) in bits, lower is better. Trained rows: "
        "mean ± std (ddof=1) over training seeds of each seed's mean over "
        f"{spec.repeats} clustering repeats. Baselines: mean ± std over the repeats.",
    ]
    for level in spec.scorings:
        for method in spec.methods:
            ranks = mean_ranks(rows, level, method)
            lines += ["", f"## {scoring_title(level)}, {method}", ""]
            lines.append("| recipe | " + " | ".join(datasets) + " | mean rank |")
            lines.append("|---" * (len(datasets) + 2) + "|")
            names = list(spec.recipes) + sorted(
                {r["recipe"] for r in rows if r["source"] != "trained"},
                key=lambda n: (BASELINES.index(n.split(" ")[0]), n),
            )
            for name in names:
                cells = []
                for d in datasets:
                    row = _find(rows, name, d, level, method)
                    cells.append(
                        "" if row is None else f"{row['ce_mean']:.3f} ± {row['ce_std']:.3f}"
                    )
                rank = f"{ranks[name]:.2f}" if name in ranks else ""
                lines.append(f"| {name} | " + " | ".join(cells) + f" | {rank} |")
            groups = sorted(
                {k for r in rows for k in r if k.startswith("nmi_") and k != "nmi_mean"}
            )
            for key in groups:
                group = key[len("nmi_") : -len("_mean")]
                lines += [
                    "",
                    f"NMI with the class / with the {group} ({scoring_title(level)}, {method}):",
                    "",
                ]
                lines.append("| recipe | " + " | ".join(datasets) + " |")
                lines.append("|---" * (len(datasets) + 1) + "|")
                for name in names:
                    cells = []
                    for d in datasets:
                        row = _find(rows, name, d, level, method)
                        cells.append(
                            ""
                            if row is None or key not in row
                            else f"{row['nmi_mean']:.3f} / {row[key]:.3f}"
                        )
                    lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """The learning curve as tables: CE at each step count, a row per recipe x data set."""
    if not rows:
        return ""
    steps = sorted({r["steps"] for r in rows})
    lines = [
        "",
        "## Learning curve",
        "",
        f"CE of one run continued to each step count (mean ± std over {spec.curve_seeds} "
        "training seed(s); the first count is the cell's own run).",
    ]
    for level in spec.scorings:
        for method in spec.methods:
            lines += ["", f"### {scoring_title(level)}, {method}", ""]
            lines.append("| recipe | data set | " + " | ".join(f"{n} steps" for n in steps) + " |")
            lines.append("|---" * (len(steps) + 2) + "|")
            for recipe in spec.recipes:
                for dataset in spec.datasets:
                    here = {
                        r["steps"]: r
                        for r in rows
                        if (r["recipe"], r["dataset"], r["level"], r["method"])
                        == (recipe, dataset, level, method)
                    }
                    if len(here) < 2:  # not continued yet: no curve
                        continue
                    cells = [
                        f"{here[n]['ce_mean']:.3f} ± {here[n]['ce_std']:.3f}" if n in here else ""
                        for n in steps
                    ]
                    lines.append(f"| {recipe} | {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_learning_curve(
    spec: SweepSpec, rows: list[dict[str, Any]], curve: list[dict[str, Any]], out: Path
) -> Path | None:
    """``learning-curve.png``: CE against training steps (mean ± std over the curve's seeds), a
    panel per data set and method, a line per recipe; dashed: the random init of the recipe's
    own network and input; dotted (black): raw pixels."""
    if not curve:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted(
        {(r["level"], r["method"]) for r in curve},
        key=lambda p: (spec.scorings.index(p[0]), p[1]),
    )
    steps: dict[tuple[str, str], set[int]] = {}
    for r in curve:
        steps.setdefault((r["recipe"], r["dataset"]), set()).add(r["steps"])
    datasets = [d for d in spec.datasets if any(len(n) > 1 and k[1] == d for k, n in steps.items())]
    if not datasets:
        return None
    fig, axes = plt.subplots(
        len(panels), len(datasets), figsize=(3.6 * len(datasets), 3.0 * len(panels)), squeeze=False
    )
    for i, (level, method) in enumerate(panels):
        for j, dataset in enumerate(datasets):
            ax = axes[i][j]
            for k, (recipe, cfg) in enumerate(spec.recipes.items()):
                pts = sorted(
                    (r["steps"], r["ce_mean"], r["ce_std"])
                    for r in curve
                    if (r["recipe"], r["dataset"], r["level"], r["method"])
                    == (recipe, dataset, level, method)
                )
                if len(pts) < 2:  # not continued yet: no curve
                    continue
                x, y, e = (list(t) for t in zip(*pts, strict=True))
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=f"C{k}", label=recipe)
                base = _random_init_row(rows, cfg, dataset, level, method)
                if base is not None:
                    ax.axhline(base["ce_mean"], color=f"C{k}", linestyle="--", linewidth=0.8)
            raw = next(
                (
                    r
                    for r in rows
                    if (r["source"], r["dataset"], r["level"], r["method"])
                    == ("raw_pixels", dataset, level, method)
                ),
                None,
            )
            if raw is not None:
                ax.axhline(raw["ce_mean"], color="black", linestyle=":", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_xticks(sorted({r["steps"] for r in curve}))
            ax.set_xticks([], minor=True)
            ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_xlabel("training steps")
            ax.set_ylabel("CE (bits)")
            ax.set_title(f"{dataset}: {scoring_title(level)}, {method}", fontsize=9)
    labelled: dict[str, Any] = {}
    for ax in axes.flat:  # every recipe once, whichever panel drew it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labelled.setdefault(label, handle)
    axes[0][0].legend(
        list(labelled.values()),
        list(labelled),
        fontsize=7,
        title="dashed: its random init; dotted: raw pixels",
        title_fontsize=6,
    )
    fig.suptitle("Learning curve: CE against training steps (checkpoints of one run)")
    return _save_figure(fig, out / "learning-curve.png")


def _random_init_row(
    rows: list[dict[str, Any]], cfg: Any, dataset: str, level: str, method: str
) -> dict[str, Any] | None:
    """The random-init baseline of ``cfg``'s own network and input (named as
    :func:`_baseline_rows` names it: with its key when the sweep has several)."""
    for name in ("random_init", f"random_init (random_init-{architecture_key(cfg)})"):
        row = _find(rows, name, dataset, level, method)
        if row is not None:
            return row
    return None


def _find(
    rows: list[dict[str, Any]], name: str, dataset: str, level: str, method: str
) -> dict[str, Any] | None:
    for r in rows:
        if (r["recipe"], r["dataset"], r["level"], r["method"]) == (name, dataset, level, method):
            return r
    return None


def plot_curves(spec: SweepSpec, out: Path) -> list[Path]:
    """``curves-<dataset>.png``: every numeric field of the runs' ``log.jsonl`` against the step,
    one line per recipe (the mean over its seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for dataset in spec.datasets:
        curves: dict[str, dict[str, dict[int, list[float]]]] = {}
        for recipe in spec.recipes:
            for seed in range(spec.train_seeds):
                path = out / "cells" / recipe / dataset / f"seed{seed}" / "run" / "log.jsonl"
                if not path.is_file():
                    continue
                for line in path.read_text().splitlines():
                    rec = json.loads(line)
                    for key, value in rec.items():
                        if key in _NOT_CURVES or not isinstance(value, int | float):
                            continue
                        curves.setdefault(key, {}).setdefault(recipe, {}).setdefault(
                            int(rec["step"]), []
                        ).append(float(value))
        if not curves:
            continue
        keys = sorted(curves)
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            for recipe, by_step in curves[key].items():
                steps = sorted(by_step)
                ax.plot(steps, [np.mean(by_step[s]) for s in steps], label=recipe)
            ax.set_title(key)
            ax.set_xlabel("step")
            if key in ("embedding_spread", "lr"):
                ax.set_yscale("log")
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{dataset}: training diagnostics (mean over seeds)")
        written.append(_save_figure(fig, out / f"curves-{dataset}.png"))
    return written


def swept_option(spec: SweepSpec) -> str | None:
    """The one numeric training option the recipes differ in (e.g. ``margin`` in a margin sweep:
    the paper's Figure 4), or ``None`` when they differ in none, several, or a non-number."""
    if len(spec.recipes) < 2:
        return None
    dicts = [cfg.to_dict() for cfg in spec.recipes.values()]
    varying = [k for k in dicts[0] if len({json.dumps(d[k], sort_keys=True) for d in dicts}) > 1]
    if len(varying) != 1:
        return None
    key = varying[0]
    numeric = all(isinstance(d[key], int | float) and not isinstance(d[key], bool) for d in dicts)
    return key if numeric else None


def plot_option_sweep(spec: SweepSpec, rows: list[dict[str, Any]], out: Path) -> Path | None:
    """``ce-vs-<option>.png`` when the recipes differ in one numeric option (:func:`swept_option`):
    CE (mean ± std over training seeds) against its value, a panel per level and method, a line
    per data set, each data set's raw-pixel and random-init baselines dashed."""
    key = swept_option(spec)
    if key is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    value = {name: float(getattr(cfg, key)) for name, cfg in spec.recipes.items()}
    panels = sorted({(r["level"], r["method"]) for r in rows if r["source"] == "trained"})
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.4), squeeze=False)
    for ax, (level, method) in zip(axes[0], panels, strict=True):
        for i, dataset in enumerate(spec.datasets):
            colour = f"C{i}"
            pts = sorted(
                (value[r["recipe"]], r["ce_mean"], r["ce_std"])
                for r in rows
                if r["source"] == "trained"
                and (r["level"], r["method"], r["dataset"]) == (level, method, dataset)
            )
            if not pts:
                continue
            x, y, e = (list(t) for t in zip(*pts, strict=True))
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, color=colour, label=dataset)
            for r in rows:
                if (r["source"], r["level"], r["method"], r["dataset"]) in {
                    (b, level, method, dataset) for b in ("raw_pixels", "random_init")
                }:
                    style = ":" if r["source"] == "raw_pixels" else "--"
                    ax.axhline(r["ce_mean"], color=colour, linestyle=style, linewidth=0.8)
        ax.set_xlabel(key)
        ax.set_ylabel("conditional entropy (bits)")
        ax.set_title(f"{scoring_title(level)}, {method}")
    axes[0][0].legend(
        fontsize=7, title="trained (dashed: random init, dotted: raw pixels)", title_fontsize=6
    )
    fig.suptitle(f"CE against {key} (mean ± std over training seeds)")
    return _save_figure(fig, out / f"ce-vs-{key}.png")


def _save_figure(fig: Any, path: Path) -> Path:
    """Lay ``fig`` out, write it as a PNG to ``path`` atomically
    (:func:`~tcdn.outputs.atomic_writer`) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_writer(path) as fh:
            fig.savefig(fh, format="png", dpi=90)
    finally:
        plt.close(fig)
    return path


def write_outputs(spec: SweepSpec, out: Path) -> list[dict[str, Any]]:
    """``table.csv``, ``table.json``, ``summary.md`` and the curves; returns the rows."""
    rows = table_rows(spec, out)
    curve = curve_rows(spec, out)
    write_json(out / "table.json", {"format": "tcdn-sweep-1", "rows": rows, "curve": curve})
    columns = [
        "source",
        "recipe",
        "dataset",
        "level",
        "method",
        "seeds",
        "ce_mean",
        "ce_std",
        "ce_std_within_seed",
    ]
    extra = sorted({k for r in rows for k in r if k.startswith("nmi")})
    with atomic_writer(out / "table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*columns, *extra, "ce_values"])
        for r in rows:
            w.writerow(
                [r.get(c, "") for c in columns + extra]
                + [" ".join(f"{v:.4f}" for v in r["ce_values"])]
            )
    write_atomic(out / "summary.md", summary_markdown(spec, rows) + curve_markdown(spec, curve))
    plot_curves(spec, out)
    plot_option_sweep(spec, rows, out)
    plot_learning_curve(spec, rows, curve, out)
    return rows
