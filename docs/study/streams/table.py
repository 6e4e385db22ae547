"""The default's streams read apart (a diagnostic, not a round): `two_stream_t05`'s fused fc6 is
[appearance / |appearance|, motion / |motion|], so each half is one stream at unit length.
CE in bits, K-means / spectral (video graph), mean ± std over training seeds 0-2, each the mean
over 10 K-means seeds, as the sweep scores:

    python docs/study/streams/table.py
"""

import glob
import json
import os
import statistics as st
from collections import defaultdict

ROOT = os.path.dirname(os.path.abspath(__file__))
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
by = defaultdict(list)
for f in glob.glob(f"{ROOT}/results/*.jsonl"):
    for line in open(f):
        x = json.loads(line)
        by[(x["set"], x["part"])].append(x)


def cell(rows, method):
    v = [r[method] for r in rows]
    return f"{st.mean(v):.3f} ± {st.stdev(v):.3f}" if len(v) > 1 else "not run"


print("| readout of `two_stream_t05` | " + " | ".join(SETS) + " |")
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
