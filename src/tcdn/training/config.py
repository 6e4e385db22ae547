"""The configuration of a training run: one dataclass, validated, saved inside every checkpoint.

:meth:`TrainConfig.from_sources` merges a YAML file, command-line flags and ``--set`` overrides
in one place. This module imports no torch, so the command line can read its choices quickly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tcdn.data.decode import DEFAULT_IMAGE_SIZE, frame_size_problem
from tcdn.errors import TcdnError

if TYPE_CHECKING:
    from tcdn.augment import AppearanceAugment
    from tcdn.models import Backbone

LOSSES = ("lq", "ls", "sfa", "ld", "nce")
SCHEDULES = ("step", "cosine")
AUGMENTS = ("none", "appearance")
#: auto: bfloat16 where it is native and agrees with float32 (tcdn.training.precision), else fp32
PRECISIONS = ("auto", "fp32", "bf16")
#: mean: (x - channel mean) / 255 (the paper's); meanstd: each channel standardised
INPUT_NORMS = ("mean", "meanstd")
#: how discovery (and features, search, the report) read the network's features: as the layer
#: gives them, or each frame's divided by its length (l2)
FEATURE_NORMS = ("none", "l2")
#: none: RGB; diff: RGB + (successor - frame); stack: RGB + successor; diffonly: the difference
#: alone (tcdn.models.input.InputTransform)
MOTIONS = ("none", "diff", "stack", "diffonly")
#: none: the network's own embedding layer; mlp: a projection head replaces it
HEADS = ("none", "mlp")
#: per loss: frames per tuple, embedding size (fc7), tuples per step, margin
LOSS_DEFAULTS: dict[str, tuple[int, int, int, float]] = {
    "lq": (4, 1024, 40, 0.5),  # SPEC §1-§3: 40 quadruplets, α = 0.5, fc7 1024
    "ls": (2, 4096, 120, 1.0),  # 120 pairs, δ = 1, fc7 4096
    "sfa": (2, 4096, 120, 1.0),  # pairs like Ls; m = 1 (Hadsell et al.; the paper gives none)
    # Ld: 40 triplets, the same number of queries per step as Lq (Table 6 compares the two);
    # 1024-d like Lq and Wang & Gupta's embedding; M = 0.5 (SPEC §1)
    "ld": (3, 1024, 40, 0.5),
    # temporal InfoNCE on Lq's quadruplets; it has no margin (the 0.5 is never used)
    "nce": (4, 1024, 40, 0.5),
}
#: options that may change when a run is resumed: they do not change what is learned
RESUMABLE_CHANGES = (
    "steps",
    "threads",
    "log_every",
    "checkpoint_every",
    "keep_last",
    "tensorboard",
    "compile",
    "precision",  # the same method; the arithmetic's rounding differs
    "bf16",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved inside every checkpoint.

    The defaults are the paper's Lq configuration (SPEC §3-§4) with the release's solver.
    Loss-dependent defaults (``None`` here) are filled in by :meth:`resolved` from
    :data:`LOSS_DEFAULTS`.
    """

    loss: str = "lq"  # lq | ls | sfa | ld | nce (temporal InfoNCE, TCE, Knights et al. 2020)
    model: str = "alexnet"
    embed_dim: int | None = None  # fc7: 1024 for lq, ld and nce, 4096 for ls and sfa
    model_options: dict[str, Any] = field(default_factory=dict)
    # none | mlp: Linear(no bias)-BatchNorm-ReLU-Linear replaces the embedding layer (fc7); the
    # loss sees its output, discovery the feature layer below it (fc6)
    head: str = "none"
    head_hidden: int = 1024
    head_dim: int = 256  # the embedding the loss sees, with a head
    input_norm: str = "mean"  # mean: (x - mean) / 255 | meanstd: per-channel mean and std
    motion: str = "none"  # none | diff | stack | diffonly: the frame's successor as input too
    streams: int = 1  # 2 (with motion: diff): appearance and motion each their own network
    # none | l2: each frame's feature divided by its length wherever the features are read
    # (discover, features, search; discover --norm overrides); training does not use it
    feature_norm: str = "none"
    temperature: float = 0.1  # nce: cosine similarities / temperature
    far_positive: bool = True  # nce: the far frame is a second positive
    # nce with streams: 2: weight of the cross-stream term (each stream ranked against the
    # other's frames, after CMC; losses.cross_stream_info_nce); 0: off
    cross_stream: float = 0.0
    image_size: int = DEFAULT_IMAGE_SIZE
    steps: int = 30000
    batch_size: int | None = None  # tuples per step (global): 40 (lq, ld), 120 pairs (ls, sfa)
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.005
    schedule: str = "step"  # step: x lr_gamma every lr_step steps; cosine: to 0 at `steps`
    lr_step: int = 10000  # multiply the learning rate by lr_gamma every lr_step steps
    lr_gamma: float = 0.1
    warmup: int = 0  # steps of linear warm-up from lr / warmup (either schedule)
    grad_clip: float | None = 5.0
    margin: float | None = None  # 0.5 (lq, ld) or 1.0 (ls, sfa)
    window: int = 1  # w: offset of the positive frame
    far: int = 20  # n: offset of the far frame (lq); least distance of an sfa negative
    negative_share: float = 0.5  # share of negative pairs (ls, sfa)
    squared: bool = False  # lq, ls
    normalize: bool = False  # lq, ls, sfa (ld is a cosine distance already)
    mu: bool = False
    augment: str = "none"  # none | appearance: per-frame flip, crop and colour (tcdn.augment)
    aug_flip: float = 0.5
    aug_crop_scale: float = 0.6
    aug_brightness: float = 0.4
    aug_contrast: float = 0.4
    aug_saturation: float = 0.4
    aug_grey: float = 0.2
    aug_hue: float = 0.0  # chroma rotation, in half turns (0: off)
    # auto | fp32 | bf16: bfloat16 autocast of the forward pass (the loss stays float32); auto
    # picks bf16 only where it is native and a short check agrees with fp32 (training/precision.py)
    precision: str = "fp32"
    bf16: bool = False  # the older switch: true means precision bf16
    # NHWC activations: the same results to rounding, about 7% faster for AlexNet at 227x227 and
    # 64x64 on the 2-core CPU (benchmarks/bench_step.py), and the layout torch.compile needs.
    channels_last: bool = True
    compile: bool = (
        False  # torch.compile the network (needs a C compiler on CPU, and channels_last)
    )
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard package)
    seed: int = 0
    checkpoint_every: int = 1000
    keep_last: int = 3
    log_every: int = 10
    threads: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name), str(f.type)))
        self.validate()

    @property
    def tuple_size(self) -> int:
        return LOSS_DEFAULTS[self.loss][0]

    @property
    def asked_precision(self) -> str:
        """``precision``, with the older ``bf16: true`` meaning ``bf16``."""
        return "bf16" if self.bf16 else self.precision

    @property
    def plain_input(self) -> bool:
        """Whether the input is the paper's (RGB minus the channel mean, / 255)."""
        return self.input_norm == "mean" and self.motion == "none"

    def resolved(self) -> TrainConfig:
        """A copy with the loss-dependent defaults filled in."""
        _, embed_dim, batch, margin = LOSS_DEFAULTS[self.loss]
        return dataclasses.replace(
            self,
            embed_dim=self.embed_dim or embed_dim,
            batch_size=self.batch_size or batch,
            margin=self.margin if self.margin is not None else margin,
        )

    def augmenter(self) -> AppearanceAugment | None:
        """The augmentation this config asks for, or ``None``."""
        if self.augment == "none":
            return None
        from tcdn.augment import AppearanceAugment

        return AppearanceAugment(
            flip=self.aug_flip,
            crop_scale=self.aug_crop_scale,
            brightness=self.aug_brightness,
            contrast=self.aug_contrast,
            saturation=self.aug_saturation,
            grey=self.aug_grey,
            hue=self.aug_hue,
        )

    def build_model(self, check_input: bool = False) -> Backbone:
        """The network this config describes, initialised from torch's global RNG; with
        ``check_input``, also check that it accepts ``image_size`` frames."""
        import torch

        from tcdn.models.base import check_init
        from tcdn.models.input import MOTION_CHANNELS
        from tcdn.models.two_stream import TwoStream

        cfg = self.resolved()
        options = dict(cfg.model_options)
        channels = MOTION_CHANNELS[cfg.motion]
        if channels != 3:
            options["in_channels"] = channels
        init = check_init(str(options.get("init", "torch")))
        if cfg.head != "none":
            options["init"] = "torch"  # the init is applied once the head is in place
        model: Backbone
        if cfg.streams == 2:  # appearance and motion: two 3-channel networks
            options.pop("in_channels", None)
            model = TwoStream(cfg._one_net(options, init), cfg._one_net(options, init))
        else:
            model = cfg._one_net(options, init)
        if check_input:
            try:
                with torch.no_grad():
                    model.eval()(torch.zeros(1, channels, cfg.image_size, cfg.image_size))
            except RuntimeError as exc:
                raise TcdnError(
                    f"image_size={cfg.image_size} is too small for model {cfg.model!r} ({exc}); use larger frames"
                ) from None
            model.train()
        return model

    def _one_net(self, options: dict[str, Any], init: str) -> Backbone:
        """One backbone of this config (``options`` as :meth:`build_model` prepared them), with
        its projection head and ``init``."""
        from tcdn.models import add_projection_head, build_model

        try:
            model = build_model(self.model, embed_dim=self.embed_dim, **options)
        except TypeError as exc:
            raise TcdnError(
                f"invalid model_options {self.model_options} for model {self.model!r}: {exc}"
            ) from None
        if self.head != "none":
            add_projection_head(model, self.head_hidden, self.head_dim)
            if init != "torch":
                model.apply_init(init)
        return model

    def _need(self, ok: bool, option: str, what: str) -> None:
        if not ok:
            raise TcdnError(f"invalid training option {option}={getattr(self, option)!r}: {what}")

    def validate(self) -> None:
        need = self._need
        for option, choices in (
            ("loss", LOSSES),
            ("head", HEADS),
            ("input_norm", INPUT_NORMS),
            ("motion", MOTIONS),
            ("schedule", SCHEDULES),
            ("augment", AUGMENTS),
            ("feature_norm", FEATURE_NORMS),
            ("precision", PRECISIONS),
        ):
            need(getattr(self, option) in choices, option, f"choose one of {', '.join(choices)}")
        self._validate_network()
        need(0 < self.temperature < math.inf, "temperature", "must be a positive finite number")
        need(0 <= self.cross_stream < math.inf, "cross_stream", "must be a finite number >= 0")
        need(
            not self.cross_stream or (self.loss == "nce" and self.streams == 2),
            "cross_stream",
            "ranks one stream against the other: it needs loss: nce and streams: 2",
        )
        need(
            not (self.loss == "nce" and self.mu),
            "mu",
            "cannot be used with loss nce: its negatives are the frames of other videos, and mu "
            "joins every video into one",
        )
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.batch_size is None or self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.embed_dim is None or self.embed_dim >= 1, "embed_dim", "must be >= 1")
        need(self.image_size >= 32, "image_size", "must be >= 32 pixels")
        problem = frame_size_problem(self.image_size) if self.image_size >= 32 else None
        need(problem is None, "image_size", problem or "")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "must be a positive number")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.lr_step >= 1, "lr_step", "must be >= 1")
        need(self.warmup >= 0, "warmup", "must be >= 0")
        need(0 < self.lr_gamma <= 1, "lr_gamma", "must be in (0, 1]")
        need(
            self.grad_clip is None or self.grad_clip > 0,
            "grad_clip",
            "must be > 0 (or null to disable)",
        )
        need(self.margin is None or self.margin > 0, "margin", "must be > 0")
        need(self.window >= 1, "window", "must be >= 1")
        need(self.far > self.window, "far", "must be larger than window")
        need(0 <= self.negative_share <= 1, "negative_share", "must be in [0, 1]")
        for name in (
            "aug_flip",
            "aug_brightness",
            "aug_contrast",
            "aug_saturation",
            "aug_grey",
            "aug_hue",
        ):
            need(0 <= getattr(self, name) <= 1, name, "must be in [0, 1]")
        need(0 < self.aug_crop_scale <= 1, "aug_crop_scale", "must be in (0, 1]")
        need(
            not self.compile or self.channels_last,
            "compile",
            "needs channels_last: true (torch 2.13's compiled CPU kernels return zero gradients "
            "for conv -> ReLU -> max-pool in the default NCHW layout, so the convolutions would "
            "never train)",
        )
        need(0 <= self.seed < 2**63, "seed", "must be a whole number >= 0")
        need(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        need(self.keep_last >= 1, "keep_last", "must be >= 1")
        need(self.log_every >= 1, "log_every", "must be >= 1")
        need(
            self.threads is None or self.threads >= 1,
            "threads",
            "must be >= 1 (or null for torch's choice)",
        )

    def _validate_network(self) -> None:
        """The options of the network and its input (part of :meth:`validate`)."""
        need = self._need
        from tcdn.models import MODELS  # the registry needs torch: checked when a config is made

        need(self.model in MODELS, "model", f"choose one of {', '.join(sorted(MODELS))}")
        from tcdn.models.base import model_options_problem

        problem = model_options_problem(self.model, self.model_options)
        need(problem is None, "model_options", problem or "")
        from tcdn.models import HEAD_MODELS, MULTICHANNEL_MODELS

        need(
            self.head == "none" or self.model in HEAD_MODELS,
            "head",
            f"model {self.model!r} has no embedding layer right after its feature layer (as "
            f"AlexNet's fc7) for a head to replace; use one of {', '.join(sorted(HEAD_MODELS))}",
        )
        need(self.head_hidden >= 1, "head_hidden", "must be >= 1")
        need(self.head_dim >= 1, "head_dim", "must be >= 1")
        need(
            self.motion in ("none", "diffonly") or self.model in MULTICHANNEL_MODELS,
            "motion",
            f"needs 6 input channels, which model {self.model!r} does not take; use one of "
            f"{', '.join(sorted(MULTICHANNEL_MODELS))}",
        )
        need(self.streams in (1, 2), "streams", "must be 1 (one network) or 2")
        need(
            self.streams == 1 or self.motion == "diff",
            "streams",
            "2 streams read the frame and its difference to the next: set motion: diff",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from plain values (e.g. YAML), converting numbers written as text."""
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise TcdnError(
                f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
            )
        return cls(**{k: _coerce(k, v, fields[k]) for k, v in data.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8 text
            raise TcdnError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise TcdnError(f"config file {path} must hold a mapping of option: value")
        return cls.from_dict(data)

    @classmethod
    def from_sources(
        cls,
        yaml_path: str | Path | None = None,
        flags: dict[str, Any] | None = None,
        overrides: list[str] | None = None,
        *,
        defaults: dict[str, Any] | None = None,
    ) -> TrainConfig:
        """The config of a run, merged once from its sources; each wins over the one before it:
        the dataclass defaults, ``defaults`` (e.g. ``image_size`` from the frames' ``--size``), a
        YAML file (``--config``), flags (``None`` values are not given) and ``--set OPTION=VALUE``
        overrides (values read as YAML, :func:`parse_overrides`)."""
        options = {k: v for k, v in (defaults or {}).items() if v is not None}
        if yaml_path:
            options.update(cls.from_yaml(yaml_path).to_dict())
        options.update({k: v for k, v in (flags or {}).items() if v is not None})
        options.update(parse_overrides(overrides or []))
        return cls.from_dict(options)


def parse_overrides(
    items: list[str], form: str = "option=value, e.g. --set lr=0.01"
) -> dict[str, Any]:
    """``["key=value", ...]`` (values read as YAML) -> ``{key: value}``, for ``tcdn train --set``
    (``form`` is the form the command wants, for the message of a malformed item)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise TcdnError(f"--set {item!r}: write {form}")
        try:
            out[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise TcdnError(f"--set {item!r}: cannot read the value as YAML ({exc})") from None
    return out


def _coerce(name: str, value: Any, annotation: str) -> Any:
    """Check ``value`` against a field's annotation; accept numbers written as text (YAML reads
    ``1e-3`` as a string) and whole floats for integers. Raise :class:`TcdnError` otherwise."""
    if value is None and "None" in annotation:
        return None
    base = annotation.split("|")[0].strip()
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError
        if base == "int":
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, int | float) or number != int(number):
                raise ValueError
            return int(number)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if base.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError, OverflowError):
        raise TcdnError(
            f"invalid training option {name}={value!r}: expected {annotation}"
        ) from None
    return value
