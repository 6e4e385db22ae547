"""The results of a transfer experiment: the ``results.json`` record and the table.

The record follows discovery's (:mod:`tcdn.discovery.results`): ``results[source][method]``
with ``<score>_mean``, ``<score>_std`` and ``<score>_values`` over the repeats, beside the facts
needed to reproduce them. Here the score is the test accuracy in %, the sources are the inits
(``trained``, ``random_init``, and ``raw_pixels`` for the frozen-feature protocols) and the
methods are the protocols. ``differences[protocol]`` pairs the learned and the random init
repeat by repeat (the two saw the same images).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tcdn import __version__
from tcdn.errors import TcdnError
from tcdn.transfer.classifier import TransferReport
from tcdn.transfer.config import PROTOCOLS, SOURCES, FinetuneConfig
from tcdn.transfer.images import LabelledData

RESULTS_FORMAT = "tcdn-transfer-results-1"


def _stats(name: str, values: list[float]) -> dict[str, Any]:
    return {
        f"{name}_mean": float(np.mean(values)),
        f"{name}_std": float(np.std(values)),
        f"{name}_values": [float(v) for v in values],
    }


def build_results(
    data: LabelledData,
    config: FinetuneConfig,
    values: dict[str, dict[str, list[float]]],
    *,
    best: dict[str, list[float]],
    best_epochs: dict[str, list[int]],
    sizes: list[tuple[int, int]],
    splits: list[dict[str, Any]],
    report: TransferReport,
    layer: str,
    checkpoint: dict[str, Any],
    seconds: dict[str, float],
    size: int,
) -> dict[str, Any]:
    """The ``results.json`` record (see the module docstring)."""
    n_train = [a for a, _ in sizes]
    n_test = [b for _, b in sizes]
    results: dict[str, dict[str, Any]] = {}
    for source in SOURCES:
        for protocol in PROTOCOLS:
            vals = values.get(source, {}).get(protocol)
            if not vals:
                continue
            entry = {
                **_stats("accuracy", vals),
                "repeats": len(vals),
                "n_train_mean": float(np.mean(n_train)),
                "n_test_mean": float(np.mean(n_test)),
            }
            if protocol == "finetune":
                entry.update(_stats("best_accuracy", best[source]))
                entry["best_epoch_values"] = [int(e) for e in best_epochs[source]]
            elif protocol == "linear":
                entry["layer"] = layer if source != "raw_pixels" else None
                entry["c"] = config.linear_c
            else:
                entry["layer"] = layer if source != "raw_pixels" else None
                entry["k"] = config.knn_k
            results.setdefault(source, {})[protocol] = entry
    differences = {}
    for protocol in PROTOCOLS:
        a = values.get("trained", {}).get(protocol)
        b = values.get("random_init", {}).get(protocol)
        if a and b:
            diff = [x - y for x, y in zip(a, b, strict=True)]
            differences[protocol] = {
                **_stats("trained_minus_random_init", diff),
                "trained_wins": int(sum(d > 0 for d in diff)),
                "ties": int(sum(d == 0 for d in diff)),
                "repeats": len(diff),
            }
    counts = data.train.class_counts()
    return {
        "format": RESULTS_FORMAT,
        "tcdn_version": __version__,
        "metric": "accuracy (%) on the test images, higher is better",
        "dataset": data.dataset,
        "data": data.source,
        "image_size": size,
        "classes": list(data.classes),
        "n_classes": len(data.classes),
        "chance_accuracy": 100.0 / len(data.classes),
        "training_split_class_counts": [int(c) for c in counts],
        "official_test_split": data.test is not None,
        "shots": config.shots,
        "test_size": config.test_size,
        "repeats": config.repeats,
        "seed": config.seed,
        "n_train_values": n_train,
        "n_test_values": n_test,
        "layer": layer,
        "checkpoint": checkpoint.get("path"),
        "checkpoint_step": checkpoint.get("step"),
        "train_config": checkpoint.get("config"),
        "transfer_config": config.to_dict(),
        "augment": config.resolved_augment,
        "transfer": report.to_dict(),
        "splits": splits,
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "seconds": seconds,
        "results": results,
        "differences": differences,
    }


def format_table(results: dict[str, Any]) -> str:
    """The results as a plain-text table: accuracy mean ± std per source and protocol, and the
    paired difference of the learned and the random init."""
    res = results["results"]
    protocols = [p for p in PROTOCOLS if any(p in per for per in res.values())]
    shots = f"{results['shots']} per class" if results.get("shots") else "the whole training split"
    n_train = np.mean(results["n_train_values"])
    n_test = np.mean(results["n_test_values"])
    width = 22
    head = f"{'init':<24}" + "".join(f"{p:>{width}}" for p in protocols)
    lines = [
        f"accuracy (%) on {n_test:,.0f} test images, higher is better; {results['dataset']}, "
        f"{results['n_classes']} classes (chance {results['chance_accuracy']:.1f}), training on "
        f"{shots} ({n_train:,.0f} images), {results['repeats']} repeats, layer "
        f"{results['layer']} for linear/knn",
        head,
        "-" * len(head),
    ]
    for source, per in res.items():
        cells = "".join(
            f"{per[p]['accuracy_mean']:>{width - 8}.2f} ± {per[p]['accuracy_std']:<5.2f}"
            if p in per
            else f"{'':>{width}}"
            for p in protocols
        )
        lines.append(f"{source:<24}{cells}")
    diffs = results.get("differences", {})
    if diffs:
        cells = "".join(
            f"{diffs[p]['trained_minus_random_init_mean']:>+{width - 8}.2f} ± "
            f"{diffs[p]['trained_minus_random_init_std']:<5.2f}"
            if p in diffs
            else f"{'':>{width}}"
            for p in protocols
        )
        lines.append(f"{'trained - random_init':<24}{cells}")
        wins = ", ".join(
            f"{p} {d['trained_wins']}/{d['repeats']}" for p, d in diffs.items() if p in protocols
        )
        lines.append(f"repeats where the learned init beat the random init: {wins}")
    return "\n".join(lines)


def is_transfer_results(path: Path) -> bool:
    """Whether ``path`` is a ``results.json`` as :func:`write_results` writes it (its
    ``format`` is :data:`RESULTS_FORMAT`): the only one a fine-tuning may replace."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == RESULTS_FORMAT


def check_results_dir(out_dir: str | Path, option: str = "--out") -> Path:
    """Check, before any work, that ``out_dir/results.json`` can be written: absent, or a
    fine-tuning's results (never a discovery's or a user's file), and not a symbolic link."""
    from tcdn.outputs import check_output_files, guard_file

    folder = check_output_files(out_dir, {}, option)
    path = guard_file(folder / "results.json", what=f"{option} {folder}: ")
    if path.exists() and not is_transfer_results(path):
        whose = "a discovery's" if _is_discovery(path) else "a file tcdn did not write"
        raise TcdnError(
            f"{option} {folder} holds a results.json that is {whose}, not a fine-tuning's: tcdn "
            "does not replace it; choose another folder for the fine-tuning"
        )
    return check_output_files(out_dir, {"results.json": is_transfer_results}, option)


def _is_discovery(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("tcdn-results")


def write_results(out_dir: str | Path, results: dict[str, Any]) -> Path:
    """``out_dir/results.json``, written atomically; a ``results.json`` there that is not a
    fine-tuning's (:func:`is_transfer_results`) is refused with a :class:`TcdnError`."""
    from tcdn.outputs import write_atomic

    out = check_results_dir(out_dir, "out_dir")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    write_atomic(path, json.dumps(results, indent=2), ours=is_transfer_results)
    return path
