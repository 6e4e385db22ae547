"""An experiment of the paper as one YAML file, run with one command (``tcdn run CONFIG
--data-root DIR``): ingest the training split, train, ingest the evaluation split, discover,
write the results and the report. ``configs/paper/`` holds one file per experiment.

A config has three sections::

    name: ucf101-lq-fc6
    paper: {table: "1", row: "AlexNet with Lq fc6", kmeans: "3.56 ± 0.01", spectral: "3.39 ± 0.01"}
    train:                      # the data to learn from, then any TrainConfig field
      dataset: ucf101           # a reader of tcdn.data.datasets, or "folder" (a plain collection)
      root: ucf101              # its folder under --data-root
      split: train
      run: ucf101-lq            # the run folder (OUT/runs/NAME): experiments that name the same
                                # run share its training (e.g. fc6 and fc7)
      loss: lq
    discover:                   # the data to discover in, then how
      dataset: ucf101
      root: ucf101
      split: test
      stride: 5
      layer: fc6
      methods: [kmeans, spectral]

Instead of ``discover`` (or besides it), a ``finetune`` section chains transfer (SPEC §6, Tables
4-6): the trained network initialises a classifier fine-tuned on labelled images, against a
random init (``tcdn finetune``)::

    finetune:
      dataset: voc_action       # a layout of tcdn.transfer.images (cifar10, voc_action, videos...)
      root: VOCdevkit           # its folder under --data-root
      shots: 5                  # then any FinetuneConfig field
      test_size: 2000

Its results go to ``OUT/results/NAME/`` (``OUT/results/NAME/finetune/`` beside discovery).

Data keys of both sections: ``dataset``, ``root``, ``split``, ``fold``, ``clips``, ``stride``,
``fps``, ``max_frames``, ``storage``. Everything else under ``train`` is a
:class:`~tcdn.training.TrainConfig` field; under ``discover``: ``sources``, ``methods``,
``layer``, ``repeats``, ``random_inits``, ``seed``, ``k``, ``frame_stride``, ``max_per_video``, ``level``.
Frame stores go to ``OUT/stores/`` (one per dataset, split and decode settings, shared and
resumed), runs to ``OUT/runs/`` (resumed), results and the report to ``OUT/results/NAME/``.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tcdn.data.collection import find_videos
from tcdn.data.datasets import DATASETS, read_dataset
from tcdn.data.decode import DecodeSettings
from tcdn.data.frameset import FrameSet
from tcdn.data.store import StoreSettings, ingest, open_store
from tcdn.discovery.config import DiscoverConfig
from tcdn.errors import TcdnError
from tcdn.training.config import TrainConfig, parse_overrides

log = logging.getLogger(__name__)

DATA_KEYS = ("dataset", "root", "split", "fold", "clips", "stride", "fps", "max_frames", "storage")
DISCOVER_KEYS = tuple(f.name for f in dataclasses.fields(DiscoverConfig))
TOP_KEYS = ("name", "paper", "hardware", "train", "discover", "finetune")
#: the data keys of a finetune section (the rest are FinetuneConfig fields)
FINETUNE_DATA_KEYS = ("root", "labels", "max_frames")


@dataclass(frozen=True)
class FinetuneSpec:
    """A ``finetune`` section: the labelled images (``config.dataset``'s layout at ``root``
    under ``--data-root``) and the transfer options."""

    root: str
    config: Any  # a tcdn.transfer.config.FinetuneConfig
    labels: str | None = None
    max_frames: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> FinetuneSpec:
        from tcdn.transfer.config import FinetuneConfig

        data = dict(data or {})
        if "root" not in data or "dataset" not in data:
            raise TcdnError(f"{where}, finetune: needs a dataset and its root folder")
        spec = {k: data.pop(k) for k in FINETUNE_DATA_KEYS if k in data}
        if "protocols" in data:
            data["protocols"] = tuple(data["protocols"])
        try:
            config = FinetuneConfig.from_dict(data)
        except TcdnError as exc:
            raise TcdnError(f"{where}, finetune: {exc}") from None
        return cls(config=config, **spec)


@dataclass(frozen=True)
class DataSpec:
    """Where a section's videos are (a dataset's split, under ``--data-root``) and how they are
    stored."""

    dataset: str
    root: str
    split: str | None = None
    fold: int = 1
    clips: int | None = None
    stride: int = 1
    fps: float | None = None
    max_frames: int | None = None
    storage: str = "jpeg"

    def __post_init__(self) -> None:
        if self.dataset != "folder" and self.dataset not in DATASETS:
            raise TcdnError(
                f"dataset {self.dataset!r} is unknown: use one of {', '.join(DATASETS)} or folder"
            )

    def entries(self, data_root: Path) -> Any:
        root = data_root / self.root
        if not root.is_dir():
            raise TcdnError(
                f"{root} does not exist: --data-root must hold the {self.dataset} folder "
                f"{self.root!r} in its official layout"
            )
        if self.dataset == "folder":
            return find_videos(root)
        return read_dataset(self.dataset, root, split=self.split, fold=self.fold, clips=self.clips)

    def store_name(self, size: int) -> str:
        every = f"fps{self.fps:g}" if self.fps else f"stride{self.stride}"
        cap = f"-max{self.max_frames}" if self.max_frames else ""
        clips = f"-clips{self.clips}" if self.clips else ""
        part = self.split or "all"
        return f"{self.root}-{part}{self.fold if self.dataset != 'folder' else ''}{clips}-{size}px-{every}{cap}-{self.storage}"


@dataclass(frozen=True)
class Experiment:
    """One experiment: its name, what the paper reports, the training and the discovery."""

    name: str
    paper: dict[str, Any]
    hardware: str
    train_data: DataSpec
    run: str
    train: TrainConfig
    discover_data: DataSpec | None
    discover: DiscoverConfig | None
    finetune: FinetuneSpec | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> Experiment:
        if not isinstance(data, dict):
            raise TcdnError(f"{where} must hold a mapping with {', '.join(TOP_KEYS)}")
        unknown = sorted(set(data) - set(TOP_KEYS))
        if unknown:
            raise TcdnError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(TOP_KEYS)}"
            )
        for key in ("name", "train"):
            if key not in data:
                raise TcdnError(f"{where} has no {key!r}")
        if "discover" not in data and "finetune" not in data:
            raise TcdnError(f"{where} has neither 'discover' nor 'finetune': name what to do")
        train = dict(data["train"] or {})
        disc = dict(data.get("discover") or {})
        from tcdn.outputs import check_folder_name

        check_folder_name(data["name"], f"{where}: experiment")
        run = check_folder_name(str(train.pop("run", data["name"])), f"{where}: train.run")
        try:
            train_data = DataSpec(**{k: train.pop(k) for k in DATA_KEYS if k in train})
            discover_data = (
                DataSpec(**{k: disc.pop(k) for k in DATA_KEYS if k in disc})
                if "discover" in data
                else None
            )
        except TypeError as exc:
            raise TcdnError(
                f"{where}: train and discover each need a dataset and its root folder ({exc})"
            ) from None
        unknown = sorted(set(disc) - set(DISCOVER_KEYS))
        if unknown:
            raise TcdnError(
                f"{where}: unknown discover option(s) {', '.join(unknown)}; known: "
                f"{', '.join(DATA_KEYS + DISCOVER_KEYS)}"
            )
        try:
            config = TrainConfig.from_dict(train)
        except TcdnError as exc:
            raise TcdnError(f"{where}, train: {exc}") from None
        if "sources" in disc and disc["sources"] is not None:
            disc["sources"] = tuple(disc["sources"])
        if "methods" in disc:
            disc["methods"] = tuple(disc["methods"])
        return cls(
            name=str(data["name"]),
            paper=dict(data.get("paper") or {}),
            hardware=str(data.get("hardware") or ""),
            train_data=train_data,
            run=run,
            train=config,
            discover_data=discover_data,
            discover=DiscoverConfig(**disc) if discover_data is not None else None,
            finetune=(
                FinetuneSpec.from_dict(data["finetune"], where) if "finetune" in data else None
            ),
        )


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read an experiment YAML; ``overrides`` are ``SECTION.KEY=VALUE`` (``train.steps=2``,
    ``discover.repeats=1``, values read as YAML) applied before it is checked."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TcdnError(f"cannot read the experiment {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TcdnError(f"{path} must hold a mapping with {', '.join(TOP_KEYS)}")
    form = "SECTION.OPTION=VALUE (SECTION: train, discover or finetune), e.g. --set train.steps=2"
    for key, value in parse_overrides(overrides or [], form).items():
        section, dot, option = key.partition(".")
        if not dot or section not in ("train", "discover", "finetune") or not option:
            raise TcdnError(
                f"--set {key}=...: write train.OPTION=VALUE, discover.OPTION=VALUE or "
                "finetune.OPTION=VALUE"
            )
        data.setdefault(section, {})[option] = value
    return Experiment.from_dict(data, str(path))


def _store(
    spec: DataSpec, data_root: Path, stores: Path, size: int, workers: int, progress: bool
) -> FrameSet:
    out = stores / spec.store_name(size)
    settings = StoreSettings(
        decode=DecodeSettings.make(
            size, stride=spec.stride, fps=spec.fps, max_frames=spec.max_frames
        ),
        storage=spec.storage,
    )
    ingest(
        spec.entries(data_root),
        out,
        settings,
        workers=workers,
        source=str(data_root / spec.root),
        progress=progress,
    )
    return open_store(out)


def run_experiment(
    exp: Experiment,
    data_root: str | Path,
    out: str | Path,
    *,
    device: str = "cpu",
    workers: int = 1,
    progress: bool = True,
    report: bool = True,
) -> dict[str, Any]:
    """Ingest, train (resuming ``OUT/runs/RUN``), ingest the evaluation split, discover and write
    ``OUT/results/NAME/`` (results.json with the paper's numbers beside, clusters.csv,
    videos.csv, report.html). Returns the results."""
    from tcdn.discovery.pipeline import discover_collection
    from tcdn.discovery.results import write_results
    from tcdn.report.prepare import write_report
    from tcdn.training.checkpoint import list_checkpoints, load_checkpoint
    from tcdn.training.run import train

    data_root, out = Path(data_root), Path(out)
    if not data_root.is_dir():
        raise TcdnError(
            f"--data-root {data_root} is not a folder: give the folder holding the datasets"
        )
    if out.exists() and not out.is_dir():
        raise TcdnError(f"--out {out} is a file: give a folder")
    stores = out / "stores"
    size = exp.train.image_size
    log.info("%s: training data %s, run %s", exp.name, exp.train_data.store_name(size), exp.run)
    frames = _store(exp.train_data, data_root, stores, size, workers, progress)
    run = out / "runs" / exp.run
    resume = bool(list_checkpoints(run))  # shared between experiments, and resumable
    if resume:
        log.info("%s: continuing the run %s", exp.name, run)
    ckpt = train(frames, exp.train, run, resume=resume, device=device, progress=progress)
    results_dir = out / "results" / exp.name
    tuned = None
    if exp.finetune is not None:
        where = results_dir / "finetune" if exp.discover is not None else results_dir
        tuned = _finetune(exp, ckpt, data_root, where, device=device, progress=progress)
    if exp.discover is None or exp.discover_data is None:
        assert tuned is not None
        return tuned
    test = _store(exp.discover_data, data_root, stores, size, workers, progress)
    found = discover_collection(
        test, load_checkpoint(ckpt), exp.discover, device=device, progress=progress
    )
    found.results["collection"] = str(data_root / exp.discover_data.root)
    found.results["experiment"] = {"name": exp.name, "paper": exp.paper, "hardware": exp.hardware}
    if tuned is not None:
        found.results["finetune"] = str(results_dir / "finetune" / "results.json")
    write_results(results_dir, found.clustered, found.results, found.assignments)
    if report:
        write_report(results_dir, found, test, seed=exp.discover.seed)
    return found.results


def _finetune(
    exp: Experiment, ckpt: Path, data_root: Path, where: Path, *, device: str, progress: bool
) -> dict[str, Any]:
    """The ``finetune`` section: ``tcdn finetune`` of the trained network, resumed where its
    runs stopped; ``results.json`` with the paper's numbers beside."""
    from tcdn.transfer.results import write_results
    from tcdn.transfer.run import finetune

    spec = exp.finetune
    assert spec is not None
    root = data_root / spec.root
    if not root.exists():
        raise TcdnError(
            f"{root} does not exist: --data-root must hold the {spec.config.dataset} folder "
            f"{spec.root!r} in its official layout"
        )
    labels = data_root / spec.labels if spec.labels else None
    log.info("%s: fine-tuning on %s (%s)", exp.name, root, spec.config.dataset)
    results = finetune(
        root,
        ckpt,
        spec.config,
        where,
        labels=labels,
        max_frames=spec.max_frames,
        resume=(where / "runs").is_dir(),
        device=device,
        progress=progress,
    )
    results["experiment"] = {"name": exp.name, "paper": exp.paper, "hardware": exp.hardware}
    write_results(where, results)
    return results
