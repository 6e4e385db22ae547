"""``RESULTS/report.html``: one static page built from a results folder alone.

It reads ``results.json``, ``clusters.csv``, ``videos.csv``, what :mod:`tcdn.report.prepare`
kept in ``report/`` (sample frames, the 2-D map) and the training run's ``log.jsonl`` (the run
folder of the checkpoint that ``results.json`` names), draws its pictures into ``report/`` and
writes the page. The page loads nothing from the network and runs no script; every name that
comes from the user's files (videos, labels, paths) is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import logging
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from tcdn.errors import TcdnError
from tcdn.report import figures
from tcdn.report.files import (
    GENERATOR,
    MAP_CSV,
    PAGE,
    REPORT_DIR,
    SAMPLES_CSV,
    claim_report_dir,
    read_csv,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

#: a video gets a timeline strip when it has at least this many rows clustered (an untrimmed
#: recording), or when the collection has at most TIMELINE_FEW_VIDEOS videos
TIMELINE_MIN_ROWS = 200
TIMELINE_FEW_VIDEOS = 5
TIMELINE_MAX = 20
#: the per-video table on the page lists at most this many videos (videos.csv has them all)
VIDEO_ROWS = 50

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.chosen td{font-weight:bold;background:#fff6d8}.facts{color:#555}
.grid{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:136px;font-size:11px}
figure img{width:128px;height:128px;object-fit:contain;background:#eee;display:block}
figure .missing{width:128px;height:128px;background:#eee;display:flex;align-items:center;
justify-content:center;color:#888}figcaption{word-break:break-all}
.swatch{display:inline-block;width:1em;height:1em;vertical-align:middle;margin-right:.4em;
border:1px solid #999}img.figure{max-width:100%}
"""


def esc(value: Any) -> str:
    """``value`` as HTML text: every user-derived string goes through here."""
    return html.escape(str(value), quote=True)


def _num(value: float, digits: int = 3) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _read_results(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "results.json"
    if not path.is_file():
        raise TcdnError(
            f"{results_dir} holds no results.json: give the --out folder of `tcdn discover`"
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TcdnError(f"cannot read {path}: {exc}") from exc
    if not isinstance(results, dict):
        raise TcdnError(f"{path} is not a tcdn results file")
    fmt = str(results.get("format", ""))
    if fmt.startswith("tcdn-transfer"):
        raise TcdnError(
            f"{path} holds the results of `tcdn finetune`, not of a discovery: `tcdn report` "
            "reports a discovery; give the --out folder of `tcdn discover`"
        )
    if "results" not in results or (fmt and not fmt.startswith("tcdn-results")):
        raise TcdnError(f"{path} is not the results of `tcdn discover`")
    return results


def _training_log(results: dict[str, Any]) -> tuple[Path | None, list[dict[str, Any]]]:
    ckpt = results.get("checkpoint")
    if not ckpt:
        return None, []
    path = Path(ckpt).parent / "log.jsonl"
    if not path.is_file():
        return path, []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if isinstance(rec, dict) and "step" in rec:
            records.append(rec)
    return path, records


def _results_table(results: dict[str, Any]) -> str:
    res = results["results"]
    methods = sorted({m for per in res.values() for m in per})
    best = {
        m: min(
            (per[m]["ce_mean"] for s, per in res.items() if m in per and s != "random_assignment"),
            default=None,
        )
        for m in methods
    }
    head = "".join(f"<th>{esc(m)}</th>" for m in methods)
    rows = []
    for source, per in res.items():
        cells = []
        for m in methods:
            if m not in per:
                cells.append("<td></td>")
                continue
            mean, std = per[m]["ce_mean"], per[m]["ce_std"]
            text = f"{_num(mean)} ± {_num(std)}"
            if best[m] is not None and mean == best[m]:
                text = f"<b>{text}</b>"
            cells.append(f'<td class="num">{text}</td>')
        rows.append(f"<tr><td>{esc(source)}</td>{''.join(cells)}</tr>")
    return (
        f"<p>Conditional entropy H(class | cluster) in bits, lower is better; mean ± std over "
        f"{esc(results.get('repeats'))} repeats; {esc(len(results.get('classes', [])))} classes. "
        "<i>random_init</i> is the same network with random weights, <i>raw_pixels</i> the "
        "pixels reduced by PCA, <i>random_assignment</i> a uniformly random cluster per row.</p>"
        f"<table><tr><th>features</th>{head}</tr>{''.join(rows)}</table>"
    )


def _k_table(found: dict[str, Any]) -> str:
    choice = found.get("k_choice")
    if not choice:
        return f"<p>K = {esc(found['k'])}: {esc(found['k_rule'])}.</p>"
    gaps = choice.get("eigengaps") or {}
    rows = []
    for k, score in choice["silhouette"].items():
        cls = ' class="chosen"' if int(k) == int(choice["k"]) else ""
        gap = gaps.get(str(k))
        rows.append(
            f'<tr{cls}><td class="num">{esc(k)}</td><td class="num">{_num(score)}</td>'
            f'<td class="num">{_num(gap, 4) if gap is not None else ""}</td></tr>'
        )
    eig = choice.get("k_eigengap")
    return (
        f"<p>K = {esc(found['k'])}, chosen without labels: the best mean silhouette of K-means "
        "over the candidates below (it scores the partition that is written out; the largest "
        "eigengap of the affinity, a second opinion, "
        + (f"would choose K = {esc(eig)}" if eig else "was not computed")
        + ").</p><table><tr><th>K</th><th>silhouette (higher is better)</th>"
        "<th>eigengap λ<sub>K</sub> − λ<sub>K+1</sub></th></tr>" + "".join(rows) + "</table>"
    )


def _img(src: str, alt: str, cls: str = "figure") -> str:
    return f'<img class="{cls}" src="{esc(quote(src))}" alt="{esc(alt)}">'


def _cluster_sections(
    samples: list[dict[str, str]], clusters: list[dict[str, str]], k: int, labelled: bool
) -> str:
    sizes = Counter(int(r["cluster"]) for r in clusters)
    by_label: dict[int, Counter[str]] = {}
    if labelled:
        for r in clusters:
            by_label.setdefault(int(r["cluster"]), Counter())[r["label"]] += 1
    shown: dict[int, list[dict[str, str]]] = {}
    for s in samples:
        shown.setdefault(int(s["cluster"]), []).append(s)
    total = max(len(clusters), 1)
    parts = []
    for c in range(k):
        head = (
            f'<h3><span class="swatch" style="background:{figures.cluster_colour(c)}"></span>'
            f"cluster {c}: {sizes.get(c, 0)} rows ({100 * sizes.get(c, 0) / total:.1f}%)</h3>"
        )
        if c in by_label:
            top = ", ".join(
                f"{esc(name)} {100 * n / sizes[c]:.0f}%" for name, n in by_label[c].most_common(3)
            )
            head += f'<p class="facts">true classes: {top}</p>'
        cells = []
        for s in shown.get(c, []):
            when = f" · {s['time']} s" if s.get("time") else ""
            frame = "" if s["frame"] == "-1" else f" · frame {esc(s['frame'])}"
            label = f"<br><b>{esc(s['label'])}</b>" if s.get("label") else ""
            picture = (
                _img(f"{REPORT_DIR}/{s['file']}", s["video"], cls="thumb")
                if s.get("file")
                else '<div class="missing">no frame</div>'
            )
            cells.append(
                f"<figure>{picture}<figcaption>{esc(s['video'])}{frame}{esc(when)}{label}"
                "</figcaption></figure>"
            )
        parts.append(head + f'<div class="grid">{"".join(cells)}</div>')
    return "".join(parts)


def _timelines(
    clusters: list[dict[str, str]], report: Path, labelled: bool
) -> tuple[str, list[str]]:
    rows_of: dict[str, list[dict[str, str]]] = {}
    for r in clusters:
        if r["frame"] != "-1":
            rows_of.setdefault(r["video"], []).append(r)
    few = len(rows_of) <= TIMELINE_FEW_VIDEOS
    long = sorted(
        (v for v, rs in rows_of.items() if len(rs) >= TIMELINE_MIN_ROWS or (few and len(rs) >= 2)),
        key=lambda v: -len(rows_of[v]),
    )[:TIMELINE_MAX]
    parts, files = [], []
    for i, video in enumerate(long):
        rs = sorted(rows_of[video], key=lambda r: int(r["frame"]))
        timed = all(r["time"] for r in rs)
        x = np.array([float(r["time"]) if timed else int(r["frame"]) for r in rs])
        name = f"timeline_{i:03d}.png"
        figures.timeline(
            x,
            np.array([int(r["cluster"]) for r in rs]),
            [r["label"] for r in rs] if labelled else None,
            report / name,
            xlabel="seconds" if timed else "frame",
        )
        files.append(name)
        parts.append(
            f"<h3>{esc(video)}</h3>" + _img(f"{REPORT_DIR}/{name}", f"timeline of {video}")
        )
    if not parts:
        return "", files
    note = (
        "The cluster of every clustered frame along each untrimmed video (one with at least "
        f"{TIMELINE_MIN_ROWS} frames clustered, or any video of a collection of at most "
        f"{TIMELINE_FEW_VIDEOS})" + (", above its true segments." if labelled else ".")
    )
    return f"<h2>Timelines</h2><p>{note}</p>" + "".join(parts), files


def _video_table(videos: list[dict[str, str]], labelled: bool) -> str:
    head = "<tr><th>video</th>" + ("<th>label</th>" if labelled else "")
    head += "<th>rows</th><th>dominant cluster</th><th>its share</th><th>clusters</th></tr>"
    rows = []
    for v in videos[:VIDEO_ROWS]:
        colour = figures.cluster_colour(int(v["cluster"]))
        rows.append(
            f"<tr><td>{esc(v['video'])}</td>"
            + (f"<td>{esc(v['label'])}</td>" if labelled else "")
            + f'<td class="num">{esc(v["rows"])}</td>'
            f'<td><span class="swatch" style="background:{colour}"></span>{esc(v["cluster"])}</td>'
            f'<td class="num">{100 * float(v["share"]):.0f}%</td>'
            f'<td class="num">{esc(v["clusters"])}</td></tr>'
        )
    more = (
        f"<p>… and {len(videos) - VIDEO_ROWS} more in videos.csv.</p>"
        if len(videos) > VIDEO_ROWS
        else ""
    )
    return f"<table>{head}{''.join(rows)}</table>{more}"


def _recipe_note(results: dict[str, Any]) -> str:
    """Which training recipe made the trained features: named from the run's training config, as
    this tcdn's recipes are (a name stored by another version may mean another recipe: ``best``
    changed with issue 19's readout rounds)."""
    if not results.get("train_config"):
        return ""
    from tcdn.training.recipes import WHAT_IT_SEES, recipe_name

    try:
        name = recipe_name(results["train_config"])
    except (TcdnError, TypeError, ValueError):  # a config this version cannot read
        name = None
    if name:
        sees = WHAT_IT_SEES.get(name)
        return f"; trained with the recipe <code>{esc(name)}</code>" + (
            f" (the network sees {esc(sees)})" if sees else ""
        )
    return "; trained with a config of its own (no named recipe)"


def _facts(results: dict[str, Any], found: dict[str, Any], unit: str) -> str:
    """The page's first paragraph: what was clustered, with which features, how, and from what."""
    source = results.get("collection") or (results.get("features") or {}).get("path") or "?"
    return (
        f'<p class="facts">{esc(results.get("n_rows"))} {unit} of {esc(results.get("n_videos"))} '
        f"videos from {esc(source)}; features: {esc(found['source'])}"
        + (f" ({esc(results['layer'])})" if results.get("layer") else "")
        + (" at unit length" if results.get("norm") == "l2" else "")
        + f"; clustering: {esc(found['method'])}; K = {esc(found['k'])} ({esc(found['k_rule'])})"
        + (f"; checkpoint {esc(results['checkpoint'])}" if results.get("checkpoint") else "")
        + _recipe_note(results)
        + "</p>"
    )


def build_report(results_dir: str | Path) -> Path:
    """Build ``RESULTS/report.html`` (and its pictures in ``RESULTS/report/``) from the results
    folder of a discovery; returns the page's path. Sections whose data is missing (no labels,
    no training log, no sample frames) say so instead."""
    t0 = time.perf_counter()
    results_dir = Path(results_dir)
    results = _read_results(results_dir)
    found = results.get("discovered")
    if not found:
        raise TcdnError(
            f"{results_dir / 'results.json'} says nothing of the clusters discovered (written by "
            "an older tcdn): run `tcdn discover` again"
        )
    report = claim_report_dir(results_dir)
    for old in report.glob("*.png"):  # the pictures of an earlier report (the folder is tcdn's)
        old.unlink()
    clusters = read_csv(results_dir / "clusters.csv")
    videos = read_csv(results_dir / "videos.csv") if (results_dir / "videos.csv").is_file() else []
    samples = read_csv(report / SAMPLES_CSV) if (report / SAMPLES_CSV).is_file() else []
    points = read_csv(report / MAP_CSV) if (report / MAP_CSV).is_file() else []
    labelled = bool(found.get("scored"))
    unit = "videos" if results.get("level") == "video" else "frames"

    body = ["<h1>tcdn: what was discovered</h1>", _facts(results, found, unit)]
    if labelled:
        body += ["<h2>Scores against the true classes</h2>", _results_table(results)]
    else:
        body.append(
            f'<p class="facts">The clusters are not scored: {esc(found.get("why_unscored"))}.</p>'
        )
    body += ["<h2>Number of clusters</h2>", _k_table(found)]

    body.append("<h2>Training</h2>")
    log_path, records = _training_log(results)
    if records:
        figures.training_curves(records, report / "curves.png")
        body.append(
            _img(f"{REPORT_DIR}/curves.png", "training curves")
            + f'<p class="facts">From {esc(log_path)} ({len(records)} records).</p>'
        )
    else:
        where = f"no readable {esc(log_path)}" if log_path else "no checkpoint named"
        body.append(f'<p class="facts">No training curves: {where}.</p>')

    if points:
        xy = np.array([[float(p["x"]), float(p["y"])] for p in points])
        figures.feature_map(
            xy,
            np.array([int(p["cluster"]) for p in points]),
            [p["label"] for p in points] if labelled else None,
            report / "map.png",
        )
        body += [
            "<h2>Map of the features</h2>",
            f"<p>Barnes-Hut t-SNE of {len(points)} rows"
            + (
                f" (a random sample of {esc(results.get('n_rows'))})"
                if len(points) < int(results.get("n_rows") or 0)
                else ""
            )
            + ", coloured by discovered cluster"
            + (" and by true class" if labelled else "")
            + ".</p>",
            _img(f"{REPORT_DIR}/map.png", "2-D map of the features"),
        ]

    timelines, _ = _timelines(clusters, report, labelled)
    body.append(timelines)
    body += [
        "<h2>Clusters</h2>",
        "<p>A random sample of each cluster's frames (one per video while there are videos to "
        "draw from), with its video, frame and time"
        + (" and its true label" if labelled else "")
        + ".</p>",
        _cluster_sections(samples, clusters, int(found["k"]), labelled),
    ]
    if videos:
        body += ["<h2>Videos</h2>", _video_table(videos, labelled)]

    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'{GENERATOR}<meta name="viewport" content="width=device-width">'
        '<link rel="icon" href="data:,">'
        f"<title>tcdn report: {esc(results_dir.resolve().name)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    path = results_dir / PAGE
    write_bytes_atomic(path, page.encode("utf-8"))
    log.info("wrote %s in %.1f s", path, time.perf_counter() - t0)
    return path
