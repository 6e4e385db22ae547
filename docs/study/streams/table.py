"""The default's streams read apart (a diagnostic, not a round): `two_stream_t05`'s fused fc6 is
[appearance / |appearance|, motion / |motion|], so each half is one stream at unit length.
CE in bits, K-means / spectral (video graph), mean ± std over training seeds 0-2, each the mean
over 10 K-means seeds, as the sweep scores:

    python docs/study/streams/table.py [RESULTS_DIR [RECIPE]]

RESULTS_DIR is `results` (the default's networks) unless given; `results-cross` holds the
cross-stream round's networks (`two_stream_cross`).
"""

import glob
import json
import os
import statistics as st
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.abspath(__file__))
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
by = defaultdict(list)
RESULTS = sys.argv[1] if len(sys.argv) > 1 else "results"
RECIPE = sys.argv[2] if len(sys.argv) > 2 else "two_stream_t05"
for f in glob.glob(f"{ROOT}/{RESULTS}/*.jsonl"):
    for line in open(f):
        x = json.loads(line)
        by[(x["set"], x["part"])].append(x)


def cell(rows, method):
    v = [r[method] for r in rows]
    return f"{st.mean(v):.3f} ± {st.stdev(v):.3f}" if len(v) > 1 else "not run"


print(f"| readout of `{RECIPE}` | " + " | ".join(SETS) + " |")
print("|---|" + "---|" * len(SETS))
for part in ("fused", "motion", "appearance"):
    cells = []
    for s in SETS:
        rows = by.get((s, part), [])
        cells.append(f"{cell(rows, 'kmeans')} / {cell(rows, 'spectral')}" if rows else "not run")
    print(f"| {part} | " + " | ".join(cells) + " |")
nuis = {"weizmann4": "performer", "arid6": "recording"}
print()
print("NMI class / nuisance (K-means):")
for s, g in nuis.items():
    for part in ("fused", "motion", "appearance"):
        rows = by.get((s, part), [])
        if rows:
            a = st.mean(r["kmeans_nmi"] for r in rows)
            b = st.mean(r[f"kmeans_nmi_{g}"] for r in rows)
            print(f"  {s} {part}: {a:.2f} / {b:.2f} ({g})")
