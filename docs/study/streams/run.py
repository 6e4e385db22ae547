"""Diagnostic: the default's (two_stream_t05) fused fc6 = [appearance unit, motion unit]; score
each half alone and the fusion, K-means and spectral, as the sweep scores (10 seeds).

    python docs/study/streams/run.py SWEEP_FOLDER SET OUT.jsonl [RECIPE]

SWEEP_FOLDER: a readout sweep folder with the RECIPE cells (training seeds 0-2); RECIPE is
`two_stream_t05` unless given (the cross-stream round reads `two_stream_cross` the same way).
`weights.py` reads the same features through :func:`fused_features` and scores them with
:func:`score`."""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.data import open_collection
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.evaluate import Score, score_clusterings
from tcdn.features.extract import FrameFeaturizer
from tcdn.features.featureset import FeatureSet
from tcdn.training import load_checkpoint


def fused_features(
    sweep: Path, name: str, recipe: str = "two_stream_t05"
) -> Iterator[tuple[int, np.ndarray, FeatureSet, dict]]:
    """For each training seed of `recipe` on `name`: the seed, its fused fc6 features,
    their rows (video, label) and the set's groups of each row (e.g. the performer)."""
    spec = json.loads((sweep / "spec.json").read_text())
    d = spec["datasets"][name]
    videos = d["videos"] if d["synthetic"] is None else sweep / "data" / name
    frames = open_collection(videos, 64, progress=False)
    rows = frames.rows(d["frame_stride"], None)
    cfg = DiscoverConfig(frame_stride=d["frame_stride"], groups=d["groups"])
    for seed in range(3):
        ckpt = load_checkpoint(sweep / "cells" / recipe / name / f"seed{seed}" / "run")
        fz = FrameFeaturizer(frames, rows, ckpt, layer="fc6", seed=0, progress=False)
        idx = fz.index
        groups = {g: np.asarray(v) for g, v in cfg.group_values(idx.video.tolist()).items()}
        yield seed, fz.features("trained", 0), idx, groups


def score(features: np.ndarray, idx: FeatureSet, groups: dict | None = None) -> dict[str, Score]:
    """K-means and spectral (the video graph), 10 seeds, as the sweep scores."""
    return score_clusterings(
        lambda r: features,
        idx.label_codes(),
        k=len(idx.class_names),
        repeats=10,
        estimate_k=False,
        groups=groups,
        videos=idx.video,
    )


def append(out: Path, line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)
    with out.open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def main(sweep: Path, name: str, out: Path, recipe: str = "two_stream_t05") -> None:
    for seed, x, idx, groups in fused_features(sweep, name, recipe):
        half = x.shape[1] // 2
        for part, f in (("fused", x), ("appearance", x[:, :half]), ("motion", x[:, half:])):
            sc = score(f, idx, groups)
            line = {
                "set": name,
                "seed": seed,
                "part": part,
                **{m: float(np.mean(s.values)) for m, s in sc.items()},
                **{
                    f"{m}_{g}": float(np.mean(v))
                    for m, s in sc.items()
                    for g, v in s.others.items()
                    if g.startswith("nmi")
                },
            }
            append(out, line)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), *sys.argv[4:5])
