"""Issue 19's readout rounds: the final table, the NMI table and the rules of
docs/study/readout-rule.md applied (round 1: fc6 against conv5; round 2: fc6 as it is against
unit length, fc6+l2; round 3: appearance without colour augmentation, appearance_crop, at unit
length; round 4: temperature 0.5, appearance_t05 and two_stream_t05, and ``duels``, its
head-to-head rule of what ships), from the results in this folder (cells/, baselines/):

    python docs/study/readout/table.py table|nmi|rule1|rule2|rule3|rule4|cross|duels|curve|curve_best|curve_ts05|curve_scenes|curve_cross|precision|length|genre3_3k

``cross``: the cross-stream round (docs/study/streams-rule.md, round 2): the eligibility of
``two_stream_cross`` and of today's ``best`` (``two_stream_t05``); its duel is the last of ``duels``.

``precision`` and ``length``: the length round (docs/study/length-rule.md): the default in fp32
(``two_stream_cross_fp32``, seed 0) against its bf16 seeds (part A), and the default at 1,000 steps
(``two_stream_cross_1k``: seeds 0-2 continued from 300 steps, the ``curve/`` points at 1,000) against
itself at 300 (part B: eligibility, the duel; ``table`` and ``nmi`` list it too).

``curve``: the two-stream recipe's seed-0 run at 300 steps and continued to 3,000 (issue 19's
learning curve; the 1,000-step checkpoints were not kept) scored by the same code, at fc6.
``curve_best``: round 2's default's (``appearance_aug`` at unit length) seed-0 run continued to
1,000 and 3,000 steps; ``curve_ts05`` and ``curve_scenes``: round 4's ``best`` and ``scenes``.
"""

import glob
import json
import os
import statistics as st
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tables import M, fmt_base, fmt_cell, stat  # docs/study/tables.py

ROOT = os.path.dirname(os.path.abspath(__file__))
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
RECIPES = [
    "motion",
    "appearance_aug",
    "two_stream_aug",
    "appearance_crop",
    "appearance_t05",
    "two_stream_t05",
    "two_stream_cross",  # the cross-stream round (docs/study/streams-rule.md, round 2)
    "two_stream_cross_1k",  # the length round (docs/study/length-rule.md), part B
    "two_stream_cross_fp32",  # and its part A (seed 0 only)
]
LAYERS = ["fc6", "conv5", "fc6+l2"]  # the readouts: a layer, and "+l2" for unit length
ROUND1 = [(r, layer) for layer in ("fc6", "conv5") for r in RECIPES]
# round 2: two_stream_aug's features are unit length per stream already (one candidate)
ROUND2 = [(r, layer) for layer in ("fc6", "fc6+l2") for r in RECIPES[:2]] + [(RECIPES[2], "fc6")]
# round 3: round 2's five and appearance_aug without colour augmentation, at unit length
ROUND3 = [*ROUND2, ("appearance_crop", "fc6+l2")]
# round 4: round 3's six and temperature 0.5 for the RGB and two-stream recipes
ROUND4 = [*ROUND3, ("appearance_t05", "fc6+l2"), ("two_stream_t05", "fc6")]
# round 4's head-to-head comparisons (what ships): each candidate against its incumbent
DUELS = [
    (("appearance_t05", "fc6+l2"), ("appearance_aug", "fc6+l2")),
    (("two_stream_t05", "fc6"), ("two_stream_aug", "fc6")),
    (("two_stream_t05", "fc6"), ("appearance_aug", "fc6+l2")),
    (("two_stream_aug", "fc6"), ("appearance_aug", "fc6+l2")),
    (("two_stream_cross", "fc6"), ("two_stream_t05", "fc6")),  # the cross-stream round
    (("two_stream_cross_1k", "fc6"), ("two_stream_cross", "fc6")),  # the length round, part B
]
# the length round's part B: the default at 300 and at 1,000 steps
LENGTH = [("two_stream_cross", "fc6"), ("two_stream_cross_1k", "fc6")]
# the cross-stream round: today's best and the same recipe with the cross-stream term
CROSS = [("two_stream_t05", "fc6"), ("two_stream_cross", "fc6")]
NUIS = {"weizmann4": "performer", "arid6": "recording"}
cells = defaultdict(list)  # (recipe, set, layer) -> [trained results of each seed]
base = {}  # (source, set, layer) -> results; source random_init-<arch>, raw_pixels, ...
arch = {}  # recipe -> its architecture's random-init key
for f in sorted(glob.glob(f"{ROOT}/cells/*/*/seed*/frame@*.json")):
    recipe, dataset = f[len(ROOT) + 1 :].split("/")[1:3]
    layer = f.split("@")[-1][: -len(".json")]
    cells[(recipe, dataset, layer)].append(json.load(open(f))["results"]["trained"])
# the length round's part B: the default's seeds 0-2 continued to 1,000 steps (sweep curve points)
for f in sorted(glob.glob(f"{ROOT}/cells/two_stream_cross/*/seed*/curve/frame@*-step00001000.json")):
    dataset = f[len(ROOT) + 1 :].split("/")[2]
    layer = f.split("@")[-1][: -len("-step00001000.json")]
    cells[("two_stream_cross_1k", dataset, layer)].append(json.load(open(f))["results"]["trained"])
for f in glob.glob(f"{ROOT}/baselines/*/frame@*.json"):
    dataset = f.split("/")[-2]
    layer, key = os.path.basename(f)[len("frame@") : -len(".json")].split("-", 1)
    d = json.load(open(f))
    if key.startswith("random_init-"):
        arch[d["train_config"]["motion"], d["train_config"].get("streams", 1)] = key
    for src, rs in d["results"].items():
        base[(key if src == "random_init" else src, dataset, layer)] = rs


def random_init_key(recipe):
    motion, streams = {
        "motion": ("diffonly", 1),
        "appearance_aug": ("none", 1),
        "appearance_crop": ("none", 1),
        "appearance_t05": ("none", 1),
    }.get(
        recipe, ("diff", 2)
    )
    return arch.get((motion, streams))


def table():
    print("| features | " + " | ".join(SETS) + " |")
    print("|---|" + "---|" * len(SETS))
    for layer in LAYERS:
        for r in RECIPES:
            if not any(cells.get((r, s, layer)) for s in SETS):
                continue
            row = " | ".join(fmt_cell(cells.get((r, s, layer), [])) for s in SETS)
            print(f"| `{r}` at {layer} | {row} |")
    raw = " | ".join(fmt_base(base.get(("raw_pixels", s, "fc6"))) for s in SETS)
    print(f"| raw pixels + PCA(128) | {raw} |")
    for layer in LAYERS:
        for r in RECIPES[:3]:  # the later recipes' networks and inputs are these three's
            if not any(base.get((random_init_key(r), s, layer)) for s in SETS):
                continue
            row = " | ".join(fmt_base(base.get((random_init_key(r), s, layer))) for s in SETS)
            print(f"| random init of `{r}`, at {layer} | {row} |")
    ra = " | ".join(fmt_base(base.get(("random_assignment", s, "fc6"))) for s in SETS)
    print(f"| random assignment | {ra} |")


def nmi():
    print("| features | " + " | ".join(f"{s}: class / {n}" for s, n in NUIS.items()) + " |")
    print("|---|" + "---|" * len(NUIS))

    def one(vals, s, trained):
        g = NUIS[s]
        if not vals:
            return "not run"
        if trained:
            return " · ".join(
                f"{st.mean(x[m]['nmi_mean'] for x in vals):.2f} / "
                f"{st.mean(x[m][f'nmi_{g}_mean'] for x in vals):.2f}"
                for m in M
            )
        return " · ".join(f"{vals[m]['nmi_mean']:.2f} / {vals[m][f'nmi_{g}_mean']:.2f}" for m in M)

    for layer in LAYERS:
        for r in RECIPES:
            if not any(cells.get((r, s, layer)) for s in NUIS):
                continue
            row = " | ".join(one(cells.get((r, s, layer)), s, True) for s in NUIS)
            print(f"| `{r}` at {layer} | {row} |")
    raw = " | ".join(one(base.get(("raw_pixels", s, "fc6")), s, False) for s in NUIS)
    print(f"| raw pixels + PCA(128) | {raw} |")
    for layer in LAYERS:
        for r in RECIPES[:3]:
            if not any(base.get((random_init_key(r), s, layer)) for s in NUIS):
                continue
            row = " | ".join(one(base.get((random_init_key(r), s, layer)), s, False) for s in NUIS)
            print(f"| random init of `{r}`, at {layer} | {row} |")


def rule(candidates):
    ranks = defaultdict(list)
    relative = defaultdict(list)  # CE / CE(random assignment): the tie-break
    elig = {}
    for s in SETS:
        chance = base.get(("random_assignment", s, "fc6"))
        for m in M:
            here = {
                c: stat(cells[(c[0], s, c[1])], m) for c in candidates if cells.get((c[0], s, c[1]))
            }
            for (r, layer), (mu, sd, n) in here.items():
                raw = base.get(("raw_pixels", s, "fc6"))  # the same whatever the readout
                ri = base.get((random_init_key(r), s, layer))
                elig[(r, layer, s, m)] = (
                    raw is not None
                    and ri is not None
                    and n == 3
                    and all(mu + sd < b[m]["ce_mean"] - b[m]["ce_std"] for b in (raw, ri))
                )
            if len(here) == len(candidates):  # ranks share ties (the mean of the places)
                values = sorted(v[0] for v in here.values())
                for c, (mu, _, _) in here.items():
                    places = [i + 1 for i, v in enumerate(values) if v == mu]
                    ranks[c].append(st.mean(places))
                    if chance is not None:
                        relative[c].append(mu / chance[m]["ce_mean"])

    def order(c):
        return (st.mean(ranks[c]), st.mean(relative[c])) if ranks[c] else (99.0, 99.0)

    for r, layer in sorted(candidates, key=order):
        where = [f"{s} {m}" for s in SETS for m in M if elig.get((r, layer, s, m))]
        missing = [s for s in SETS if len(cells.get((r, s, layer), [])) < 3]
        mean_rank = f"{st.mean(ranks[(r, layer)]):.2f}" if ranks[(r, layer)] else "—"
        print(
            f"- `{r}` at {layer}: mean rank {mean_rank} over {len(ranks[(r, layer)])} "
            f"comparisons (CE / chance {order((r, layer))[1]:.3f}); eligible on {len(where)}/10 ({', '.join(where) or 'none'}); "
            f"short of 3 seeds on: {', '.join(missing) or 'none'}"
        )


def duels():
    """Round 4's what-ships rule: in how many of the 10 set x method comparisons a candidate's
    mean CE (over its training seeds) is below its incumbent's."""
    for a, b in DUELS:
        wins = [
            f"{s} {m}"
            for s in SETS
            for m in M
            if cells.get((a[0], s, a[1]))
            and cells.get((b[0], s, b[1]))
            and stat(cells[(a[0], s, a[1])], m)[0] < stat(cells[(b[0], s, b[1])], m)[0]
        ]
        print(f"- `{a[0]}` at {a[1]} beats `{b[0]}` at {b[1]} in {len(wins)}/10: {', '.join(wins)}")


def precision():
    """The length round's part A: fp32 seed 0 against the bf16 seeds 0-2 (bf16 holds where fp32
    is not below their mean - std), and against bf16 seed 0 (same start, same tuples)."""
    print("| set | method | fp32 seed 0 | bf16 seeds 0-2 | bf16 seed 0 | bf16 holds |")
    print("|---|---|---|---|---|---|")
    holds = 0
    for s in SETS:
        fp32 = cells.get(("two_stream_cross_fp32", s, "fc6"))
        bf16 = cells.get(("two_stream_cross", s, "fc6"))
        if not fp32 or not bf16:
            continue
        for m in M:
            one = fp32[0][m]["ce_mean"]
            mu, sd, _ = stat(bf16, m)
            ok = one >= mu - sd
            holds += ok
            print(
                f"| {s} | {m} | {one:.3f} | {mu:.3f} ± {sd:.3f} | {bf16[0][m]['ce_mean']:.3f} | "
                f"{'yes' if ok else 'no'} |"
            )
    print(f"\nbf16 holds in {holds} of the comparisons (rule A: at least 7 of 10)")


def curve_of(recipe, layer):
    """The learning curve of ``recipe``'s seed-0 run read at ``layer``: 300 steps (the cell),
    1,000 and 3,000 (one run continued), beside its random init and raw pixels."""
    print("| set | 300 steps | 1,000 | 3,000 | its random init | raw pixels |")
    print("|---|---|---|---|---|---|")
    for s in SETS:
        cell = f"{ROOT}/cells/{recipe}/{s}/seed0/frame@{layer}.json"
        if not os.path.exists(cell):
            continue
        points = [json.load(open(cell))["results"]["trained"]]
        for n in (1000, 3000):
            path = f"{ROOT}/curve/cells/{recipe}/{s}/seed0/curve/frame@{layer}-step{n:08d}.json"
            if not os.path.exists(path):  # round 4's curves lie beside their cells
                path = f"{ROOT}/cells/{recipe}/{s}/seed0/curve/frame@{layer}-step{n:08d}.json"
            points.append(json.load(open(path))["results"]["trained"] if os.path.exists(path) else None)
        cols = [
            "not run" if x is None else " / ".join(f"{x[m]['ce_mean']:.3f}" for m in M)
            for x in points
        ]
        ri = base.get((random_init_key(recipe), s, layer))
        raw = base.get(("raw_pixels", s, "fc6"))
        print(f"| {s} | " + " | ".join(cols) + f" | {fmt_base(ri)} | {fmt_base(raw)} |")


def seeds_curve(recipe, dataset, layer="fc6"):
    """``recipe`` on ``dataset`` at 300 steps (the cells) and at each curve point, mean ± std over
    the training seeds that reached it (the length round's genre3 run took seeds 1-2 to 3,000)."""
    print(f"| `{recipe}` on {dataset} | seeds | K-means / spectral |")
    print("|---|---|---|")
    for n in (300, 1000, 3000):
        pattern = (
            f"{ROOT}/cells/{recipe}/{dataset}/seed*/frame@{layer}.json"
            if n == 300
            else f"{ROOT}/cells/{recipe}/{dataset}/seed*/curve/frame@{layer}-step{n:08d}.json"
        )
        runs = [json.load(open(f))["results"]["trained"] for f in sorted(glob.glob(pattern))]
        if runs:
            print(f"| {n:,} steps | {len(runs)} | {fmt_cell(runs)} |")


{
    # the two-stream recipe of the study (temperature 0.1): 300 and 3,000 steps (1,000 not kept)
    "curve": lambda: curve_of("two_stream_aug", "fc6"),
    # round 2's default (appearance_aug at unit length), and round 4's two (best, scenes)
    "curve_best": lambda: curve_of("appearance_aug", "fc6+l2"),
    "curve_ts05": lambda: curve_of("two_stream_t05", "fc6"),
    "curve_scenes": lambda: curve_of("appearance_t05", "fc6+l2"),
    "curve_cross": lambda: curve_of("two_stream_cross", "fc6"),  # 1,000 steps only
    "table": table,
    "nmi": nmi,
    "rule1": lambda: rule(ROUND1),
    "rule2": lambda: rule(ROUND2),
    "rule3": lambda: rule(ROUND3),
    "rule4": lambda: rule(ROUND4),
    "cross": lambda: rule(CROSS),
    "duels": duels,
    "precision": precision,
    "length": lambda: rule(LENGTH),
    "genre3_3k": lambda: seeds_curve("two_stream_cross", "genre3"),
}[sys.argv[1] if len(sys.argv) > 1 else "table"]()
