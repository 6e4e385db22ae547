"""The stream-weight readout round (docs/study/streams-rule.md): `two_stream_t05`'s fc6 halves
joined as [sqrt(2 (1 - w)) a, sqrt(2 w) m] for each motion weight w, scored as the sweep scores.

    python docs/study/streams/weights.py SWEEP_FOLDER SET OUT.jsonl
"""

import json
import sys
from pathlib import Path

import numpy as np

from tcdn.data import open_collection
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.evaluate import score_clusterings
from tcdn.features.extract import FrameFeaturizer
from tcdn.training import load_checkpoint

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
sweep, name, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
spec = json.loads((sweep / "spec.json").read_text())
d = spec["datasets"][name]
videos = d["videos"] if d["synthetic"] is None else sweep / "data" / name
frames = None
for seed in range(3):
    ckpt = load_checkpoint(sweep / "cells" / "two_stream_t05" / name / f"seed{seed}" / "run")
    frames = frames or open_collection(videos, 64, progress=False)
    cfg = DiscoverConfig(frame_stride=d["frame_stride"], groups=d["groups"])
    rows = frames.rows(d["frame_stride"], None)
    fz = FrameFeaturizer(frames, rows, ckpt, layer="fc6", seed=0, progress=False)
    x = fz.features("trained", 0)
    idx = fz.index
    half = x.shape[1] // 2
    for w in WEIGHTS:
        f = np.concatenate([np.sqrt(2 * (1 - w)) * x[:, :half], np.sqrt(2 * w) * x[:, half:]], 1)
        sc = score_clusterings(
            lambda r, f=f: f,
            idx.label_codes(),
            k=len(idx.class_names),
            repeats=10,
            estimate_k=False,
            videos=idx.video,
        )
        line = {
            "set": name,
            "seed": seed,
            "w": w,
            **{m: float(np.mean(s.values)) for m, s in sc.items()},
        }
        print(json.dumps(line), flush=True)
        with out.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
