"""Fine-tuning settings on a validation split carved from the training videos only (issue 21).

The videos held out for testing by repeat 0 of ``tcdn finetune --dataset videos --seed 0
--test-fraction F`` are dropped; the remaining (training) videos are split again by video
(``--val-fraction``) into a development training set and a validation set, and each named
setting runs ``run_transfer`` there (learned vs random init, paired repeats). No test video is
read, so a setting chosen here is not chosen on test images.

    python benchmarks/finetune_dev.py VIDEOS --checkpoint RUN --out DIR \
        --set name=bn=train,head_init=random ... [--shots 5 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from tcdn.data.load import open_collection
from tcdn.features.write import checkpoint_of
from tcdn.transfer.config import FinetuneConfig
from tcdn.transfer.images import ImageSet, LabelledData, video_frames
from tcdn.transfer.protocol import run_transfer
from tcdn.transfer.splits import plan_split

log = logging.getLogger("finetune_dev")


def training_pool(data: LabelledData, seed: int, fraction: float) -> LabelledData:
    """``data`` without the videos repeat 0 of the real protocol tests on."""
    tr = data.train
    split = plan_split(
        tr.labels,
        tr.groups,
        None,
        shots=None,
        test_size=None,
        test_fraction=fraction,
        seed=seed,
        repeat=0,
        classes=tr.classes,
    )
    keep = np.setdiff1d(np.arange(len(tr)), split.test)
    successor = tr.successor

    def read(rows: np.ndarray) -> np.ndarray:
        return tr.read(keep[rows])

    def after(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert successor is not None
        return successor(keep[rows])

    assert tr.groups is not None
    pool = ImageSet(
        tr.labels[keep],
        tr.classes,
        [tr.names[i] for i in keep],
        read,
        tr.size,
        groups=tr.groups[keep],
        group_names=tr.group_names,
        successor=after if successor is not None else None,
    )
    return LabelledData(data.dataset, data.source, pool, None)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("videos")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--test-fraction", type=float, default=0.44)
    p.add_argument("--val-fraction", type=float, default=0.4)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--protocols", default="finetune")
    p.add_argument("--set", action="append", default=[], help="NAME=key=value,key=value")
    p.add_argument("--only-trained", action="store_true", help="skip the random init")
    a = p.parse_args()
    if a.only_trained:  # transferred_lr and bn do not touch a random init: it need not run
        import tcdn.transfer.protocol as protocol

        protocol.INITS = ("trained",)
    logging.basicConfig(level=logging.WARNING)
    ckpt = checkpoint_of(a.checkpoint)
    assert ckpt is not None
    frames = open_collection(a.videos, int(ckpt["config"]["image_size"]), progress=False)
    dev = training_pool(video_frames(frames, a.videos), 0, a.test_fraction)
    base = FinetuneConfig(
        dataset="videos",
        shots=a.shots,
        test_fraction=a.val_fraction,
        repeats=a.repeats,
        protocols=tuple(a.protocols.split(",")),
    )
    for spec in a.set or ["default="]:
        name, _, opts = spec.partition("=")
        kv = {}
        for item in filter(None, opts.split(",")):
            k, _, v = item.partition("=")
            field = type(getattr(base, k))
            kv[k] = v if field is str else field(v)
        cfg = replace(base, **kv)
        res = run_transfer(dev, ckpt, cfg, a.out / name, progress=False)
        rows = {
            f"{src}/{proto}": [round(v, 1) for v in e["accuracy_values"]]
            for src, per in res["results"].items()
            for proto, e in per.items()
        }
        losses = {
            d.name: round(
                json.loads((d / "result.json").read_text())["history"][-1]["train_loss"], 3
            )
            for d in sorted((a.out / name / "runs").glob("*"))
        }
        print(
            json.dumps({"name": name, "options": kv, "val": rows, "last_train_loss": losses}),
            flush=True,
        )


if __name__ == "__main__":
    main()
