"""Diagnostic: the default's (two_stream_t05) fused fc6 = [appearance unit, motion unit]; score
each half alone and the fusion, K-means and spectral, as the sweep scores (10 seeds).

    python docs/study/streams/run.py SWEEP_FOLDER SET OUT.jsonl

SWEEP_FOLDER: a readout sweep folder with the `two_stream_t05` cells (training seeds 0-2)."""

import json
import sys
from pathlib import Path

import numpy as np

from tcdn.data import open_collection
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.evaluate import score_clusterings
from tcdn.features.extract import FrameFeaturizer
from tcdn.training import load_checkpoint

sweep, name, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
spec = json.loads((sweep / "spec.json").read_text())
d = spec["datasets"][name]
videos = d["videos"] if d["synthetic"] is None else sweep / "data" / name
frames = None
for seed in range(3):
    ckpt = load_checkpoint(sweep / "cells" / "two_stream_t05" / name / f"seed{seed}" / "run")
    frames = frames or open_collection(videos, 64, progress=False)
    cfg = DiscoverConfig(frame_stride=d["frame_stride"], groups=d["groups"])
    fz = FrameFeaturizer(
        frames, frames.rows(d["frame_stride"], None), ckpt, layer="fc6", seed=0, progress=False
    )
    x = fz.features("trained", 0)
    idx = fz.index
    half = x.shape[1] // 2
    groups = {g: np.asarray(v) for g, v in cfg.group_values(idx.video.tolist()).items()}
    for part, f in (("fused", x), ("appearance", x[:, :half]), ("motion", x[:, half:])):
        sc = score_clusterings(
            lambda r, f=f: f,
            idx.label_codes(),
            k=len(idx.class_names),
            repeats=10,
            estimate_k=False,
            groups=groups,
            videos=idx.video,
        )
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
        print(json.dumps(line), flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
