"""The stream-weight round's table and rule (docs/study/streams-rule.md), from weights/*.jsonl:

python docs/study/streams/weights_table.py
"""

import glob
import json
import os
import statistics as st
from collections import defaultdict

ROOT = os.path.dirname(os.path.abspath(__file__))
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
METHODS = ["kmeans", "spectral"]
WEIGHTS = [0.3, 0.4, 0.5, 0.6, 0.7]
by = defaultdict(list)  # (set, w, method) -> CE of each training seed
for f in glob.glob(f"{ROOT}/weights/*.jsonl"):
    for line in open(f):
        x = json.loads(line)
        for m in METHODS:
            by[(x["set"], x["w"], m)].append(x[m])


def mean(s, w, m):
    v = by.get((s, w, m), [])
    return st.mean(v) if len(v) == 3 else None


def fmt(s, w, m):
    v = by.get((s, w, m), [])
    return f"{st.mean(v):.3f} ± {st.stdev(v):.3f}" if len(v) == 3 else "not run"


print("| motion weight w | " + " | ".join(SETS) + " |")
print("|---|" + "---|" * len(SETS))
for w in WEIGHTS:
    cells = [f"{fmt(s, w, 'kmeans')} / {fmt(s, w, 'spectral')}" for s in SETS]
    print(f"| {w:g}{' (ships)' if w == 0.5 else ''} | " + " | ".join(cells) + " |")
comps = [(s, m) for s in SETS for m in METHODS if all(mean(s, w, m) is not None for w in WEIGHTS)]
print(f"\n{len(comps)} of 10 comparisons complete")
rank = defaultdict(float)
for s, m in comps:
    order = sorted(WEIGHTS, key=lambda w: mean(s, w, m))
    for r, w in enumerate(order, 1):
        rank[w] += r / len(comps)
for w in WEIGHTS:
    wins = sum(mean(s, w, m) < mean(s, 0.5, m) for s, m in comps)
    print(f"w = {w:g}: mean rank {rank[w]:.2f}, lower than w = 0.5 in {wins}/{len(comps)}")
others = [w for w in WEIGHTS if w != 0.5]
if comps:
    cand = min(others, key=lambda w: (rank[w], st.mean(mean(s, w, m) for s, m in comps)))
    wins = sum(mean(s, cand, m) < mean(s, 0.5, m) for s, m in comps)
    print(
        f"candidate w = {cand:g}: lower in {wins} of {len(comps)}; ships: {len(comps) == 10 and wins >= 6}"
    )
