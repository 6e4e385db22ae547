"""The stream-weight readout round (docs/study/streams-rule.md): `two_stream_t05`'s fc6 halves
joined as [sqrt(2 (1 - w)) a, sqrt(2 w) m] for each motion weight w, scored as the sweep scores
(the features and scores of `run.py`).

    python docs/study/streams/weights.py SWEEP_FOLDER SET OUT.jsonl
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import append, fused_features, score  # docs/study/streams/run.py

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main(sweep: Path, name: str, out: Path) -> None:
    for seed, x, idx, _groups in fused_features(sweep, name):
        half = x.shape[1] // 2
        for w in WEIGHTS:
            f = np.concatenate(
                [np.sqrt(2 * (1 - w)) * x[:, :half], np.sqrt(2 * w) * x[:, half:]], 1
            )
            sc = score(f, idx)
            line = {"set": name, "seed": seed, "w": w}
            append(out, {**line, **{m: float(np.mean(s.values)) for m, s in sc.items()}})


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
