"""Issue 19's final table, NMI table, the rule applied and the learning curve, from the results in this folder:
python docs/study/everywhere/table.py table|nmi|rule|curves"""

import glob
import json
import os
import statistics as st
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tables import M, fmt_base, fmt_cell, stat  # docs/study/tables.py

ROOTS = [os.path.dirname(os.path.abspath(__file__))]
SETS = ["weizmann4", "arid6", "genre3", "demo", "hue"]
RECIPES = ["motion", "appearance_aug", "two_stream_aug"]
ARCH = {
    "motion": "68253ac6fe48",
    "appearance_aug": "8b4d1bf17348",
    "two_stream_aug": "fd6ff9177430",
}
NUIS = {"weizmann4": "performer", "arid6": "recording"}
cells = defaultdict(list)
base = {}
curve = defaultdict(dict)
for root in ROOTS:
    for f in glob.glob(f"{root}/cells/*/*/seed*/frame.json"):
        p = f[len(root) + 1 :].split("/")
        cells[(p[1], p[2])].append(json.load(open(f))["results"]["trained"])
        if p[3] == "seed0":
            curve[(p[1], p[2])][300] = json.load(open(f))["results"]["trained"]
    for f in glob.glob(f"{root}/cells/*/*/seed0/curve/frame-step*.json"):
        p = f[len(root) + 1 :].split("/")
        n = int(f.split("step")[-1][:-5])
        curve[(p[1], p[2])][n] = json.load(open(f))["results"]["trained"]
    for f in glob.glob(f"{root}/baselines/*/frame-*.json"):
        d = json.load(open(f))
        s = f.split("/")[-2]
        for src, rs in d["results"].items():
            key = src if src != "random_init" else "random_init-" + f.split("-")[-1][:-5]
            base[(key, s)] = rs


def table():
    print("| features | " + " | ".join(SETS) + " |")
    print("|---|" + "---|" * len(SETS))
    for r in RECIPES:
        print(f"| `{r}` | " + " | ".join(fmt_cell(cells.get((r, s), [])) for s in SETS) + " |")
    print(
        "| raw pixels + PCA(128) | "
        + " | ".join(fmt_base(base.get(("raw_pixels", s))) for s in SETS)
        + " |"
    )
    for r in RECIPES:
        print(
            f"| random init, `{r}`'s network and input | "
            + " | ".join(fmt_base(base.get(("random_init-" + ARCH[r], s))) for s in SETS)
            + " |"
        )
    print(
        "| random assignment | "
        + " | ".join(fmt_base(base.get(("random_assignment", s))) for s in SETS)
        + " |"
    )


def nmi():
    print("| features | " + " | ".join(f"{s}: action / {n}" for s, n in NUIS.items()) + " |")
    print("|---|" + "---|" * len(NUIS))

    def one(vals, s, trained):
        g = NUIS[s]
        if not vals:
            return "not run"
        if trained:
            out = []
            for m in M:
                a = st.mean(x[m]["nmi_mean"] for x in vals)
                b = st.mean(x[m][f"nmi_{g}_mean"] for x in vals)
                out.append(f"{a:.2f} / {b:.2f}")
            return " · ".join(out)
        return " · ".join(f"{vals[m]['nmi_mean']:.2f} / {vals[m][f'nmi_{g}_mean']:.2f}" for m in M)

    for r in RECIPES:
        print(f"| `{r}` | " + " | ".join(one(cells.get((r, s)), s, True) for s in NUIS) + " |")
    print(
        "| raw pixels + PCA(128) | "
        + " | ".join(one(base.get(("raw_pixels", s)), s, False) for s in NUIS)
        + " |"
    )
    for r in RECIPES:
        print(
            f"| random init, `{r}`'s | "
            + " | ".join(one(base.get(("random_init-" + ARCH[r], s)), s, False) for s in NUIS)
            + " |"
        )


def rule():
    ranks = defaultdict(list)
    elig = {}
    for s in SETS:
        for m in M:
            here = {r: stat(cells[(r, s)], m) for r in RECIPES if cells.get((r, s))}
            for r, (mu, sd, n) in here.items():
                raw = base.get(("raw_pixels", s))
                ri = base.get(("random_init-" + ARCH[r], s))
                ok = (
                    raw is not None
                    and ri is not None
                    and n == 3
                    and all(mu + sd < b[m]["ce_mean"] - b[m]["ce_std"] for b in (raw, ri))
                )
                elig[(r, s, m)] = ok
            if len(here) == 3:
                order = sorted(here, key=lambda r: here[r][0])
                for i, r in enumerate(order):
                    ranks[r].append(i + 1)
    for r in RECIPES:
        where = [f"{s} {m}" for s in SETS for m in M if elig.get((r, s, m))]
        missing = [s for s in SETS if len(cells.get((r, s), [])) < 3]
        print(
            f"- `{r}`: mean rank {st.mean(ranks[r]):.2f} over {len(ranks[r])} comparisons; "
            f"eligible on {len(where)}/10 ({', '.join(where) or 'none'}); "
            f"short of 3 seeds on: {', '.join(missing) or 'none'}"
        )


def curves():
    print("| recipe | set | 300 | 1,000 | 3,000 |")
    print("|---|---|---|---|---|")
    for r in RECIPES:
        for s in SETS:
            c = curve.get((r, s), {})
            if len(c) < 2:
                continue
            row = []
            for n in (300, 1000, 3000):
                x = c.get(n)
                row.append(
                    ""
                    if x is None
                    else f"{x['kmeans']['ce_mean']:.3f} / {x['spectral']['ce_mean']:.3f}"
                )
            print(f"| `{r}` | {s} | " + " | ".join(row) + " |")


{"table": table, "nmi": nmi, "rule": rule, "curves": curves}[
    sys.argv[1] if len(sys.argv) > 1 else "table"
]()
