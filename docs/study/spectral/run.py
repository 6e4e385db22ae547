"""The spectral-regularisation study (docs/study/spectral-rule.md): every feature source of issue
19's round-4 table, re-clustered by spectral clustering of the video graph at each regularisation
``c`` of the rule (``tau = c x`` the graph's mean degree), by tcdn's own code.

    python docs/study/spectral/run.py SWEEP_FOLDER SET OUT.jsonl [regularization|floor|floor-conv5]

SWEEP_FOLDER: a ``tcdn sweep`` folder of the readout rounds (its ``spec.json``, its ``cells/``
checkpoints and its synthetic ``data/``); SET one of its data sets. Appends one JSON line per
(feature source, training seed or network, c) to OUT.jsonl and skips lines already there, so an
interrupted run goes on where it stopped. c = 0 reproduces the sweep's own spectral scores (the
line's ``sweep_ce``: the mean the sweep wrote, for the check).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from tcdn.data import open_collection
from tcdn.discovery import cluster
from tcdn.discovery import graph as graph_module
from tcdn.discovery.cluster import affinity_graph, estimate_k_eigengap, working_space
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.evaluate import score_clusterings
from tcdn.features.extract import FrameFeaturizer
from tcdn.sweep.spec import architecture_key
from tcdn.training import TrainConfig, load_checkpoint

# each study's arms: the module constant it sets, and its values (the first is main's)
STUDIES = {
    "regularization": (cluster, "SPECTRAL_REGULARIZATION", (0.0, 0.03, 0.1, 0.3, 1.0)),
    "floor": (graph_module, "SCALE_FLOOR", (0.0, 0.5, 1.0)),
    "floor-conv5": (graph_module, "SCALE_FLOOR", (0.0, 0.5)),  # the confirmation, on conv5
}
# round 4's eight trained readouts (recipe, layer, norm) and the baselines of the table
TRAINED = [
    ("motion", "fc6", None),
    ("motion", "fc6", "l2"),
    ("appearance_aug", "fc6", None),
    ("appearance_aug", "fc6", "l2"),
    ("two_stream_aug", "fc6", None),
    ("appearance_crop", "fc6", "l2"),
    ("appearance_t05", "fc6", "l2"),
    ("two_stream_t05", "fc6", None),
]
# random init of each of the three architectures (the recipe whose seed-0 checkpoint gives it),
# at round 2's readouts: the first five trained readouts above
RANDOM = TRAINED[:5]
# the confirmation's units (floor-conv5): round 1 of the readout's conv5 readouts, which no
# discovery round had scored: the three recipes trained, and their architectures' random init
CONV5 = [
    ("motion", "conv5", None),
    ("appearance_aug", "conv5", None),
    ("two_stream_aug", "conv5", None),
]
log = logging.getLogger("spectral-study")


def main(sweep: Path, name: str, out: Path, study: str = "regularization") -> None:
    module, constant, ARMS = STUDIES[study]
    main_value = getattr(module, constant)
    spec = json.loads((sweep / "spec.json").read_text())
    d = spec["datasets"][name]
    videos = d["videos"] if d["synthetic"] is None else sweep / "data" / name
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["source"], r["recipe"], r["layer"], r["norm"], r["seed"], r["c"]))
    trained, random = (CONV5, CONV5) if study == "floor-conv5" else (TRAINED, RANDOM)
    jobs = [("trained", r, la, no, s) for r, la, no in trained for s in range(spec["train_seeds"])]
    jobs += [("random_init", r, la, no, 0) for r, la, no in random]
    if study != "floor-conv5":
        jobs += [("raw_pixels", "motion", "fc6", None, 0)]
    frames = None
    for source, recipe, layer, norm, seed in jobs:
        if all((source, recipe, layer, norm, seed, c) in done for c in ARMS):
            continue
        run = sweep / "cells" / recipe / name / f"seed{seed}" / "run"
        ckpt = load_checkpoint(run)
        if frames is None:
            frames = open_collection(videos, int(ckpt["config"]["image_size"]), progress=False)
        scoring = f"frame@{layer}" + (f"+{norm}" if norm else "")
        config = DiscoverConfig(
            sources=(source,),
            methods=("spectral",),
            repeats=spec["repeats"],
            layer=layer,
            norm=norm,
            frame_stride=d["frame_stride"],
            max_per_video=d["max_per_video"],
            groups=d["groups"],
        )
        featurizer = FrameFeaturizer(
            frames,
            frames.rows(config.frame_stride, config.max_per_video),
            ckpt,
            layer=layer,
            norm=norm,
            seed=0,
            progress=False,
        )
        index = featurizer.index
        labels = index.label_codes()
        k = len(index.class_names)
        groups = {g: np.asarray(v) for g, v in config.group_values(index.video.tolist()).items()}
        repeats = config.random_init_repeats if source == "random_init" else config.repeats
        t0 = time.perf_counter()
        cache: dict[int, np.ndarray] = {}

        def feats(r: int, source=source, cache=cache, featurizer=featurizer) -> np.ndarray:
            key = r if source == "random_init" else 0
            if key not in cache:
                cache[key] = featurizer.features(source, key)
            return cache[key]

        feats(0)
        extract_s = time.perf_counter() - t0
        sweep_ce = _sweep_ce(spec, sweep, name, source, recipe, seed, scoring)
        for c in ARMS:
            if (source, recipe, layer, norm, seed, c) in done:
                continue
            setattr(module, constant, c)
            t1 = time.perf_counter()
            score = score_clusterings(
                feats,
                labels,
                k=k,
                methods=("spectral",),
                repeats=repeats,
                random_state=0,
                estimate_k=False,
                groups=groups,
                videos=index.video,
            )["spectral"]
            space = working_space(feats(0))
            graph = affinity_graph(space, videos=index.video)
            k_gap = estimate_k_eigengap(space, max_k=max(2 * k, 10), graph=graph)[0]
            line = {
                "set": name,
                "source": source,
                "recipe": recipe,
                "layer": layer,
                "norm": norm,
                "seed": seed,
                "c": c,
                "study": study,
                "regularization": cluster.SPECTRAL_REGULARIZATION,
                "floor": graph_module.SCALE_FLOOR,
                "ce": score.values,
                "ce_mean": float(np.mean(score.values)),
                **{f"{n}_mean": float(np.mean(v)) for n, v in score.others.items()},
                "k": k,
                "k_eigengap": k_gap,
                "n_rows": len(labels),
                "components": score.graph_components,
                "sweep_ce": sweep_ce,
                "seconds": time.perf_counter() - t1,
                "extract_seconds": extract_s,
            }
            with out.open("a") as f:
                f.write(json.dumps(line) + "\n")
            log.info(
                "%s %s %s/%s seed %d c=%g: %.3f (sweep %s) in %.1f s",
                name,
                source,
                recipe,
                scoring,
                seed,
                c,
                line["ce_mean"],
                sweep_ce,
                line["seconds"],
            )
        setattr(module, constant, main_value)


def _sweep_ce(spec, sweep, name, source, recipe, seed, scoring):
    """The spectral CE mean the sweep wrote for this source, or None where it wrote none."""

    if source == "trained":
        path = sweep / "cells" / recipe / name / f"seed{seed}" / f"{scoring}.json"
    else:
        key = "64px"
        if source == "random_init":
            key = "random_init-" + architecture_key(
                TrainConfig.from_dict(spec["recipes"][recipe]["config"])
            )
        path = sweep / "baselines" / name / f"{scoring}-{key}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())["results"][source]["spectral"]["ce_mean"]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("tcdn").setLevel(logging.WARNING)
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), *sys.argv[4:5])
