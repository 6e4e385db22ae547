"""What a recipe study runs: training recipes x data sets x training seeds, read from one YAML.

A sweep spec (``tcdn sweep SPEC.yaml --out DIR``)::

    base: ../configs/demo-lq-64px.yaml   # optional: a TrainConfig YAML every recipe starts from
    train: {steps: 400}                  # optional: options every recipe shares
    recipes:                             # name -> TrainConfig options over base + train
      shipped: {}
      paper: {normalize: false, squared: false}
    datasets:                            # name -> where its videos are and how to score it
      weizmann4:
        videos: ../../shared/data/weizmann4/videos    # a folder or a frame store
        groups: {performer: "_(\\d+)\\.mp4$"}          # score the clusters against it too
      demo:
        synthetic: {seed: 0}             # `tcdn generate` options; written under DIR/data/
        frame_stride: 2
    train_seeds: 3                       # independently trained networks per recipe and set
    discover: {methods: [kmeans, spectral], repeats: 10, levels: [frame], baselines: true}
    # optional: discover's --layer and --norm, one scoring per layer x norm (default: each
    # network's own layer, not normalised)
    # discover: {..., layers: [fc6, conv5], norms: [none, l2]}
    curve: {steps: [1000, 3000], seeds: 1}  # optional: a learning curve (below)

``curve`` continues the run of each recipe's first ``seeds`` training seeds on every set to each
step count in turn (the checkpoints of one run, resumed exactly) and scores every checkpoint as
the cell is scored: the learning curve, at the recipe's own ``steps`` and at each count.

Each cell is scored once per *scoring*: a level, and with ``layers`` a layer read at that level,
with ``norms`` a normalisation of the features (:meth:`SweepSpec.scorings`). A scoring is named
``frame`` (the network's own feature layer, as it is), ``frame@conv5`` or ``frame@fc6+l2``;
results, table rows and summary sections carry that name. The layers and norms are discover's
``--layer`` (every recipe's network must have them) and ``--norm``; the random-init baseline is
read the same way.

Paths are relative to the spec file. This module imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tcdn.data.synthetic import SyntheticConfig
from tcdn.discovery.config import LEVELS, METHODS, NORMS, DiscoverConfig
from tcdn.errors import TcdnError
from tcdn.training.config import TrainConfig


@dataclass(frozen=True)
class DatasetSpec:
    """One data set of a sweep: a collection (``videos``, with optional ``labels``) or
    synthetic videos (``synthetic``: :class:`~tcdn.data.synthetic.SyntheticConfig` options), and
    how its discovery is scored."""

    name: str
    videos: Path | None = None
    labels: Path | None = None
    synthetic: dict[str, Any] | None = None
    frame_stride: int = 1
    max_per_video: int | None = None
    k: int | None = None
    groups: dict[str, str] = field(default_factory=dict)

    def synthetic_config(self) -> SyntheticConfig:
        assert self.synthetic is not None
        try:
            cfg = SyntheticConfig(**self.synthetic)
        except TypeError as exc:
            raise TcdnError(f"dataset {self.name}: synthetic options: {exc}") from None
        cfg.validate()
        return cfg


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep spec (see the module's docstring for the YAML)."""

    recipes: dict[str, TrainConfig]
    datasets: dict[str, DatasetSpec]
    train_seeds: int = 3
    methods: tuple[str, ...] = METHODS
    repeats: int = 10
    levels: tuple[str, ...] = ("frame",)
    layers: tuple[str | None, ...] = (None,)
    norms: tuple[str | None, ...] = (None,)
    baselines: bool = True
    curve_steps: tuple[int, ...] = ()
    curve_seeds: int = 1
    path: Path | None = None

    @property
    def scorings(self) -> tuple[str, ...]:
        """The names of the ways each cell is scored: every level x layer x norm
        (:func:`scoring_name`)."""
        return tuple(
            scoring_name(lv, layer, norm)
            for lv in self.levels
            for layer in self.layers
            for norm in self.norms
        )

    def discover_config(
        self, dataset: DatasetSpec, scoring: str, sources: tuple[str, ...]
    ) -> DiscoverConfig:
        """The discovery of one cell at ``scoring`` (of :attr:`scorings`): the same for every
        recipe and training seed (seed 0)."""
        level, layer, norm = parse_scoring(scoring)
        return DiscoverConfig(
            sources=sources,
            methods=self.methods,
            repeats=self.repeats,
            seed=0,
            layer=layer,
            norm=norm,
            k=dataset.k,
            frame_stride=dataset.frame_stride,
            max_per_video=dataset.max_per_video,
            level=level,
            groups=dataset.groups,
        )

    @classmethod
    def from_yaml(cls, path: str | Path, *, train_seeds: int | None = None) -> SweepSpec:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TcdnError(f"sweep spec {path} does not exist") from None
        except (OSError, yaml.YAMLError) as exc:
            raise TcdnError(f"cannot read sweep spec {path}: {exc}") from None
        if not isinstance(data, dict):
            raise TcdnError(f"sweep spec {path} must hold a mapping (recipes:, datasets:, ...)")
        return cls.from_dict(data, root=path.parent, path=path, train_seeds=train_seeds)

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        root: Path = Path("."),
        path: Path | None = None,
        train_seeds: int | None = None,
    ) -> SweepSpec:
        where = f"sweep spec {path}" if path else "sweep spec"
        known = {"base", "train", "recipes", "datasets", "train_seeds", "discover", "curve"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TcdnError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        base: dict[str, Any] = {}
        if data.get("base"):
            base = TrainConfig.from_yaml(root / str(data["base"])).to_dict()
        base.update(_mapping(data.get("train") or {}, f"{where}: train"))
        recipes_in = _mapping(data.get("recipes"), f"{where}: recipes")
        if not recipes_in:
            raise TcdnError(f"{where}: recipes: give at least one recipe (name: {{options}})")
        recipes = {}
        for name, options in recipes_in.items():
            _check_name(name, f"{where}: recipe")
            merged = {**base, **_mapping(options or {}, f"{where}: recipe {name}")}
            try:
                recipes[name] = TrainConfig.from_dict(merged)
            except TcdnError as exc:
                raise TcdnError(f"{where}: recipe {name}: {exc}") from None
        datasets_in = _mapping(data.get("datasets"), f"{where}: datasets")
        if not datasets_in:
            raise TcdnError(
                f"{where}: datasets: give at least one data set (name: {{videos: DIR}})"
            )
        datasets = {n: _dataset(n, d, root, where) for n, d in datasets_in.items()}
        discover = _mapping(data.get("discover") or {}, f"{where}: discover")
        unknown = sorted(
            set(discover) - {"methods", "repeats", "levels", "layers", "norms", "baselines"}
        )
        if unknown:
            raise TcdnError(f"{where}: discover: unknown key(s) {', '.join(unknown)}")
        seeds = train_seeds if train_seeds is not None else data.get("train_seeds", 3)
        if not isinstance(seeds, int) or seeds < 1:
            raise TcdnError(f"{where}: train_seeds must be a whole number >= 1, got {seeds!r}")
        levels = tuple(discover.get("levels", ("frame",)))
        for level in levels:
            if level not in LEVELS:
                raise TcdnError(
                    f"{where}: discover: levels: {level!r} is not one of {', '.join(LEVELS)}"
                )
        layers = _layers(discover.get("layers"), where)
        norms = _norms(discover.get("norms"), where)
        curve_steps, curve_seeds = _curve(data.get("curve"), recipes, seeds, where)
        spec = cls(
            recipes=recipes,
            datasets=datasets,
            train_seeds=seeds,
            methods=tuple(discover.get("methods", METHODS)),
            repeats=int(discover.get("repeats", 10)),
            levels=levels,
            layers=layers,
            norms=norms,
            baselines=bool(discover.get("baselines", True)),
            curve_steps=curve_steps,
            curve_seeds=curve_seeds,
            path=path,
        )
        for dataset in datasets.values():  # every discovery option is checked now
            for scoring in spec.scorings:
                spec.discover_config(dataset, scoring, ("trained",))
        return spec


def scoring_name(level: str, layer: str | None, norm: str | None = None) -> str:
    """``level`` for a network's own feature layer as it is; ``@layer`` names a layer and
    ``+norm`` a normalisation (e.g. ``frame@conv5``, ``frame+l2``, ``frame@fc6+none``)."""
    return level + ("" if layer is None else f"@{layer}") + ("" if norm is None else f"+{norm}")


def parse_scoring(name: str) -> tuple[str, str | None, str | None]:
    """``(level, layer, norm)`` of a scoring name (:func:`scoring_name`)."""
    rest, _, norm = name.partition("+")
    level, _, layer = rest.partition("@")
    return level, layer or None, norm or None


def scoring_title(name: str) -> str:
    """How a summary heads a scoring: ``frames``, ``frames, conv5 features``, ``frames, fc6
    features, l2``."""
    level, layer, norm = parse_scoring(name)
    parts = [f"{level}s"] + ([f"{layer} features"] if layer else []) + ([norm] if norm else [])
    return ", ".join(parts)


def _layers(value: Any, where: str) -> tuple[str | None, ...]:
    """``discover: layers`` checked: a list of distinct layer names (the networks check that they
    have them before anything runs); absent: the networks' own layer."""
    return _distinct_list(
        value,
        lambda v: isinstance(v, str) and v.isidentifier(),
        f"{where}: discover: layers must be a list of distinct layer names (e.g. [fc6, conv5])",
    )


def _norms(value: Any, where: str) -> tuple[str | None, ...]:
    """``discover: norms`` checked: distinct names of :data:`~tcdn.discovery.config.NORMS`."""
    return _distinct_list(
        value,
        lambda v: v in NORMS,
        f"{where}: discover: norms must be a list of distinct names of {', '.join(NORMS)}",
    )


def _distinct_list(
    value: Any, valid: Callable[[Any], bool], problem: str
) -> tuple[str | None, ...]:
    """``(None,)`` for an absent option, else its distinct valid entries (``problem``, followed
    by the value given, when they are not)."""
    if value is None:
        return (None,)
    if (
        not isinstance(value, list)
        or not value
        or not all(valid(v) for v in value)
        or len(set(value)) != len(value)
    ):
        raise TcdnError(f"{problem}, got {value!r}")
    return tuple(value)


#: options added after sweeps were run, left out of a recipe's key at these (default) values, so
#: that the results of those sweeps still belong to their recipes
_LATER_OPTIONS = {"feature_norm": "none", "cross_stream": 0.0}


def recipe_key(cfg: TrainConfig) -> str:
    """A short hash of a recipe's options: a sweep folder's results belong to one recipe."""
    options = {
        k: v
        for k, v in cfg.to_dict().items()
        if not (k in _LATER_OPTIONS and _LATER_OPTIONS[k] == v)
    }
    text = json.dumps(options, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def architecture_key(cfg: TrainConfig) -> str:
    """A short hash of what decides a randomly initialised network's features (the random-init
    baseline is shared by every recipe with the same architecture)."""
    resolved = cfg.resolved()
    arch = {
        "model": resolved.model,
        "embed_dim": resolved.embed_dim,
        "model_options": resolved.model_options,
        "image_size": resolved.image_size,
    }
    # the options of issue 11 change the network or its input: counted when they are not the
    # defaults, so the keys of earlier sweeps stay as they were
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    names = ["head", "input_norm", "motion", "feature_norm"]
    if resolved.head != "none":
        names += ["head_hidden", "head_dim"]
    arch.update({n: getattr(resolved, n) for n in names if getattr(resolved, n) != defaults[n]})
    return hashlib.sha1(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TcdnError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _curve(
    data: Any, recipes: dict[str, TrainConfig], train_seeds: int, where: str
) -> tuple[tuple[int, ...], int]:
    """``curve: {steps: [...], seeds: N}`` checked: step counts ascending, each beyond every
    recipe's own ``steps``; ``seeds`` at most the sweep's training seeds."""
    curve = _mapping(data, f"{where}: curve")
    if not curve:
        return (), 1
    unknown = sorted(set(curve) - {"steps", "seeds"})
    if unknown:
        raise TcdnError(f"{where}: curve: unknown key(s) {', '.join(unknown)}; known: seeds, steps")
    steps = curve.get("steps")
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
    ):
        raise TcdnError(f"{where}: curve: steps must be a list of step counts, got {steps!r}")
    longest = max(cfg.steps for cfg in recipes.values())
    if sorted(set(steps)) != steps or steps[0] <= longest:
        raise TcdnError(
            f"{where}: curve: steps {steps} must rise, each beyond the recipes' own steps "
            f"({longest}): the curve continues each cell's run"
        )
    seeds = curve.get("seeds", 1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or not 1 <= seeds <= train_seeds:
        raise TcdnError(
            f"{where}: curve: seeds must be a whole number from 1 to train_seeds "
            f"({train_seeds}), got {seeds!r}"
        )
    return tuple(steps), seeds


def _check_name(name: Any, where: str) -> None:
    from tcdn.outputs import check_folder_name

    check_folder_name(name, where)


def _dataset(name: str, data: Any, root: Path, where: str) -> DatasetSpec:
    _check_name(name, f"{where}: dataset")
    options = dict(_mapping(data, f"{where}: dataset {name}"))
    allowed = {f.name for f in fields(DatasetSpec)} - {"name"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TcdnError(
            f"{where}: dataset {name}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )
    if (options.get("videos") is None) == (options.get("synthetic") is None):
        raise TcdnError(f"{where}: dataset {name}: give either videos: DIR or synthetic: {{...}}")
    for key in ("videos", "labels"):
        if options.get(key) is not None:
            options[key] = root / str(options[key])
    spec = DatasetSpec(name=name, **options)
    if spec.synthetic is not None:
        spec.synthetic_config()
    elif spec.videos is not None and not spec.videos.exists():
        raise TcdnError(f"{where}: dataset {name}: {spec.videos} does not exist")
    return spec
