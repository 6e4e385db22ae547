"""What the study table scripts share (docs/study/everywhere/table.py, docs/study/readout/table.py):
a cell's mean ± std over training seeds and a baseline's over its repeats, K-means / spectral."""

import statistics as st

M = ("kmeans", "spectral")


def stat(vals, m, k="ce_mean"):
    """Mean, sample std (0 with one value) and count of ``k`` over the seeds' results ``vals``."""
    v = [x[m][k] for x in vals]
    return st.mean(v), (st.stdev(v) if len(v) > 1 else 0.0), len(v)


def fmt_cell(vals):
    """A trained cell: ``mean ± std`` per method over the seeds, ``(n=...)`` if not 3."""
    if not vals:
        return "not run"
    out = []
    for m in M:
        mu, sd, n = stat(vals, m)
        out.append(f"{mu:.3f}" + (f" ± {sd:.3f}" if n > 1 else ""))
    return " / ".join(out) + ("" if len(vals) == 3 else f" (n={len(vals)})")


def fmt_base(rs):
    """A baseline: ``mean ± std`` per method over its repeats; ``—`` if absent."""
    if rs is None:
        return "—"
    return " / ".join(f"{rs[m]['ce_mean']:.3f} ± {rs[m]['ce_std']:.3f}" for m in M)
