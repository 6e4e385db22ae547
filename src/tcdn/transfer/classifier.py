"""A classifier of the same backbone as a tcdn checkpoint, and the transfer of its weights.

The classifier is the checkpoint's network (every stage: the convolutions, fc6 and fc7 of
AlexNet, conv1-3, ip1 and ip2 of the CIFAR nets...) followed by a new classification layer. Its
weights come from the checkpoint (the *learned* init) or from the network's own initialisation
(the *random* init); the new layer is always freshly initialised. :func:`transfer_weights`
copies the tensors and returns an account of what was loaded and what is new; a tensor whose
shape differs from the checkpoint's is a :class:`~tcdn.errors.TcdnError` naming both shapes.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from tcdn.errors import TcdnError
from tcdn.models import Backbone
from tcdn.training.config import TrainConfig

log = logging.getLogger(__name__)

BACKBONE = "backbone."
#: the part of a checkpoint's network a classifier is built on (tcdn.transfer.inputs)
WHOLE, APPEARANCE = "whole", "appearance"


class Classifier(nn.Module):
    """``backbone`` (its embedding output), then ReLU (unless the last stage ends in one),
    dropout and a new linear layer of ``n_classes`` outputs (``head``).

    The ReLU plays the part of AlexNet's relu7 before fc8: the tcdn embedding (fc7, ip2...) is the
    output of a linear layer."""

    def __init__(self, backbone: Backbone, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if n_classes < 2:
            raise TcdnError(f"a classifier needs at least 2 classes, got {n_classes}")
        self.backbone = backbone
        self.n_classes = n_classes
        last = list(backbone.stages.values())[-1]
        ends_in_relu = isinstance(last, nn.Sequential) and isinstance(last[-1], nn.ReLU)
        layers: list[nn.Module] = [] if ends_in_relu else [nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(backbone.embed_dim, n_classes))
        self.head = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))

    def forward_features(self, x: Tensor, layer: str | None = None) -> Tensor:
        """The backbone's features at ``layer`` (see :meth:`Backbone.forward_features`)."""
        return self.backbone.forward_features(x, layer)


@dataclass
class TransferReport:
    """Which tensors of a classifier came from a checkpoint and which are new.

    Each list holds ``(name, shape)``; ``unused`` are checkpoint tensors not copied (layers after
    ``upto``)."""

    loaded: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    new: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    unused: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # the backbone stages with loaded weights
    part: str = "the whole network"  # the part of the checkpoint's network the classifier is
    input: str = ""  # what the network reads (tcdn.transfer.inputs.NetInput.describe)

    @staticmethod
    def _count(items: list[tuple[str, tuple[int, ...]]]) -> int:
        total = 0
        for _, shape in items:
            n = 1
            for d in shape:
                n *= d
            total += n
        return total

    def summary(self) -> str:
        """One paragraph: the layers and the tensor and value counts of each list."""
        loaded = ", ".join(self.layers) or "nothing"
        new = ", ".join(f"{n} {list(s)}" for n, s in self.new)
        text = (
            f"{self.part}: loaded {len(self.loaded)} tensors ({self._count(self.loaded):,} values) of {loaded}; "
            f"new: {len(self.new)} tensors ({self._count(self.new):,} values): {new}"
        )
        if self.unused:
            text += f"; not transferred: {', '.join(n for n, _ in self.unused)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        def rows(items: list[tuple[str, tuple[int, ...]]]) -> list[dict[str, Any]]:
            return [{"name": n, "shape": list(s)} for n, s in items]

        return {
            "part": self.part,
            "input": self.input,
            "layers": list(self.layers),
            "loaded": rows(self.loaded),
            "new": rows(self.new),
            "unused": rows(self.unused),
        }


def _stage_of(name: str) -> str:
    """``stages.fc6.0.weight`` -> ``fc6``; a stream's too (``motion.stages.fc6.0.weight``)."""
    parts = name.split(".")
    if "stages" not in parts[:-2]:
        return ""
    return parts[parts.index("stages") + 1]


def transfer_weights(
    classifier: Classifier,
    state: dict[str, Tensor],
    *,
    upto: str | None = None,
    source: str = "the checkpoint",
) -> TransferReport:
    """Copy the backbone tensors of ``state`` (a backbone's ``state_dict``, e.g. a checkpoint's
    ``model``) into ``classifier``, for every stage up to and including ``upto`` (default: all).

    Raises :class:`TcdnError` when a tensor to load is missing from ``state`` or has another
    shape; nothing is copied then."""
    names = list(classifier.backbone.layer_names)
    last = classifier.backbone.check_layer(upto) if upto is not None else names[-1]
    wanted = set(names[: names.index(last) + 1])
    own = classifier.state_dict()
    report = TransferReport()
    copies: dict[str, Tensor] = {}
    for key, tensor in own.items():
        shape = tuple(tensor.shape)
        if not key.startswith(BACKBONE) or _stage_of(key[len(BACKBONE) :]) not in wanted:
            report.new.append((key, shape))
            continue
        src_key = key[len(BACKBONE) :]
        if src_key not in state:
            raise TcdnError(
                f"{source} has no tensor {src_key} for the classifier's {key}: it holds another "
                "network; use a checkpoint of this backbone (or --upto an earlier layer)"
            )
        src = state[src_key]
        if tuple(src.shape) != shape:
            raise TcdnError(
                f"shape mismatch for {src_key}: {source} has {list(src.shape)}, the classifier "
                f"needs {list(shape)}; build the classifier with the checkpoint's model options "
                "(or --upto a layer before it)"
            )
        copies[key] = src
        report.loaded.append((key, shape))
    if not copies:  # a "trained" start that loads nothing would be a random one in disguise
        raise TcdnError(
            f"{source} gave the classifier no tensor to load (its backbone has no stage up to "
            f"{last}): it holds another network"
        )
    loaded_stages = {_stage_of(k[len(BACKBONE) :]) for k in copies}
    report.layers = [n for n in names if n in loaded_stages]  # the stages with weights
    for src_key, src in state.items():
        if BACKBONE + src_key not in copies:
            report.unused.append((src_key, tuple(src.shape)))
    with torch.no_grad():
        for key, tensor in copies.items():
            own[key].copy_(tensor)
    return report


def weights_digest(state: dict[str, Tensor]) -> str:
    """A fingerprint of a network's tensors (names, shapes and values)."""
    h = hashlib.sha1()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}{list(t.shape)}{t.dtype}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def build_classifier(
    train_config: dict[str, Any],
    n_classes: int,
    *,
    init: str,
    state: dict[str, Tensor] | None = None,
    seed: int = 0,
    dropout: float = 0.0,
    upto: str | None = None,
    source: str = "the checkpoint",
    part: str = WHOLE,
) -> tuple[Classifier, TransferReport | None]:
    """The classifier of a checkpoint's network (``train_config``, its ``config``).

    ``init="trained"`` copies ``state`` (its ``model``) with :func:`transfer_weights`;
    ``init="random_init"`` keeps the network's own initialisation. Both draw their initial
    weights from torch's RNG seeded with ``seed`` (the caller's RNG state is left as it was), so
    the new layer of both starts the same.

    ``part`` is the network the classifier is built on: the checkpoint's whole network
    (``whole``), or for a two-stream checkpoint its ``appearance`` stream alone (still images:
    :func:`tcdn.transfer.inputs.plan_input` decides). Which input a checkpoint of motion input
    can take is :func:`~tcdn.transfer.inputs.plan_input`'s business, not this function's."""
    cfg = TrainConfig.from_dict(train_config)
    if part not in (WHOLE, APPEARANCE):
        raise ValueError(f"unknown part {part!r}")
    if part == APPEARANCE and cfg.streams != 2:
        raise TcdnError(f"{source} has one network, no appearance stream")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = cfg.build_model()
        backbone = net.appearance if part == APPEARANCE else net
        assert isinstance(backbone, Backbone)
        model = Classifier(backbone, n_classes, dropout)
    if init == "random_init":
        return model, None
    if init != "trained":
        raise ValueError(f"unknown init {init!r}")
    if state is None:
        raise ValueError("init='trained' needs the checkpoint's state")
    if part == WHOLE:
        return model, transfer_weights(model, state, upto=upto, source=source)
    prefix = APPEARANCE + "."
    own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    report = transfer_weights(model, own, upto=upto, source=source)
    report.unused = [(prefix + k, s) for k, s in report.unused]
    report.unused += [(k, tuple(v.shape)) for k, v in state.items() if not k.startswith(prefix)]
    report.part = (
        "the appearance stream (appearance.* -> backbone.*; the motion stream needs video frames)"
    )
    return model, report
