"""The final-round table: per recipe and set, mean ± sample std (ddof=1) over training seeds of
the 10-K-means-seed mean CE; baselines; eligibility and mean rank by SELECTION_RULE.md."""
import json
from collections import defaultdict
import numpy as np
from pathlib import Path
H = str(Path(__file__).parent)
rows = [json.loads(l) for l in open(f"{H}/results.jsonl")]
SETS = ["weizmann4", "demo", "hue"]
REC = ["shipped", "bn_nce_diff", "bn_nce_diffonly", "paper_plain"]
runs = defaultdict(dict)
for r in rows:
    if r["kind"] == "run" and r["recipe"] in REC and r["seed"] in (0, 1, 2):
        runs[(r["recipe"], r["set"])][r["seed"]] = r
base = {(b["set"], b["baseline"]): b for b in rows if b["kind"] == "baseline"}
arch = {}
for r in rows:
    if r["kind"] == "run":
        arch[r["recipe"]] = r["arch_key"]
def ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"
print("| recipe | " + " | ".join(SETS) + " |\n|---|---|---|---|")
means = {}
for rec in REC:
    cells = []
    for s in SETS:
        rs = runs.get((rec, s), {})
        if not rs:
            cells.append("not run"); continue
        v = [rs[k]["ce_mean"] for k in sorted(rs)]
        means[(rec, s)] = np.mean(v)
        nmi = f"NMI action {np.mean([rs[k]['nmi_action'] for k in rs]):.2f}"
        if "nmi_performer" in next(iter(rs.values())):
            nmi += f", performer {np.mean([rs[k]['nmi_performer'] for k in rs]):.2f}"
        cells.append(f"{ms(v)} (n={len(v)}; {nmi})")
    print(f"| {rec} | " + " | ".join(cells) + " |")
for name, key in (("raw pixels + PCA(128)", "raw_pixels_pca128"), ("random assignment", "random_assignment")):
    print(f"| {name} | " + " | ".join(f"{base[(s,key)]['ce_mean']:.3f} ± {base[(s,key)]['ce_std']:.3f}" if (s,key) in base else "" for s in SETS) + " |")
for rec in REC:
    if rec not in arch: continue
    k = f"random_init_{arch[rec]}"
    print(f"| random init ({rec} arch) | " + " | ".join(f"{base[(s,k)]['ce_mean']:.3f} ± {base[(s,k)]['ce_std']:.3f}" if (s,k) in base else "not run" for s in SETS) + " |")
print()
for rec in REC:
    elig = []
    for s in SETS:
        if (rec, s) not in means: elig.append(f"{s}: no data"); continue
        raw = base[(s, "raw_pixels_pca128")]["ce_mean"]
        ri = base.get((s, f"random_init_{arch.get(rec)}"))
        ok = means[(rec, s)] < raw and (ri is not None and means[(rec, s)] < ri["ce_mean"])
        elig.append(f"{s}: {'yes' if ok else 'no'}")
    print(rec, "eligible:", ", ".join(elig))
comp = [r for r in REC if all((r, s) in means for s in SETS) and r != "paper_plain"]
ranks = {r: [] for r in comp}
for s in SETS:
    order = sorted(comp, key=lambda r: means[(r, s)])
    for i, r in enumerate(order):
        ranks[r].append(i + 1)
print("mean rank over sets (recipes with all three sets):", {r: float(np.mean(v)) for r, v in ranks.items()})
