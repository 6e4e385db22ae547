"""Running a sweep: every cell (recipe x data set x training seed) trains, extracts, clusters and
scores exactly as ``tcdn train`` and ``tcdn discover`` do; the baselines run once per data set.

Layout of a sweep folder::

    DIR/spec.json                                   the recipes and data sets, as run
    DIR/data/<dataset>/                             synthetic videos, when a set is synthetic
    DIR/cells/<recipe>/<dataset>/seed<S>/run/       the training run (checkpoints, log.jsonl)
    DIR/cells/<recipe>/<dataset>/seed<S>/<scoring>.json its discovery (results.json format) at
                                                    each scoring: a level (``frame``), with a
                                                    layer and a norm (``frame@conv5``,
                                                    ``frame@fc6+l2``)
    DIR/cells/<recipe>/<dataset>/seed<S>/curve/     with ``curve:``, the run continued (run/)
                                                    and scored at each step count
                                                    (<scoring>-step<N>.json)
    DIR/baselines/<dataset>/<scoring>-<key>.json     random init (per architecture), raw pixels
                                                    and random assignment (per frame size)
    DIR/table.csv, table.json, summary.md, curves-<dataset>.png, learning-curve.png

A cell is done when its results files exist; a killed sweep run again skips finished cells and
resumes an interrupted training from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tcdn import runlock
from tcdn.data.frameset import FrameSet
from tcdn.data.load import open_collection
from tcdn.data.synthetic import generate
from tcdn.discovery.config import RANDOM_ASSIGNMENT
from tcdn.discovery.pipeline import discover_collection
from tcdn.errors import TcdnError
from tcdn.outputs import check_output_folder, claim_folder, refuse_links
from tcdn.sweep.layout import SPEC_FILE, Cell, baseline_path, is_done, write_json
from tcdn.sweep.spec import DatasetSpec, SweepSpec, architecture_key, recipe_key
from tcdn.sweep.table import write_outputs
from tcdn.training.checkpoint import checkpoint_step, list_checkpoints, load_checkpoint
from tcdn.training.config import TrainConfig
from tcdn.training.run import train

log = logging.getLogger(__name__)

#: the kind of folder a sweep is, in its marker file (:func:`tcdn.outputs.claim_folder`)
SWEEP_KIND = "sweep"


def run_sweep(
    spec: SweepSpec, out_dir: str | Path, *, device: str = "cpu", progress: bool = True
) -> list[dict[str, Any]]:
    """Run every cell of ``spec`` not yet done in ``out_dir``, then write the table; return its rows."""
    out = check_output_folder(
        out_dir, SWEEP_KIND, recognise=lambda p: (p / SPEC_FILE).is_file(), what="sweep"
    )
    refuse_links(out, ("cells", "baselines"))  # tcdn's own folders: never a link elsewhere
    with runlock.hold(out):
        claim_folder(out, SWEEP_KIND)
        return _run_sweep(spec, out, device, progress)


def _run_sweep(spec: SweepSpec, out: Path, device: str, progress: bool) -> list[dict[str, Any]]:
    _check_layers(spec)
    _check_spec_file(out, spec)
    cells = [
        Cell(r, d, s) for d in spec.datasets for r in spec.recipes for s in range(spec.train_seeds)
    ]
    baselines = _baseline_jobs(spec)
    curves = [c for c in cells if c.seed < spec.curve_seeds] if spec.curve_steps else []
    total = len(cells) + len(baselines) + len(curves)
    bar = tqdm(total=total, desc="sweep", unit="cell", disable=not progress)
    try:
        for name, dataset in spec.datasets.items():
            loader = _Frames(dataset, out, progress)
            for cell in (c for c in cells if c.dataset == name):
                bar.set_postfix_str(f"{cell.recipe} / {cell.dataset} / seed {cell.seed}")
                _run_cell(spec, cell, dataset, loader, out, device)
                bar.update(1)
            for job in (j for j in baselines if j.dataset == name):
                bar.set_postfix_str(f"baselines / {name} / {job.key}")
                _run_baseline(spec, job, dataset, loader, out, device)
                bar.update(1)
            for cell in (c for c in curves if c.dataset == name):
                bar.set_postfix_str(f"curve / {cell.recipe} / {cell.dataset} / seed {cell.seed}")
                _run_curve(spec, cell, dataset, loader, out, device)
                bar.update(1)
    finally:
        bar.close()
    return write_outputs(spec, out)


def _check_spec_file(out: Path, spec: SweepSpec) -> None:
    """Record the recipes run in ``out``; refuse a folder that holds other recipes of the same names."""
    path = out / SPEC_FILE
    mine: dict[str, Any] = {
        "recipes": {
            name: {"key": recipe_key(cfg), "config": cfg.to_dict()}
            for name, cfg in spec.recipes.items()
        },
        "datasets": {
            name: {
                k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(d).items()
            }
            for name, d in spec.datasets.items()
        },
        "train_seeds": spec.train_seeds,
        "methods": list(spec.methods),
        "repeats": spec.repeats,
        "levels": list(spec.levels),
        "layers": list(spec.layers),
        "norms": list(spec.norms),
    }
    if path.is_file():
        old = json.loads(path.read_text())
        for name, rec in mine["recipes"].items():
            prev = old.get("recipes", {}).get(name)
            if prev is not None and prev["key"] != rec["key"]:
                changed = sorted(k for k, v in rec["config"].items() if prev["config"].get(k) != v)
                raise TcdnError(
                    f"{out} holds results of another recipe named {name!r} (it differs in "
                    f"{', '.join(changed)}): give the changed recipe a new name, or another --out"
                )
        for key in ("methods", "repeats", "levels"):
            if key in old and old[key] != mine[key]:
                raise TcdnError(
                    f"{out} holds results with discover {key}={old[key]}, the spec asks for "
                    f"{mine[key]}: use another --out"
                )
        mine["recipes"] = {**old.get("recipes", {}), **mine["recipes"]}
        mine["datasets"] = {**old.get("datasets", {}), **mine["datasets"]}
        mine["train_seeds"] = max(int(old.get("train_seeds", 0)), spec.train_seeds)
        for key in ("layers", "norms"):  # every layer and norm scored here, in order
            mine[key] = list(dict.fromkeys([*old.get(key, [None]), *mine[key]]))
    write_json(path, mine)


def _check_layers(spec: SweepSpec) -> None:
    """Refuse, before anything runs, a ``layers`` entry some recipe's network does not have."""
    if spec.layers == (None,):
        return
    for name, cfg in spec.recipes.items():
        model = cfg.build_model()
        for layer in spec.layers:
            if layer is not None and layer not in model.layer_names:
                raise TcdnError(
                    f"sweep spec: discover: layers: recipe {name}'s network ({cfg.model}) has no "
                    f"layer {layer!r}; it has {', '.join(model.layer_names)}"
                )


class _Frames:
    """A data set's frames at each size a recipe asks for, decoded once."""

    def __init__(self, dataset: DatasetSpec, out: Path, progress: bool) -> None:
        self.dataset, self.out, self.progress = dataset, out, progress
        self.cache: dict[int, FrameSet] = {}

    def at(self, size: int) -> FrameSet:
        if size not in self.cache:
            d = self.dataset
            videos = d.videos
            if d.synthetic is not None:
                videos = self.out / "data" / d.name
                generate(videos, d.synthetic_config(), progress=self.progress)
            assert videos is not None
            self.cache = {size: open_collection(videos, size, labels_csv=d.labels, progress=False)}
        return self.cache[size]


def _cell_config(spec: SweepSpec, cell: Cell) -> TrainConfig:
    return dataclasses.replace(spec.recipes[cell.recipe], seed=cell.seed)


def _run_cell(
    spec: SweepSpec, cell: Cell, dataset: DatasetSpec, loader: _Frames, out: Path, device: str
) -> None:
    folder = cell.folder(out)
    key = recipe_key(spec.recipes[cell.recipe])
    todo = [sc for sc in spec.scorings if not is_done(folder / f"{sc}.json", key)]
    if not todo:
        return
    cfg = _cell_config(spec, cell)
    frames = loader.at(cfg.image_size)
    log.info("sweep: training %s on %s, seed %d", cell.recipe, cell.dataset, cell.seed)
    run = folder / "run"
    ckpt = load_checkpoint(
        train(frames, cfg, run, resume=bool(list_checkpoints(run)), device=device, progress=False)
    )
    for scoring in todo:
        config = spec.discover_config(dataset, scoring, ("trained",))
        results = discover_collection(frames, ckpt, config, device=device, progress=False).results
        results["sweep"] = {**dataclasses.asdict(cell), "recipe_key": key}
        write_json(folder / f"{scoring}.json", results)


def _run_curve(
    spec: SweepSpec, cell: Cell, dataset: DatasetSpec, loader: _Frames, out: Path, device: str
) -> None:
    """The learning curve of one cell: its run continued (exactly, from its last checkpoint) to
    each of ``spec.curve_steps`` in turn, each checkpoint scored as the cell is."""
    key = recipe_key(spec.recipes[cell.recipe])
    run = cell.folder(out) / "curve" / "run"
    for steps in spec.curve_steps:
        todo = [sc for sc in spec.scorings if not is_done(cell.curve_path(out, sc, steps), key)]
        if not todo:
            continue
        cfg = dataclasses.replace(_cell_config(spec, cell), steps=steps)
        frames = loader.at(cfg.image_size)
        existing = list_checkpoints(run)
        at = checkpoint_step(existing[-1]) if existing else None
        if at is not None and at > steps:
            raise TcdnError(
                f"{run} went past step {steps} (it is at {at}) before that step was scored: "
                f"move {run} aside to train the curve again"
            )
        if at != steps:
            log.info(
                "sweep: learning curve of %s on %s, seed %d: training on to step %d",
                *(cell.recipe, cell.dataset, cell.seed, steps),
            )
            start: bool | dict[str, Any] = True
            if at is None:  # the first stretch continues the cell's own run
                start = load_checkpoint(cell.folder(out) / "run")
            train(frames, cfg, run, resume=start, device=device, progress=False)
        ckpt = load_checkpoint(run)
        for scoring in todo:
            config = spec.discover_config(dataset, scoring, ("trained",))
            results = discover_collection(
                frames, ckpt, config, device=device, progress=False
            ).results
            results["sweep"] = {**dataclasses.asdict(cell), "recipe_key": key, "steps": steps}
            write_json(cell.curve_path(out, scoring, steps), results)


@dataclasses.dataclass(frozen=True)
class _BaselineJob:
    dataset: str
    key: str  # "<size>px" for raw pixels and random assignment, "random_init-<arch>" otherwise
    sources: tuple[str, ...]
    recipe: str  # a recipe whose checkpoint gives the architecture and the frame size


def _baseline_jobs(spec: SweepSpec) -> list[_BaselineJob]:
    if not spec.baselines:
        return []
    jobs: dict[tuple[str, str], _BaselineJob] = {}
    for d in spec.datasets:
        for r, cfg in spec.recipes.items():
            fixed = _BaselineJob(d, f"{cfg.image_size}px", ("raw_pixels", RANDOM_ASSIGNMENT), r)
            arch = _BaselineJob(d, f"random_init-{architecture_key(cfg)}", ("random_init",), r)
            for job in (fixed, arch):
                jobs.setdefault((d, job.key), job)
    return list(jobs.values())


def _run_baseline(
    spec: SweepSpec,
    job: _BaselineJob,
    dataset: DatasetSpec,
    loader: _Frames,
    out: Path,
    device: str,
) -> None:
    todo = [
        scoring
        for scoring in spec.scorings
        if not baseline_path(out, job.dataset, scoring, job.key).is_file()
    ]
    if not todo:
        return
    # the recipe's first training seed gives the architecture (and the input mean) of random_init
    cell = Cell(job.recipe, job.dataset, 0)
    ckpt = load_checkpoint(cell.folder(out) / "run")
    frames = loader.at(int(ckpt["config"]["image_size"]))
    for scoring in todo:
        config = spec.discover_config(dataset, scoring, job.sources)
        results = discover_collection(frames, ckpt, config, device=device, progress=False).results
        results["sweep"] = {"dataset": job.dataset, "baseline": job.key}
        write_json(baseline_path(out, job.dataset, scoring, job.key), results)
