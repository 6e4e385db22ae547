"""The regularised-spectral study's tables and its rule (docs/study/spectral-rule.md), from the
lines `run.py` wrote in results/:

    python docs/study/spectral/table.py [table|rule|eigengap|per_set|confirm] [regularization|floor|floor-conv5]

``regularization`` (round 1, results/): ``c``, tau = c x the mean degree; ``floor`` (round 2,
results-floor/): ``c``, the video graph's local scales floored at c x their median.
"""

import glob
import json
import os
import statistics as st
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.abspath(__file__))
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
STUDY = sys.argv[2] if len(sys.argv) > 2 else "regularization"
ARMS, FOLDER = {
    "regularization": ([0.0, 0.03, 0.1, 0.3, 1.0], "results"),
    "floor": ([0.0, 0.5, 1.0], "results-floor"),
    "floor-conv5": ([0.0, 0.5], "results-floor-conv5"),
}[STUDY]
DEFAULT = ("trained", "two_stream_t05", "fc6", None)
lines = [json.loads(x) for f in glob.glob(f"{ROOT}/{FOLDER}/*.jsonl") for x in open(f)]
by = defaultdict(list)  # (set, source, recipe, layer, norm, c) -> [ce_mean of each seed/net]
gaps = defaultdict(list)  # c -> [(k_eigengap, k)]
for x in lines:
    if x["source"] == "random_init":  # one line per 3 networks: its repeats are the networks
        vals = x["ce"]
    else:
        vals = [x["ce_mean"]]
    by[(x["set"], x["source"], x["recipe"], x["layer"], x["norm"], x["c"])] += vals
    gaps[x["c"]].append((x["k_eigengap"], x["k"]))
UNITS = sorted({k[1:5] for k in by}, key=lambda u: (u[0] != "trained", u[1], u[3] or ""))


def name(u):
    source, recipe, layer, norm = u
    what = {"trained": f"`{recipe}`", "random_init": f"random init of `{recipe}`"}.get(
        source, "raw pixels + PCA(128)"
    )
    return what if source == "raw_pixels" else f"{what} at {layer}{'+' + norm if norm else ''}"


def score(s, u, c):
    v = by.get((s, *u, c))
    return (st.mean(v), st.stdev(v) if len(v) > 1 else 0.0) if v else None


def units():
    return [(s, u) for s in SETS for u in UNITS if all(score(s, u, c) for c in ARMS)]


def table():
    print("| features | set | " + " | ".join(f"c = {c:g}" for c in ARMS) + " |")
    print("|---|---|" + "---|" * len(ARMS))
    for u in UNITS:
        for s in SETS:
            cells = [score(s, u, c) for c in ARMS]
            if not all(cells):
                continue
            best = min(m for m, _ in cells)
            row = " | ".join(
                ("**" if m == best else "") + f"{m:.3f} ± {sd:.3f}" + ("**" if m == best else "")
                for m, sd in cells
            )
            print(f"| {name(u)} | {s} | {row} |")


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            out[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return out


def rule():
    us = units()
    print(f"{STUDY}: {len(us)} units of the 70 scored at every arm")
    mean_rank = {c: 0.0 for c in ARMS}
    mean_ce = {c: 0.0 for c in ARMS}
    for s, u in us:
        ce = [score(s, u, c)[0] for c in ARMS]
        for c, r, v in zip(ARMS, ranks(ce), ce, strict=True):
            mean_rank[c] += r / len(us)
            mean_ce[c] += v / len(us)
    for c in ARMS:
        ties = sum(score(s, u, c)[0] == score(s, u, 0.0)[0] for s, u in us)
        wins = sum(score(s, u, c)[0] < score(s, u, 0.0)[0] for s, u in us)
        tw = sum(score(s, u, c)[0] < score(s, u, 0.0)[0] for s, u in us if u[0] == "trained")
        nt = sum(u[0] == "trained" for _, u in us)
        print(
            f"c = {c:<4g} mean rank {mean_rank[c]:.2f}, mean CE {mean_ce[c]:.3f}, lower than "
            f"c = 0 in {wins}/{len(us)} units (trained {tw}/{nt}, baselines {wins - tw}/{len(us) - nt}), "
            f"equal in {ties}"
        )
    cand = min(ARMS[1:], key=lambda c: (mean_rank[c], mean_ce[c]))
    wins = sum(score(s, u, cand)[0] < score(s, u, 0.0)[0] for s, u in us)
    guard = []
    for s in SETS:
        a, b = score(s, DEFAULT, cand), score(s, DEFAULT, 0.0)
        if a and b and a[0] - b[0] > max(a[1], b[1]):
            guard.append(f"{s} ({b[0]:.3f} -> {a[0]:.3f}, spread {max(a[1], b[1]):.3f})")
    print(f"candidate: c = {cand:g}")
    print(f"  rule 2a, lower than c = 0 in >= 42 of 70 units: {wins} of {len(us)}")
    print(f"  rule 2b, lower mean CE: {mean_ce[cand]:.3f} vs {mean_ce[0.0]:.3f}")
    print(f"  rule 2c, the default's features worse beyond their spread on: {guard or 'no set'}")
    ships = len(us) == 70 and wins >= 42 and mean_ce[cand] < mean_ce[0.0] and not guard
    print(f"ships: {ships}")


def eigengap():
    for c in ARMS:
        g = gaps[c]
        right = sum(a == b for a, b in g)
        print(f"c = {c:<4g} eigengap K = true K on {right}/{len(g)} feature sets")


def per_set():
    """Each set: the mean CE over its 14 units at each arm, and the units each arm wins against
    the first (main's)."""
    print("| set | " + " | ".join(f"c = {c:g}" for c in ARMS) + " |")
    print("|---|" + "---|" * len(ARMS))
    for s in SETS:
        us = [u for t, u in units() if t == s]
        if not us:
            continue
        cells = []
        for c in ARMS:
            m = st.mean(score(s, u, c)[0] for u in us)
            w = sum(score(s, u, c)[0] < score(s, u, ARMS[0])[0] for u in us)
            cells.append(f"{m:.3f}" + ("" if c == ARMS[0] else f" ({w}/{len(us)})"))
        print(f"| {s} | " + " | ".join(cells) + " |")


def confirm():
    """Round 2's confirmation (floor-conv5): its rule (a), (b), (c) on the 30 conv5 units."""
    us = [(s, u) for s, u in units()]
    print(f"{STUDY}: {len(us)} units of the 30 scored at both arms")
    delta = [score(s, u, 0.5)[0] - score(s, u, 0.0)[0] for s, u in us]
    changed = [d for d in delta if abs(d) > 0.001]
    lower = sum(d < 0 for d in changed)
    mean0 = st.mean(score(s, u, 0.0)[0] for s, u in us)
    mean5 = st.mean(score(s, u, 0.5)[0] for s, u in us)
    worst = max(delta)
    a = bool(changed) and lower >= 0.6 * len(changed)
    print(f"  (a) lower in {lower} of {len(changed)} changed units (>= 60 %): {a}")
    print(f"  (b) mean CE {mean5:.3f} vs {mean0:.3f}: {mean5 < mean0}")
    print(f"  (c) largest rise {worst:+.3f} bits (<= 0.1): {worst <= 0.1}")
    print(f"ships: {len(us) == 30 and a and mean5 < mean0 and worst <= 0.1}")


COMMANDS = {
    "table": table,
    "rule": rule,
    "eigengap": eigengap,
    "per_set": per_set,
    "confirm": confirm,
}


if __name__ == "__main__":
    COMMANDS[sys.argv[1] if len(sys.argv) > 1 else "rule"]()
